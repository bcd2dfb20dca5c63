#!/usr/bin/env bash
# End-to-end test of the registry fixture of issue 16 (registry-aware promotion), with standard
# clients only (curl, skopeo, openssl), no cluster, no container engine:
#
#  1. TLS + basic auth (hack/registry.sh up --tls --htpasswd): the certificate verifies only with the
#     generated CA; GET /v2/ -> 401 `WWW-Authenticate: Basic` without credentials, 401 with a wrong
#     password, 200 with the right one.
#  2. hack/multiarch-image.sh pushes testapp:2.0-multiarch and testapp:2.0-large; `skopeo inspect
#     --raw` of the index shows application/vnd.oci.image.index.v1+json with linux/amd64 and
#     linux/arm64; a manifest GET with a Docker/OCI Accept list returns the index with a
#     Docker-Content-Digest equal to the sha256 of the body (and to the pushed digest); the arm64
#     manifest's config says arm64; the large image's layers add up to more than 20 MiB and the
#     registry's blob HEAD agrees; an unknown tag -> 404 MANIFEST_UNKNOWN.
#  3. hack/registry.sh stop -> connection refused (status 3); start -> the same port, CA and
#     content (the same digest) again.
#  4. The Docker token flow (hack/registry.sh up --tls --htpasswd --token-auth): 401 `Bearer
#     realm=...,service=...,scope=...`; the realm refuses no/wrong credentials (401) and gives a
#     token for the right ones; with it the manifest GET -> 200; a pull-only token cannot start a
#     push; skopeo pushes and reads through the flow; stop/start keep it working.
#  5. No password or token in any output or log; nothing left running.
#
#   tests/e2e/registry_auth_test.sh
#
# Needs the Debian packages of hack/bootstrap.sh (docker-registry, skopeo, umoci, apache2-utils,
# openssl, curl, jq, gcc with libc6-dev) and python3; fails at once, saying so, without them. Does
# not need root. About 30 s.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
[[ $# -eq 0 ]] || { echo "usage: $0 (no arguments)" >&2; exit 2; }
for tool in skopeo umoci curl jq python3 openssl htpasswd sha256sum; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed (hack/bootstrap.sh installs it)" >&2; exit 1; }
done
[[ -x /usr/bin/docker-registry ]] || { echo "FAIL: no /usr/bin/docker-registry (hack/bootstrap.sh installs it)" >&2; exit 1; }

readonly INDEX_TYPE=application/vnd.oci.image.index.v1+json
readonly OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
readonly ACCEPT="application/vnd.docker.distribution.manifest.list.v2+json, $INDEX_TYPE, application/vnd.docker.distribution.manifest.v2+json, $OCI_MANIFEST"
start=$SECONDS
check_name="registry auth test"
# shellcheck source-path=SCRIPTDIR source=lib/checks.sh
source "$here/lib/checks.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-registry-auth-test.XXXXXX")
chmod 0700 "$work"
basic_dir=$work/basic token_dir=$work/token

# shellcheck source-path=SCRIPTDIR source=lib/registry.sh
source "$here/lib/registry.sh"
trap registry_cleanup EXIT

user=promoter
password=$(openssl rand -hex 16)
# curl reads the credentials from files, never from its command line.
printf 'machine 127.0.0.1 login %s password %s\n' "$user" "$password" >"$work/netrc"
printf 'machine 127.0.0.1 login %s password %s\n' "$user" "wrong-$password" >"$work/netrc-wrong"
chmod 0600 "$work/netrc" "$work/netrc-wrong"

# req METHOD URL [CURL_ARGS...]: sets code (000: no connection), curl_rc; headers in
# $work/headers, body in $work/body. TLS is verified against $ca.
req() {
  local method=$1 url=$2
  shift 2
  curl_rc=0
  code=$(curl -sS -X "$method" --max-time 10 --cacert "$ca" -D "$work/headers" -o "$work/body" \
    -w '%{http_code}' "$@" "$url" 2>"$work/curl.err") || curl_rc=$?
  [[ -n "$code" ]] || code=000
  [[ "$method" != HEAD ]] || : >"$work/body"
}
# header NAME: the last response's header (case-insensitive), without CR.
header() { grep -i "^$1:" "$work/headers" | tail -n 1 | cut -d: -f2- | sed 's/^ *//' | tr -d '\r'; }
body_sha() { echo "sha256:$(sha256sum "$work/body" | cut -d' ' -f1)"; }


# --- 1. TLS + basic auth --------------------------------------------------------------------------

read -r port token_port other_port < <(python3 "$repo/hack/lib/free-ports.py" 3)
up "$basic_dir" "$port" --tls --htpasswd "$user"
if [[ $reg == "127.0.0.1:$port" && -f "$ca" && -f "$cert_dir/ca.crt" && -f "$authfile" ]] &&
  [[ $(wc -l <"$basic_dir.up.out") == 4 ]]; then
  pass "up --tls --htpasswd: $(one_line "$(cut -d= -f1 "$basic_dir.up.out" | sed 's/^export //')")"
else
  fail "up --tls --htpasswd printed: $(one_line "$(cat "$basic_dir.up.out")")"
fi
base=https://$reg

san=$(openssl x509 -in "$basic_dir/tls/server.crt" -noout -ext subjectAltName 2>&1 | tail -n 1 | sed 's/^ *//')
if openssl verify -CAfile "$ca" "$basic_dir/tls/server.crt" >/dev/null 2>&1 && [[ $san == *"IP Address:127.0.0.1"* && $san == *"DNS:localhost"* ]]; then
  pass "the server certificate verifies with the generated CA ($san)"
else
  fail "server certificate: $(openssl verify -CAfile "$ca" "$basic_dir/tls/server.crt" 2>&1 | tail -n 1), SAN $san"
fi
rc=0
curl -sS -o /dev/null --max-time 5 "$base/v2/" 2>"$work/curl.err" || rc=$?
if ((rc == 60)); then
  pass "without the CA, curl refuses the certificate (exit 60: $(head -n 1 "$work/curl.err"))"
else
  fail "without the CA, curl exit $rc (want 60): $(one_line "$(cat "$work/curl.err")")"
fi
rc=0
curl -sS -o /dev/null --max-time 5 "http://$reg/v2/" 2>/dev/null || rc=$?
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$reg/v2/" 2>/dev/null) || true
if [[ $code != 200 && $code != 401 ]]; then
  pass "plain HTTP to the TLS port gets no registry answer (HTTP ${code:-none})"
else
  fail "plain HTTP to the TLS port answered $code"
fi

req GET "$base/v2/"
if [[ $code == 401 && $(header WWW-Authenticate) == 'Basic realm="rollgate-registry"' ]]; then
  pass "GET /v2/ without credentials -> 401, WWW-Authenticate: $(header WWW-Authenticate)"
else
  fail "GET /v2/ without credentials -> $code, WWW-Authenticate: $(header WWW-Authenticate)"
fi
req GET "$base/v2/" --netrc-file "$work/netrc-wrong"
if [[ $code == 401 ]]; then
  pass "GET /v2/ with a wrong password -> 401"
else
  fail "GET /v2/ with a wrong password -> $code"
fi
req GET "$base/v2/" --netrc-file "$work/netrc"
if [[ $code == 200 && $(header Docker-Distribution-Api-Version) == registry/2.0 ]]; then
  pass "GET /v2/ with the credentials -> 200, Docker-Distribution-API-Version: registry/2.0"
else
  fail "GET /v2/ with the credentials -> $code $(one_line "$(cat "$work/body" "$work/curl.err")")"
fi

# --- 2. the two-platform index and the large image ----------------------------------------------

t0=$SECONDS
if ROLLGATE_REGISTRY_CERT_DIR=$cert_dir ROLLGATE_REGISTRY_AUTHFILE=$authfile \
  bash "$repo/hack/multiarch-image.sh" --out "$work/images" --push "$reg" >"$work/push.out" 2>"$work/push.err"; then
  cat "$work/push.out"
  pass "hack/multiarch-image.sh --push $reg ($((SECONDS - t0)) s)"
else
  fail "hack/multiarch-image.sh --push $reg: $(one_line "$(tail -n 3 "$work/push.err")")"
  finish
fi
index_digest=$(awk -v r="$reg/testapp:2.0-multiarch" '$1 == r { print $2 }' "$work/push.out")
large_digest=$(awk -v r="$reg/testapp:2.0-large" '$1 == r { print $2 }' "$work/push.out")
amd64_digest=$(awk '$1 == "linux/amd64" { print $2 }' "$work/push.out")
arm64_digest=$(awk '$1 == "linux/arm64" { print $2 }' "$work/push.out")
if [[ $index_digest == sha256:* && $large_digest == sha256:* && $amd64_digest == sha256:* && $arm64_digest == sha256:* ]]; then
  pass "pushed: the index $index_digest (amd64 $amd64_digest, arm64 $arm64_digest), large $large_digest"
else
  fail "hack/multiarch-image.sh printed no digests: $(one_line "$(cat "$work/push.out")")"
  finish
fi

skopeo_args=(--cert-dir "$cert_dir" --authfile "$authfile")
if raw=$(skopeo inspect --raw "${skopeo_args[@]}" "docker://$reg/testapp:2.0-multiarch" 2>&1) &&
  [[ $(jq -r .mediaType <<<"$raw") == "$INDEX_TYPE" ]] &&
  [[ $(jq -c '[.manifests[].platform | "\(.os)/\(.architecture)"] | sort' <<<"$raw") == '["linux/amd64","linux/arm64"]' ]] &&
  [[ "sha256:$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)" == "$index_digest" ]]; then
  pass "skopeo inspect --raw testapp:2.0-multiarch: $INDEX_TYPE, linux/amd64 + linux/arm64, sha256 = $index_digest"
else
  fail "skopeo inspect --raw testapp:2.0-multiarch: $(one_line "$raw")"
fi
if out=$(skopeo inspect --override-arch arm64 "${skopeo_args[@]}" "docker://$reg/testapp:2.0-multiarch" 2>&1) &&
  [[ $(jq -r .Architecture <<<"$out") == arm64 ]]; then
  pass "skopeo inspect --override-arch arm64: the arm64 image (Architecture arm64)"
else
  fail "skopeo inspect --override-arch arm64: $(one_line "$out")"
fi

req GET "$base/v2/testapp/manifests/2.0-multiarch" --netrc-file "$work/netrc" -H "Accept: $ACCEPT"
if [[ $code == 200 && $(header Content-Type) == "$INDEX_TYPE" && $(header Docker-Content-Digest) == "$(body_sha)" &&
  $(body_sha) == "$index_digest" ]]; then
  pass "GET /v2/testapp/manifests/2.0-multiarch (Accept: Docker and OCI lists and manifests) -> 200 $INDEX_TYPE, Docker-Content-Digest = sha256(body) = $index_digest"
else
  fail "GET manifests/2.0-multiarch -> $code, Content-Type $(header Content-Type), Docker-Content-Digest $(header Docker-Content-Digest), sha256(body) $(body_sha), pushed $index_digest"
fi
req HEAD "$base/v2/testapp/manifests/2.0-multiarch" -I --netrc-file "$work/netrc" -H "Accept: $ACCEPT"
if [[ $code == 200 && $(header Docker-Content-Digest) == "$index_digest" ]]; then
  pass "HEAD manifests/2.0-multiarch -> 200, Docker-Content-Digest $index_digest, Content-Length $(header Content-Length)"
else
  fail "HEAD manifests/2.0-multiarch -> $code, Docker-Content-Digest $(header Docker-Content-Digest)"
fi

# The arm64 manifest by digest, then its config blob.
req GET "$base/v2/testapp/manifests/$arm64_digest" --netrc-file "$work/netrc" -H "Accept: $ACCEPT"
config_digest=$(jq -r '.config.digest // empty' "$work/body" 2>/dev/null) || config_digest=""
if [[ $code == 200 && $(header Content-Type) == "$OCI_MANIFEST" && $(body_sha) == "$arm64_digest" && -n "$config_digest" ]]; then
  req GET "$base/v2/testapp/blobs/$config_digest" -L --netrc-file "$work/netrc"
  arch=$(jq -r '"\(.os)/\(.architecture)"' "$work/body" 2>/dev/null) || arch=""
  if [[ $code == 200 && $arch == linux/arm64 && $(body_sha) == "$config_digest" ]]; then
    pass "the arm64 manifest ($arm64_digest) -> config $config_digest: $arch"
  else
    fail "the arm64 config blob $config_digest -> $code, platform '$arch'"
  fi
else
  fail "GET manifests/$arm64_digest -> $code, Content-Type $(header Content-Type), sha256(body) $(body_sha)"
fi

req GET "$base/v2/testapp/manifests/2.0-large" --netrc-file "$work/netrc" -H "Accept: $ACCEPT"
cp "$work/body" "$work/large.json"
large_size=$(jq '[.layers[].size] | add' "$work/large.json" 2>/dev/null) || large_size=0
big_layer=$(jq -r '.layers | max_by(.size) | "\(.digest) \(.size)"' "$work/large.json" 2>/dev/null) || big_layer=""
if [[ $code == 200 && $(body_sha) == "$large_digest" ]] && ((large_size > 20 * 1024 * 1024)) &&
  grep -q "^$reg/testapp:2.0-large  $large_digest  $OCI_MANIFEST  $large_size\$" "$work/push.out"; then
  pass "testapp:2.0-large: $large_digest, layers $large_size bytes compressed (> 20 MiB), as printed"
else
  fail "testapp:2.0-large -> $code, digest $(body_sha) (pushed $large_digest), layers $large_size bytes"
fi
req HEAD "$base/v2/testapp/blobs/${big_layer% *}" -I -L --netrc-file "$work/netrc"
if [[ $code == 200 && $(header Content-Length) == "${big_layer#* }" ]]; then
  pass "HEAD the large layer: Content-Length ${big_layer#* } = its manifest size"
else
  fail "HEAD blobs/${big_layer% *} -> $code, Content-Length $(header Content-Length) (manifest: ${big_layer#* })"
fi

req GET "$base/v2/testapp/manifests/2.0-missing" --netrc-file "$work/netrc" -H "Accept: $ACCEPT"
if [[ $code == 404 && $(jq -r '.errors[0].code' "$work/body" 2>/dev/null) == MANIFEST_UNKNOWN ]]; then
  pass "GET manifests/2.0-missing -> 404 MANIFEST_UNKNOWN"
else
  fail "GET manifests/2.0-missing -> $code $(one_line "$(cat "$work/body")")"
fi

# --- 3. stop and start ---------------------------------------------------------------------------

ca_sum=$(sha256sum <"$ca")
if bash "$repo/hack/registry.sh" stop --dir "$basic_dir" >/dev/null 2>"$work/stop.err"; then
  req GET "$base/v2/" --netrc-file "$work/netrc"
  rc=0
  bash "$repo/hack/registry.sh" status --dir "$basic_dir" >/dev/null || rc=$?
  if [[ $code == 000 && $curl_rc == 7 && $rc == 3 ]]; then
    pass "hack/registry.sh stop: connection refused (curl exit 7: $(one_line "$(cat "$work/curl.err")")), status 3"
  else
    fail "after stop: GET /v2/ -> $code (curl exit $curl_rc), status exit $rc"
  fi
else
  fail "hack/registry.sh stop: $(one_line "$(cat "$work/stop.err")")"
fi
sleep 2
t0=$(date +%s%N)
if out=$(bash "$repo/hack/registry.sh" start --dir "$basic_dir" 2>"$work/start.err") &&
  [[ $(head -n 1 <<<"$out") == "export ROLLGATE_REGISTRY=$reg" && $(sha256sum <"$ca") == "$ca_sum" ]]; then
  req GET "$base/v2/testapp/manifests/2.0-multiarch" --netrc-file "$work/netrc" -H "Accept: $ACCEPT"
  if [[ $code == 200 && $(header Docker-Content-Digest) == "$index_digest" ]]; then
    pass "hack/registry.sh start ($((($(date +%s%N) - t0) / 1000000)) ms): the same port, CA and content (2.0-multiarch $index_digest)"
  else
    fail "after start: GET manifests/2.0-multiarch -> $code, Docker-Content-Digest $(header Docker-Content-Digest)"
  fi
else
  fail "hack/registry.sh start: $(one_line "$out $(cat "$work/start.err")")"
fi

# --- 4. the token flow ----------------------------------------------------------------------------

up "$token_dir" "$other_port" --tls --htpasswd "$user" --token-auth --token-port "$token_port"
base=https://$reg
want_realm=https://127.0.0.1:$token_port/token
if [[ $realm_env == "$want_realm" ]]; then
  pass "up --token-auth: ROLLGATE_REGISTRY_TOKEN_REALM=$realm_env"
else
  fail "up --token-auth printed: $(one_line "$(cat "$token_dir.up.out")")"
fi
req GET "$base/v2/testapp/manifests/2.0-multiarch" -H "Accept: $ACCEPT"
challenge=$(header WWW-Authenticate)
if [[ $code == 401 && $challenge == "Bearer realm=\"$want_realm\",service=\"rollgate-registry\",scope=\"repository:testapp:pull\"" ]]; then
  pass "GET a manifest without a token -> 401, WWW-Authenticate: $challenge"
else
  fail "GET a manifest without a token -> $code, WWW-Authenticate: $challenge"
fi
realm=$(sed -n 's/.*realm="\([^"]*\)".*/\1/p' <<<"$challenge")
service=$(sed -n 's/.*service="\([^"]*\)".*/\1/p' <<<"$challenge")
scope=$(sed -n 's/.*scope="\([^"]*\)".*/\1/p' <<<"$challenge")
token_url="$realm?service=$service&scope=$scope"
req GET "$token_url"
code_none=$code
req GET "$token_url" --netrc-file "$work/netrc-wrong"
if [[ $code_none == 401 && $code == 401 ]]; then
  pass "the realm refuses a token without credentials and with a wrong password (401, 401)"
else
  fail "the realm: no credentials -> $code_none, wrong password -> $code (want 401, 401)"
fi
req GET "$token_url" --netrc-file "$work/netrc"
token=$(jq -r '.token // empty' "$work/body" 2>/dev/null) || token=""
# The claims (the JWT's middle part), base64url without padding.
claims=$(cut -d. -f2 <<<"$token" | tr '_-' '/+' | awk '{ while (length($0) % 4) $0 = $0 "="; print }' |
  base64 -d 2>/dev/null | jq -c '{iss, aud, sub, access}' 2>/dev/null) || claims=""
if [[ $code == 200 && -n "$token" && $claims == '{"iss":"rollgate-token-server","aud":"rollgate-registry","sub":"'"$user"'","access":[{"type":"repository","name":"testapp","actions":["pull"]}]}' ]]; then
  pass "the realm gives a token for the credentials (${#token} bytes, $(jq -r .expires_in "$work/body") s; claims $claims)"
else
  fail "token from the realm -> $code, claims '$claims'"
fi
printf 'header = "Authorization: Bearer %s"\n' "$token" >"$work/bearer"
chmod 0600 "$work/bearer"

# skopeo goes through the flow itself: push the index (hack/registry.sh push, which reads the
# registry's CA and auth.json), then read it back.
if out=$(bash "$repo/hack/registry.sh" push "$work/images" --dir "$token_dir" 2>&1) &&
  grep -qE "^$reg/testapp:2.0-multiarch +$index_digest\$" <<<"$out" &&
  grep -qE "^$reg/testapp:2.0-large +$large_digest\$" <<<"$out"; then
  pass "hack/registry.sh push through the token flow: the same digests ($(one_line "$out"))"
else
  fail "hack/registry.sh push (token flow): $(one_line "$out")"
fi
req GET "$base/v2/testapp/manifests/2.0-multiarch" -K "$work/bearer" -H "Accept: $ACCEPT"
if [[ $code == 200 && $(header Docker-Content-Digest) == "$(body_sha)" && $(body_sha) == "$index_digest" ]]; then
  pass "GET the index with the Bearer token -> 200, Docker-Content-Digest = sha256(body) = $index_digest"
else
  fail "GET the index with the Bearer token -> $code $(one_line "$(head -c 300 "$work/body")")"
fi
req POST "$base/v2/testapp/blobs/uploads/" -K "$work/bearer"
# The registry lists the missing scope's actions in either order (a Go map).
if [[ $code == 401 && $(header WWW-Authenticate) =~ scope=\"repository:testapp:(pull,push|push,pull)\",error=\"insufficient_scope\" ]]; then
  pass "the pull-only token cannot start an upload: 401, $(header WWW-Authenticate)"
else
  fail "POST blobs/uploads/ with a pull-only token -> $code, WWW-Authenticate $(header WWW-Authenticate)"
fi
if out=$(skopeo inspect --raw --cert-dir "$cert_dir" --authfile "$authfile" "docker://$reg/testapp:2.0-multiarch" 2>&1) &&
  [[ $(jq -r .mediaType <<<"$out") == "$INDEX_TYPE" ]]; then
  pass "skopeo inspect --raw through the token flow: $INDEX_TYPE"
else
  fail "skopeo inspect --raw (token flow): $(one_line "$out")"
fi

bash "$repo/hack/registry.sh" stop --dir "$token_dir" >/dev/null 2>&1 || true
req GET "$base/v2/"
code_reg=$code
req GET "$realm"
if [[ $code_reg == 000 && $code == 000 ]]; then
  pass "stop: the registry and the token server refuse connections"
else
  fail "after stop: registry -> $code_reg, token server -> $code"
fi
if bash "$repo/hack/registry.sh" start --dir "$token_dir" >/dev/null 2>"$work/start.err"; then
  req GET "$token_url" --netrc-file "$work/netrc"
  token=$(jq -r '.token // empty' "$work/body" 2>/dev/null) || token=""
  printf 'header = "Authorization: Bearer %s"\n' "$token" >"$work/bearer"
  req GET "$base/v2/testapp/manifests/2.0-multiarch" -K "$work/bearer" -H "Accept: $ACCEPT"
  if [[ $code == 200 && $(body_sha) == "$index_digest" ]]; then
    pass "start: a new token from the same realm, the index again ($index_digest)"
  else
    fail "after start (token flow): GET the index -> $code"
  fi
else
  fail "hack/registry.sh start (token): $(one_line "$(cat "$work/start.err")")"
fi

# --- 5. no secret printed, nothing left ----------------------------------------------------------

leaks=$(grep -rlF -e "$password" -e "$token" "$work"/*.out "$work"/*.err "$basic_dir"/*.log "$token_dir"/*.log \
  "$basic_dir.up.out" "$token_dir.up.out" 2>/dev/null || true)
if [[ -z "$leaks" && -n "$token" ]]; then
  pass "neither the password nor a token in any output or log of the scripts, the registry or the token server"
else
  fail "a secret in: $(one_line "$leaks")"
fi
pids=$(cat "$basic_dir/registry.pid" "$token_dir/registry.pid" "$token_dir/token.pid" 2>/dev/null | awk '{ print $1 }')
bash "$repo/hack/registry.sh" down --dir "$basic_dir" >/dev/null 2>&1
bash "$repo/hack/registry.sh" down --dir "$token_dir" >/dev/null 2>&1
left=""
for pid in $pids; do
  state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || state=""
  [[ -z "$state" || "$state" == Z ]] || left+=" $pid"
done
if [[ -z "$left" && -n "$pids" ]] && ! (: >"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
  ! (: >"/dev/tcp/127.0.0.1/$token_port") 2>/dev/null; then
  pass "down: no registry or token server left ($(one_line "$pids")), ports closed"
else
  fail "left running:$left"
fi
finish
