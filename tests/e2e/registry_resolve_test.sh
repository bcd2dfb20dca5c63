#!/usr/bin/env bash
# End-to-end test of the registry client (rollout/registry_client.h, issue 16) against a real
# registry: Debian's docker-registry on 127.0.0.1 with TLS and htpasswd, then with the Docker
# token flow (hack/registry.sh up --tls --htpasswd [--token-auth]), holding the images of
# hack/multiarch-image.sh, through `rollgate resolve` (the CLI runs the controller's client).
#
#  1. The two-platform index: its digest is what skopeo pushed; linux/amd64 and linux/arm64 each
#     with the digest and layer size hack/multiarch-image.sh printed; s390x "not offered".
#  2. The large single-platform image: its platform from its config blob, its 20 MiB size.
#  3. A digest reference resolves to itself; a tag that was never pushed -> exit 1 with the
#     registry's MANIFEST_UNKNOWN; no credential -> "requires credentials"; a wrong password ->
#     access denied with the registry's words, the password never printed; trusting another CA only
#     -> a TLS failure; the registry stopped -> a transport error; started again -> resolves again.
#  4. The token flow: the same index resolved through the realm (a bearer token), a wrong password
#     refused by the realm.
#
#   tests/e2e/registry_resolve_test.sh BUILD_DIR   (holds controller/rollgate)
#
# Needs what tests/e2e/registry_auth_test.sh needs. Does not need root. About 40 s.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
[[ $# -eq 1 ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
rollgate=$1/controller/rollgate
[[ -x "$rollgate" ]] || { echo "FAIL: $rollgate is missing (build it first)" >&2; exit 1; }
for tool in skopeo umoci jq python3 openssl htpasswd; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed (hack/bootstrap.sh installs it)" >&2; exit 1; }
done

start=$SECONDS
check_name="registry resolve test"
# shellcheck source-path=SCRIPTDIR source=lib/checks.sh
source "$here/lib/checks.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-registry-resolve-test.XXXXXX")
chmod 0700 "$work"
basic_dir=$work/basic token_dir=$work/token

# shellcheck source-path=SCRIPTDIR source=lib/registry.sh
source "$here/lib/registry.sh"
trap registry_cleanup EXIT

user=promoter
password=$(openssl rand -hex 16)
printf '%s\n' "$password" >"$work/password"
printf 'wrong-%s\n' "$password" >"$work/wrong"
chmod 0600 "$work/password" "$work/wrong"

# resolve ARGS...: runs `rollgate resolve`; sets rc, and out (stdout + stderr).
resolve() {
  rc=0
  out=$("$rollgate" resolve "$@" 2>&1) || rc=$?
  if [[ "$out" == *"$password"* ]]; then
    fail "the password appeared in the output of rollgate resolve $*"
  fi
}

# --- 1. the index over TLS with basic auth --------------------------------------------------------
read -r port token_port realm_port < <(python3 "$repo/hack/lib/free-ports.py" 3)
up "$basic_dir" "$port" --tls --htpasswd "$user"
with_creds=(--registry-ca-file "$ca" --registry-username "$user" --registry-password-file "$work/password")
if ! ROLLGATE_REGISTRY_CERT_DIR=$cert_dir ROLLGATE_REGISTRY_AUTHFILE=$authfile \
  bash "$repo/hack/multiarch-image.sh" --out "$work/images" --push "$reg" >"$work/pushed" 2>"$work/push.err"; then
  fail "hack/multiarch-image.sh --push: $(one_line "$(tail -n 3 "$work/push.err")")"
  finish
fi
index_digest=$(awk -v r="$reg/testapp:2.0-multiarch" '$1 == r { print $2 }' "$work/pushed")
amd=$(awk '$1 == "linux/amd64" { print $2, $4 }' "$work/pushed")
arm=$(awk '$1 == "linux/arm64" { print $2, $4 }' "$work/pushed")
large=$(awk -v r="$reg/testapp:2.0-large" '$1 == r { print $2, $4 }' "$work/pushed")

resolve "$reg/testapp:2.0-multiarch" --platform linux/amd64,linux/arm64,linux/s390x "${with_creds[@]}"
line1=$(head -n 1 <<<"$out")
if ((rc == 0)) && [[ "$line1" == "$reg/testapp:2.0-multiarch  $index_digest  application/vnd.oci.image.index.v1+json" ]] &&
  grep -q "^  platforms: linux/amd64, linux/arm64$" <<<"$out" &&
  grep -Eq "^  linux/amd64 +${amd% *}  .* \(${amd#* } bytes\)$" <<<"$out" &&
  grep -Eq "^  linux/arm64 +${arm% *}  .* \(${arm#* } bytes\)$" <<<"$out" &&
  grep -Eq "^  linux/s390x +not offered$" <<<"$out"; then
  pass "the index resolves to the pushed digest $index_digest, each platform with its digest and size: $(one_line "$out")"
else
  fail "rollgate resolve the index (rc $rc), want $index_digest, amd64 $amd, arm64 $arm: $(one_line "$out")"
fi

resolve "$reg/testapp:2.0-large" "${with_creds[@]}"
if ((rc == 0)) && grep -q "  ${large% *}  " <<<"$out" && grep -q "^  platforms: linux/amd64$" <<<"$out" &&
  grep -Eq "^  linux/amd64 +${large% *}  20\.[0-9] MiB \(${large#* } bytes\)$" <<<"$out"; then
  pass "the large image: its platform from its config blob, $(grep 'linux/amd64 ' <<<"$out" | awk '{print $3, $4}') of layers"
else
  fail "rollgate resolve the large image (rc $rc), want ${large}: $(one_line "$out")"
fi

resolve "$reg/testapp@$index_digest" "${with_creds[@]}"
if ((rc == 0)) && [[ "$(head -n 1 <<<"$out")" == "$reg/testapp@$index_digest  $index_digest  "* ]]; then
  pass "a digest reference resolves to itself (the body verified against it)"
else
  fail "rollgate resolve by digest (rc $rc): $(one_line "$out")"
fi

# --- 2. what goes wrong ---------------------------------------------------------------------------
resolve "$reg/testapp:2.0-missing" "${with_creds[@]}"
if ((rc == 1)) && [[ "$out" == *"NotFound"* && "$out" == *"MANIFEST_UNKNOWN"* ]]; then
  pass "a tag never pushed: exit 1, $(one_line "$out")"
else
  fail "the missing tag (rc $rc): $(one_line "$out")"
fi
resolve "$reg/testapp:2.0-multiarch" --registry-ca-file "$ca"
if ((rc == 1)) && [[ "$out" == *"requires credentials"* ]]; then
  pass "no credential: exit 1, $(one_line "$out")"
else
  fail "no credential (rc $rc): $(one_line "$out")"
fi
resolve "$reg/testapp:2.0-multiarch" --registry-ca-file "$ca" --registry-username "$user" --registry-password-file "$work/wrong"
if ((rc == 1)) && [[ "$out" == *"Unauthorized"* && "$out" == *"UNAUTHORIZED"* && "$out" != *"wrong-"* ]]; then
  pass "a wrong password: exit 1, the registry's words, no password: $(one_line "$out")"
else
  fail "a wrong password (rc $rc): $(one_line "$out")"
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=another-ca \
  -keyout "$work/other-ca.key" -out "$work/other-ca.crt" >/dev/null 2>&1
resolve "$reg/testapp:2.0-multiarch" --registry-ca-file "$work/other-ca.crt" --registry-username "$user" --registry-password-file "$work/password"
if ((rc == 1)) && [[ "$out" == *"Transport"* ]]; then
  pass "trusting another CA only: exit 1, the TLS handshake fails: $(one_line "$out")"
else
  fail "without the CA (rc $rc): $(one_line "$out")"
fi
bash "$repo/hack/registry.sh" stop --dir "$basic_dir" >/dev/null 2>&1
resolve "$reg/testapp:2.0-multiarch" "${with_creds[@]}"
if ((rc == 1)) && [[ "$out" == *"Transport"* ]]; then
  pass "the registry stopped: exit 1, $(one_line "$out")"
else
  fail "the registry stopped (rc $rc): $(one_line "$out")"
fi
bash "$repo/hack/registry.sh" start --dir "$basic_dir" >/dev/null 2>"$work/start.err" || fail "registry.sh start: $(one_line "$(cat "$work/start.err")")"
resolve "$reg/testapp:2.0-multiarch" "${with_creds[@]}"
if ((rc == 0)) && [[ "$out" == *"$index_digest"* ]]; then
  pass "the registry started again: the same digest"
else
  fail "after start (rc $rc): $(one_line "$out")"
fi

# --- 3. the Docker token flow ---------------------------------------------------------------------
up "$token_dir" "$token_port" --tls --htpasswd "$user" --token-auth --token-port "$realm_port"
with_creds=(--registry-ca-file "$ca" --registry-username "$user" --registry-password-file "$work/password")
if ! ROLLGATE_REGISTRY_CERT_DIR=$cert_dir ROLLGATE_REGISTRY_AUTHFILE=$authfile \
  bash "$repo/hack/multiarch-image.sh" --out "$work/images" --push "$reg" >"$work/pushed-token" 2>"$work/push-token.err"; then
  fail "hack/multiarch-image.sh --push (token registry): $(one_line "$(tail -n 3 "$work/push-token.err")")"
  finish
fi
resolve "$reg/testapp:2.0-multiarch" --platform linux/arm64 "${with_creds[@]}"
if ((rc == 0)) && [[ "$(head -n 1 <<<"$out")" == *"  $index_digest  "* ]] && grep -Eq "^  linux/arm64 +${arm% *} " <<<"$out"; then
  pass "through the token realm (Bearer): the same index digest and arm64 image"
else
  fail "token flow (rc $rc): $(one_line "$out")"
fi
resolve "$reg/testapp:2.0-multiarch" --registry-ca-file "$ca" --registry-username "$user" --registry-password-file "$work/wrong"
if ((rc == 1)) && [[ "$out" == *"token realm refused"* && "$out" != *"wrong-"* ]]; then
  pass "a wrong password at the realm: exit 1, $(one_line "$out")"
else
  fail "token flow with a wrong password (rc $rc): $(one_line "$out")"
fi

finish
