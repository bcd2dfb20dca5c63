"""A minimal Kubernetes API client for the benchmark (Python 3 standard library only).

Reads the kubeconfig through `kubectl config view --raw -o json` (no YAML parser in the standard
library), writes the embedded CA, client certificate and key to a private temporary directory and
talks HTTPS with http.client + ssl. One persistent connection per thread for ordinary requests;
each watch has its own connection.
"""

import base64
import http.client
import json
import os
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse


class ApiError(Exception):
    def __init__(self, method, path, status, body):
        super().__init__("%s %s: HTTP %d: %s" % (method, path, status, body[:300]))
        self.status = status


class Kube:
    def __init__(self, kubeconfig, kubectl):
        raw = subprocess.check_output(
            [kubectl, "--kubeconfig", kubeconfig, "config", "view", "--raw", "-o", "json"])
        cfg = json.loads(raw)
        ctx_name = cfg.get("current-context")
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
        url = urllib.parse.urlparse(cluster["server"])
        self.host, self.port = url.hostname, url.port or 443
        self._dir = tempfile.mkdtemp(prefix="rollgate-bench-pki.")
        os.chmod(self._dir, 0o700)

        def write(name, b64=None, path=None):
            if path:
                return path
            p = os.path.join(self._dir, name)
            with open(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
                f.write(base64.b64decode(b64))
            return p

        ca = write("ca.crt", cluster.get("certificate-authority-data"),
                   cluster.get("certificate-authority"))
        crt = write("client.crt", user.get("client-certificate-data"),
                    user.get("client-certificate"))
        key = write("client.key", user.get("client-key-data"), user.get("client-key"))
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.load_cert_chain(crt, key)
        self._local = threading.local()

    def close(self):
        for name in os.listdir(self._dir):
            os.unlink(os.path.join(self._dir, name))
        os.rmdir(self._dir)

    def _conn(self, fresh=False):
        c = getattr(self._local, "conn", None)
        if c is None or fresh:
            if c is not None:
                c.close()
            c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=120)
            self._local.conn = c
        return c

    def request(self, method, path, body=None, content_type="application/json"):
        """-> (status, bytes). Retries once on a broken persistent connection."""
        data = None if body is None else (body if isinstance(body, bytes)
                                          else json.dumps(body).encode())
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in range(3):
            c = self._conn(fresh=attempt > 0)
            try:
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, OSError):
                if attempt == 2:
                    raise
                time.sleep(0.1)
        raise AssertionError("unreachable")

    def json(self, method, path, body=None, ok=(200, 201), content_type="application/json"):
        status, data = self.request(method, path, body, content_type)
        if status not in ok:
            raise ApiError(method, path, status, data.decode(errors="replace"))
        return json.loads(data) if data else None

    def get(self, path):
        return self.json("GET", path)

    def text(self, path):
        status, data = self.request("GET", path)
        if status != 200:
            raise ApiError("GET", path, status, data.decode(errors="replace"))
        return data.decode()

    def create(self, path, obj, exist_ok=True):
        status, data = self.request("POST", path, obj)
        if status in (200, 201) or (exist_ok and status == 409):
            return status
        raise ApiError("POST", path, status, data.decode(errors="replace"))

    def list_all(self, path, params=None):
        """Paged list -> (items, resourceVersion)."""
        items, cont, rv = [], None, None
        while True:
            q = dict(params or {}, limit="500")
            if cont:
                q["continue"] = cont
            out = self.get(path + "?" + urllib.parse.urlencode(q))
            items.extend(out.get("items") or [])
            rv = out["metadata"].get("resourceVersion", rv)
            cont = out["metadata"].get("continue")
            if not cont:
                return items, rv


class Watch(threading.Thread):
    """List + watch of `path` (a collection) with `params`; calls handler(t_recv, type, obj) on
    this thread for every object of the initial list (type "LIST", t_recv at list time) and every
    watch event (t_recv: time.time() right after its line was read). Reconnects from the last
    resourceVersion when the server ends the watch; re-lists on 410 Gone."""

    def __init__(self, kube, path, params, handler, name):
        super().__init__(name=name, daemon=True)
        self.kube, self.path, self.params, self.handler = kube, path, dict(params), handler
        self.stop_flag = threading.Event()
        self.synced = threading.Event()
        self.error = None
        self.events = 0
        self._conn = None

    def stop(self):
        self.stop_flag.set()
        c = self._conn
        if c is not None:
            try:
                c.sock and c.sock.shutdown(2)
            except OSError:
                pass

    def run(self):
        try:
            self._run()
        except Exception as e:  # reported by the caller
            if not self.stop_flag.is_set():
                self.error = e

    def _run(self):
        rv = None
        while not self.stop_flag.is_set():
            if rv is None:
                items, rv = self.kube.list_all(self.path, self.params)
                t = time.time()
                for o in items:
                    self.handler(t, "LIST", o)
                self.synced.set()
            q = dict(self.params, watch="1", resourceVersion=rv, allowWatchBookmarks="true",
                     timeoutSeconds="1800")
            c = http.client.HTTPSConnection(self.kube.host, self.kube.port,
                                            context=self.kube.ctx, timeout=None)
            self._conn = c
            try:
                c.request("GET", self.path + "?" + urllib.parse.urlencode(q),
                          headers={"Accept": "application/json"})
                r = c.getresponse()
                if r.status != 200:
                    raise ApiError("WATCH", self.path, r.status, r.read().decode(errors="replace"))
                while not self.stop_flag.is_set():
                    line = r.readline()
                    t = time.time()
                    if not line:
                        break
                    ev = json.loads(line)
                    typ, obj = ev["type"], ev["object"]
                    if typ == "ERROR":
                        if obj.get("code") == 410:
                            rv = None
                        break
                    rv = obj["metadata"].get("resourceVersion", rv)
                    if typ == "BOOKMARK":
                        continue
                    self.events += 1
                    self.handler(t, typ, obj)
            except (OSError, http.client.HTTPException, ValueError):
                if self.stop_flag.is_set():
                    return
                time.sleep(0.2)
            finally:
                c.close()
