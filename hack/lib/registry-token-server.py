#!/usr/bin/env python3
"""registry-token-server.py: the Docker token server of hack/registry.sh --token-auth (issue 16),
standard library only, for tests on loopback.

  registry-token-server.py --listen 127.0.0.1:PORT --issuer ISSUER --service SERVICE
      --sign-key KEY.pem --sign-cert CERT.pem [--users FILE] [--tls-cert CRT --tls-key KEY]

GET /token?service=SERVICE&scope=repository:NAME:pull,push[&scope=...] (the Docker token flow,
https://distribution.github.io/distribution/spec/auth/token/): answers 200
{"token", "access_token", "expires_in", "issued_at"} with a JWT (RS256, the signing certificate in
the header's x5c, which the registry checks against its rootcertbundle = CERT.pem) granting every
requested action. With --users (lines `USER:SALT_HEX:PBKDF2_SHA256_HEX`, 100000 rounds; written by
hack/registry.sh) the request must carry matching Basic credentials, else 401; without it,
anonymous requests get tokens. Signs with `openssl dgst -sha256 -sign` (no Python packages).
Logs one line per request to stderr, never a credential or a token.
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import http.server
import json
import os
import secrets
import ssl
import subprocess
import sys
import time
import urllib.parse

TOKEN_SECONDS = 300


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_users(path):
    users = {}
    if not path:
        return users
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                user, salt, digest = line.split(":")
                users[user] = (bytes.fromhex(salt), bytes.fromhex(digest))
    return users


def pem_to_der(path):
    with open(path, encoding="ascii") as f:
        text = f.read()
    body = text.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return base64.b64decode("".join(body.split()))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def make_handler(args, users, cert_der):
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "rollgate-token-server"
        sys_version = ""

        def log_message(self, format, *a):  # noqa: A002 (the base class's name)
            # The request line carries the scope, never the Authorization header.
            sys.stderr.write("%s %s\n" % (self.log_date_time_string(), format % a))

        def reply(self, code, body, headers=()):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def authenticate(self):
            """The user name ("" for anonymous), or None when the credentials do not match."""
            header = self.headers.get("Authorization", "")
            if not users:
                return ""
            if not header.startswith("Basic "):
                return None
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            if user not in users:
                return None
            salt, digest = users[user]
            got = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 100000)
            return user if hmac.compare_digest(got, digest) else None

        def do_GET(self):  # noqa: N802 (http.server's name)
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/token":
                self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "only /token"}]})
                return
            query = urllib.parse.parse_qs(url.query)
            user = self.authenticate()
            if user is None:
                self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                           [("WWW-Authenticate", 'Basic realm="rollgate-token-server"')])
                return
            service = query.get("service", [""])[0]
            if service != args.service:
                self.reply(400, {"errors": [{"code": "BAD_REQUEST",
                                             "message": "unknown service %r" % service}]})
                return
            access = []
            for scope in query.get("scope", []):
                for one in scope.split(" "):
                    parts = one.split(":")
                    if len(parts) < 3:
                        continue
                    # repository:NAME:ACTIONS; NAME may hold a port (host:port/name is not used
                    # here, but take the last field as the actions all the same).
                    access.append({"type": parts[0], "name": ":".join(parts[1:-1]),
                                   "actions": [a for a in parts[-1].split(",") if a]})
            now = int(time.time())
            header = {"alg": "RS256", "typ": "JWT", "x5c": [base64.b64encode(cert_der).decode()]}
            claims = {"iss": args.issuer, "sub": user, "aud": service, "exp": now + TOKEN_SECONDS,
                      "nbf": now - 10, "iat": now, "jti": secrets.token_hex(16), "access": access}
            signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                             b64url(json.dumps(claims, separators=(",", ":")).encode()))
            sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", args.sign_key],
                                 input=signing_input.encode(), capture_output=True, check=True).stdout
            token = signing_input + "." + b64url(sig)
            issued = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.reply(200, {"token": token, "access_token": token, "expires_in": TOKEN_SECONDS,
                             "issued_at": issued})

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--sign-key", required=True)
    p.add_argument("--sign-cert", required=True)
    p.add_argument("--users")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    args = p.parse_args()
    host, _, port = args.listen.rpartition(":")
    users = load_users(args.users)
    server = Server((host, int(port)), make_handler(args, users, pem_to_der(args.sign_cert)))
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    sys.stderr.write("listening on %s (%s, %d user(s))\n" % (args.listen, "https" if args.tls_cert else "http",
                                                            len(users)))
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    os.umask(0o077)
    main()
