#!/usr/bin/env bash
# End-to-end test of the test application images (hack/test-app-images.sh) and the local registry
# (hack/registry.sh), without a cluster or a container engine (issue 15):
#
#  1. Reproducible: hack/test-app-images.sh twice gives the same manifest digests and byte-identical
#     archives, one per tag (1.0, 2.0, 2.0-never-ready, 2.0-crash; never 2.0-missing), each under
#     1 MiB compressed, with the configs that pick their behaviour (user 65532:65532, entrypoint,
#     TESTAPP_VERSION, TESTAPP_MODE).
#  2. A registry of its own (hack/registry.sh up, in a temporary directory, on a free loopback
#     port): push (hack/registry.sh push) keeps every digest, `skopeo inspect` of
#     127.0.0.1:PORT/testapp:2.0 gives the pushed digest, the repository lists exactly the four
#     tags, and testapp:2.0-missing is absent (manifest unknown).
#  3. The images pulled back from the registry (skopeo, digests checked), unpacked (umoci) and run
#     under runc as 65532:65532 with a read-only root file system, no capabilities and the host's
#     network namespace: testapp:2.0 answers /healthz 200 "ok" and / "2.0" and stops on SIGTERM;
#     2.0-never-ready answers /healthz 503 (and / "2.0"); 2.0-crash exits 1 after about 1 s with
#     its line on stderr.
#  4. hack/registry.sh down stops the registry (twice is fine); no registry or container is left.
#
#   tests/e2e/registry_test.sh
#
# Needs root (runc) and the Debian packages of hack/bootstrap.sh (docker-registry, skopeo, umoci,
# runc, gcc with libc6-dev); fails at once, saying so, without them (no skip: a skipped check would
# hide a broken image or registry). Prints PASS/FAIL per check and exits non-zero when any fails.
# About 15 s.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
[[ $# -eq 0 ]] || { echo "usage: $0 (no arguments)" >&2; exit 2; }
if [[ $(id -u) -ne 0 ]]; then
  echo "FAIL: needs root (runc runs the images)" >&2
  exit 1
fi
for tool in skopeo umoci runc curl jq python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed (hack/bootstrap.sh installs it)" >&2; exit 1; }
done

readonly USER_ID=65532
readonly NAME=testapp
readonly TAGS=(1.0 2.0 2.0-crash 2.0-never-ready) # sorted, as the registry lists them
declare -A VERSION=([1.0]=1.0 [2.0]=2.0 [2.0-never-ready]=2.0 [2.0-crash]=2.0)
declare -A MODE=([1.0]=serve [2.0]=serve [2.0-never-ready]=never-ready [2.0-crash]=crash)
start=$SECONDS
check_name="registry test"
# shellcheck source-path=SCRIPTDIR source=lib/checks.sh
source "$here/lib/checks.sh"
containers=()
work=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-registry-test.XXXXXX")
registry_dir=$work/registry


# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local id
  for id in "${containers[@]}"; do
    runc delete --force "$id" >/dev/null 2>&1 || true
  done
  bash "$repo/hack/registry.sh" down --dir "$registry_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# free_ports N: N distinct loopback ports that can be bound now, below the ephemeral range.
free_ports() { python3 "$repo/hack/lib/free-ports.py" "$1"; }

# --- 1. two builds, the same images -------------------------------------------------------------

for run in a b; do
  if ! bash "$repo/hack/test-app-images.sh" --out "$work/$run" >"$work/$run.out" 2>"$work/$run.err"; then
    fail "hack/test-app-images.sh (build $run): $(one_line "$(tail -n 5 "$work/$run.err")")"
    finish
  fi
done
cat "$work/a.out"

declare -A digest=()
for tag in "${TAGS[@]}"; do
  a=$work/a/$NAME-$tag.tar b=$work/b/$NAME-$tag.tar
  if [[ ! -f "$a" || ! -f "$b" ]]; then
    fail "$NAME:$tag: no archive $(basename "$a") in both builds"
    continue
  fi
  digest[$tag]=$(tar -xOf "$a" index.json | jq -r '.manifests[0].digest')
  digest_b=$(tar -xOf "$b" index.json | jq -r '.manifests[0].digest')
  if [[ "${digest[$tag]}" == sha256:* && "${digest[$tag]}" == "$digest_b" ]] && cmp -s "$a" "$b"; then
    pass "$NAME:$tag: two builds, the same digest ${digest[$tag]}, byte-identical archives"
  else
    fail "$NAME:$tag: two builds differ: ${digest[$tag]} and $digest_b"
  fi
  if grep -q "^$NAME:$tag .* ${digest[$tag]} " "$work/a.out"; then
    pass "$NAME:$tag: hack/test-app-images.sh printed its digest"
  else
    fail "$NAME:$tag: the summary does not show ${digest[$tag]}: $(one_line "$(cat "$work/a.out")")"
  fi
  if ! inspect=$(skopeo inspect --raw "oci-archive:$a" 2>&1) || ! config=$(skopeo inspect --config "oci-archive:$a" 2>&1); then
    fail "$NAME:$tag: skopeo inspect oci-archive:$a: $(one_line "$inspect ${config:-}")"
    continue
  fi
  size=$(jq '[.config.size, (.layers[].size)] | add' <<<"$inspect")
  if ((size < 1048576)); then
    pass "$NAME:$tag: $((size / 1024)) KiB compressed (< 1 MiB)"
  else
    fail "$NAME:$tag: $size bytes compressed (>= 1 MiB)"
  fi
  got=$(jq -c '[.config.User, .config.Entrypoint, (.config.Cmd // []),
    ([.config.Env[] | select(startswith("TESTAPP_"))] | sort)]' <<<"$config")
  want="[\"$USER_ID:$USER_ID\",[\"/usr/local/bin/testapp\"],[],[\"TESTAPP_MODE=${MODE[$tag]}\",\"TESTAPP_VERSION=${VERSION[$tag]}\"]]"
  if [[ "$got" == "$want" ]]; then
    pass "$NAME:$tag: config: user, entrypoint, TESTAPP_MODE=${MODE[$tag]} TESTAPP_VERSION=${VERSION[$tag]}"
  else
    fail "$NAME:$tag: config $got, want $want"
  fi
done
others=$(find "$work/a" -name '*.tar' | grep -cvE "/$NAME-(1\.0|2\.0|2\.0-never-ready|2\.0-crash)\.tar$" || true)
if [[ ! -e "$work/a/$NAME-2.0-missing.tar" && "$others" == 0 ]]; then
  pass "$NAME:2.0-missing: not built (nor any other archive)"
else
  fail "unexpected archives in the build: $(one_line "$(ls "$work/a")")"
fi
((${#digest[@]} == ${#TAGS[@]})) || finish

# --- 2. the registry: push, inspect, the missing tag ----------------------------------------------

read -r reg_port app_port < <(free_ports 2)
registry=127.0.0.1:$reg_port
if out=$(bash "$repo/hack/registry.sh" up --dir "$registry_dir" --port "$reg_port" 2>"$work/up.err") &&
  [[ "$out" == "export ROLLGATE_REGISTRY=$registry" ]]; then
  pass "hack/registry.sh up: $registry answers GET /v2/ ($(one_line "$(cat "$work/up.err")"))"
else
  fail "hack/registry.sh up --port $reg_port: $(one_line "$out $(cat "$work/up.err")")"
  finish
fi
reg_pid=$(awk '{ print $1 }' "$registry_dir/registry.pid")
if [[ $(tr '\0' ' ' <"/proc/$reg_pid/cmdline") == *"docker-registry serve $registry_dir/config.yml"* ]] &&
  grep -q "addr: $registry\$" "$registry_dir/config.yml"; then
  pass "the registry is its own process (pid $reg_pid, config and storage in the test's directory, $registry only)"
else
  fail "pid $reg_pid is not this test's registry: $(tr '\0' ' ' <"/proc/$reg_pid/cmdline" 2>&1)"
fi
if status=$(bash "$repo/hack/registry.sh" status --dir "$registry_dir"); then
  pass "hack/registry.sh status: $status"
else
  fail "hack/registry.sh status: $status"
fi

if out=$(bash "$repo/hack/registry.sh" push "$work/a" --dir "$registry_dir" 2>&1); then
  echo "$out"
  for tag in "${TAGS[@]}"; do
    if grep -qE "^$registry/$NAME:$tag +${digest[$tag]}\$" <<<"$out"; then
      pass "push: $registry/$NAME:$tag ${digest[$tag]}"
    else
      fail "push: no line '$registry/$NAME:$tag ${digest[$tag]}' in: $(one_line "$out")"
    fi
  done
else
  fail "hack/registry.sh push $work/a: $(one_line "$out")"
  finish
fi

if out=$(skopeo inspect --tls-verify=false "docker://$registry/$NAME:2.0" 2>&1) &&
  [[ $(jq -r .Digest <<<"$out") == "${digest[2.0]}" ]]; then
  pass "skopeo inspect docker://$registry/$NAME:2.0: the pushed digest ${digest[2.0]}"
else
  fail "skopeo inspect docker://$registry/$NAME:2.0: $(one_line "$out") (want ${digest[2.0]})"
fi
for tag in "${TAGS[@]}"; do
  got=$(skopeo inspect --raw --tls-verify=false "docker://$registry/$NAME:$tag" 2>&1 | sha256sum | cut -d' ' -f1)
  if [[ "sha256:$got" == "${digest[$tag]}" ]]; then
    pass "$registry/$NAME:$tag: the registry serves the archive's manifest (sha256 matches)"
  else
    fail "$registry/$NAME:$tag: the served manifest hashes to sha256:$got, not ${digest[$tag]}"
  fi
done
want_tags=$(printf '%s\n' "${TAGS[@]}" | jq -Rsc 'split("\n")[:-1]')
if out=$(skopeo list-tags --tls-verify=false "docker://$registry/$NAME" 2>&1) &&
  [[ $(jq -c '.Tags | sort' <<<"$out") == "$want_tags" ]]; then
  pass "skopeo list-tags $registry/$NAME: exactly $want_tags"
else
  fail "skopeo list-tags $registry/$NAME: $(one_line "$out"), want $want_tags"
fi
if out=$(skopeo inspect --tls-verify=false "docker://$registry/$NAME:2.0-missing" 2>&1); then
  fail "$registry/$NAME:2.0-missing exists: $(one_line "$out")"
elif grep -qi 'manifest unknown' <<<"$out"; then
  pass "$registry/$NAME:2.0-missing is absent (skopeo inspect: manifest unknown)"
else
  fail "$registry/$NAME:2.0-missing: skopeo inspect failed, but not with manifest unknown: $(one_line "$out")"
fi

# --- 3. pulled back and run under runc ------------------------------------------------------------

echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$work/policy.json"

# pull_and_unpack TAG: TAG from the registry into the OCI layout $work/pulled, then its runtime
# bundle in $work/bundle-TAG: runs as the image's user, read-only root file system, no
# capabilities, the host's network namespace (so that curl reaches it), PORT=$app_port.
pull_and_unpack() {
  local tag=$1 bundle=$work/bundle-$1 got
  skopeo --policy "$work/policy.json" copy --quiet --src-tls-verify=false \
    "docker://$registry/$NAME:$tag" "oci:$work/pulled:$tag" || return 1
  got=$(jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
    "$work/pulled/index.json")
  [[ "$got" == "${digest[$tag]}" ]] || { echo "pulled digest $got, pushed ${digest[$tag]}"; return 1; }
  umoci unpack --image "$work/pulled:$tag" "$bundle" >/dev/null || return 1
  jq --arg port "PORT=$app_port" '.process.terminal = false | .root.readonly = true
      | .process.env += [$port]
      | .process.capabilities = {bounding: [], effective: [], inheritable: [], permitted: [], ambient: []}
      | .linux.namespaces |= map(select(.type != "network"))' \
    "$bundle/config.json" >"$bundle/config.json.new"
  mv "$bundle/config.json.new" "$bundle/config.json"
}

new_id() {
  id=rollgate-registry-test-$$-${#containers[@]}
  containers+=("$id")
}

# http PATH: sets code and body (code 000: no connection).
http() {
  body=$(curl -sS --max-time 3 -o - -w '\n%{http_code}' "http://127.0.0.1:$app_port$1" 2>/dev/null) || true
  code=${body##*$'\n'}
  body=${body%$'\n'*}
  body=${body%$'\n'} # the body's own newline
  [[ -n "$code" ]] || code=000
}

# container_status ID: runc's status of the container (running, stopped, ...), or "gone".
container_status() { runc state "$1" 2>/dev/null | jq -r .status 2>/dev/null || echo gone; }

# serve_check TAG WANT_HEALTHZ: runs TAG detached, checks /healthz and /, then SIGTERM.
serve_check() {
  local tag=$1 want_healthz=$2 deadline
  local bundle=$work/bundle-$tag
  new_id
  if ! runc run --detach --bundle "$bundle" "$id" >"$work/$id.out" 2>"$work/$id.err" </dev/null; then
    fail "$NAME:$tag: runc run: $(one_line "$(cat "$work/$id.err")")"
    return
  fi
  deadline=$((SECONDS + 10))
  http /healthz
  while [[ $code == 000 ]] && ((SECONDS < deadline)) && [[ $(container_status "$id") == running ]]; do
    sleep 0.1
    http /healthz
  done
  if [[ $code == "$want_healthz" ]]; then
    pass "$NAME:$tag under runc: GET /healthz -> $code $(one_line "$body")"
  else
    fail "$NAME:$tag under runc: GET /healthz -> $code $(one_line "$body") (want $want_healthz); $(one_line "$(cat "$work/$id.out" "$work/$id.err")")"
  fi
  http /
  if [[ $code == 200 && $body == "${VERSION[$tag]}" ]]; then
    pass "$NAME:$tag under runc: GET / -> 200 \"$body\""
  else
    fail "$NAME:$tag under runc: GET / -> $code \"$(one_line "$body")\" (want 200 \"${VERSION[$tag]}\")"
  fi
  local pid user
  pid=$(runc state "$id" 2>/dev/null | jq -r '.pid // 0') || pid=0
  user=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || user=""
  if [[ $user == "$USER_ID" ]]; then
    pass "$NAME:$tag under runc: runs as uid $USER_ID"
  else
    fail "$NAME:$tag under runc: uid ${user:-unknown} (pid $pid)"
  fi
  runc kill "$id" TERM 2>/dev/null || true
  deadline=$((SECONDS + 5))
  while [[ $(container_status "$id") == running ]] && ((SECONDS < deadline)); do
    sleep 0.1
  done
  if [[ $(container_status "$id") != running ]]; then
    pass "$NAME:$tag under runc: stops on SIGTERM"
  else
    fail "$NAME:$tag under runc: still running 5 s after SIGTERM"
  fi
  runc delete --force "$id" >/dev/null 2>&1 || true
}

for tag in 2.0 2.0-never-ready 2.0-crash; do
  if ! msg=$(pull_and_unpack "$tag" 2>&1); then
    fail "$NAME:$tag: pull from $registry and unpack: $(one_line "$msg")"
  fi
done
[[ ! -d "$work/bundle-2.0" ]] || serve_check 2.0 200
[[ ! -d "$work/bundle-2.0-never-ready" ]] || serve_check 2.0-never-ready 503
if [[ -d "$work/bundle-2.0-crash" ]]; then
  new_id
  t0=$(date +%s%N)
  rc=0
  timeout 20 runc run --bundle "$work/bundle-2.0-crash" "$id" >"$work/$id.out" 2>"$work/$id.err" </dev/null || rc=$?
  ms=$((($(date +%s%N) - t0) / 1000000))
  if ((rc == 1 && ms >= 900 && ms < 10000)) && grep -q 'crashing on purpose' "$work/$id.err"; then
    pass "$NAME:2.0-crash under runc: exit 1 after ${ms} ms, stderr: $(one_line "$(cat "$work/$id.err")")"
  else
    fail "$NAME:2.0-crash under runc: exit $rc after ${ms} ms (want 1 after about 1 s), output: $(one_line "$(cat "$work/$id.out" "$work/$id.err")")"
  fi
  runc delete --force "$id" >/dev/null 2>&1 || true
fi

# --- 4. down, nothing left ------------------------------------------------------------------------

if out=$(bash "$repo/hack/registry.sh" down --dir "$registry_dir" 2>&1) &&
  out2=$(bash "$repo/hack/registry.sh" down --dir "$registry_dir" 2>&1); then
  pass "hack/registry.sh down, twice: $(one_line "$out / $out2")"
else
  fail "hack/registry.sh down: $(one_line "$out ${out2:-}")"
fi
rc=0
bash "$repo/hack/registry.sh" status --dir "$registry_dir" >/dev/null || rc=$?
if [[ ! -d "/proc/$reg_pid" || $(awk '{ print $3 }' "/proc/$reg_pid/stat" 2>/dev/null) == Z ]] && ((rc == 3)) &&
  ! (: >"/dev/tcp/127.0.0.1/$reg_port") 2>/dev/null; then
  pass "the registry (pid $reg_pid) is gone, port $reg_port closed, status says not running"
else
  fail "the registry is still there: pid $reg_pid, status exit $rc"
fi
left=$(runc list -q 2>/dev/null | grep -c "^rollgate-registry-test-$$-" || true)
if [[ "$left" == 0 ]]; then
  pass "no container left"
else
  fail "$left container(s) left: $(runc list -q | grep "^rollgate-registry-test-$$-" | paste -sd' ')"
fi

finish
