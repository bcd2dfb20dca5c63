#!/usr/bin/env bash
# End-to-end test of the rollgate CLI as a kubectl plugin (issue 18) against the shared local
# control plane and the real rollgate-controller (a child process, --namespace of the test's own
# namespace, --allowed-registries registry.example.com; kwok makes the Deployments' pods ready):
#
#  1. The plugin: the build's kubectl-rollgate alone on PATH; `kubectl rollgate version`,
#     `--help` (its usage line says "kubectl rollgate"), `-n NS list`, `list -A`, `--context`.
#  2. `get NAME --watch --until-done`, piped: rollout `web` (staging automatic, prod Manual) is
#     shown reaching AwaitingApproval with "Waiting for: approval of environment prod: kubectl
#     rollgate promote web"; `kubectl rollgate promote web`; the watch shows Succeeded (both
#     environments) and exits 0 with nothing on stderr and no escape sequence in the pipe.
#     Two failing rollouts: a target Deployment that does not exist (DeploymentNotFound) and an
#     image from a registry outside --allowed-registries (ImageNotAllowed): the watch exits 1,
#     its output names the reason, stderr says `error: the rollout ended Failed`. Then abort and
#     retry on a live rollout exit 0 and set their annotations.
#  3. Every verb (list, get, get --watch, promote, abort, retry): (a) a missing rollout: exit 1,
#     `error: ...not found...` on stderr, nothing on stdout (list of an empty namespace: exit 0,
#     "No resources found"); (b) a forbidden namespace (a ServiceAccount without rights, its token
#     from `kubectl create token` in a kubeconfig of its own): exit 1, `error: Forbidden` naming
#     the ServiceAccount; (c) an unreachable API server (a kubeconfig pointing at a closed port on
#     127.0.0.1): exit 1 within seconds, `error:` on stderr, nothing on stdout; (d) an unknown
#     flag: exit 2, `error: unknown flag`; a kubeconfig or context that cannot be used: exit 1
#     (kubectl's code).
#  4. Output formats of a live rollout: `get -o json` (jq), `-o yaml` (its key lines, and the same
#     object as the JSON when read back by python3's yaml), `-o name`; `list -o wide` has IMAGES
#     and MESSAGE beyond the plain table; `list -o json` is a List holding the rollouts.
#  6. history and diff: `history web -o json` holds revision 1 Succeeded (status.history through
#     the real API server and CRD); a second revision (app:2.1) that waits for prod's approval:
#     `history web` shows 1 Succeeded and 2 (current) AwaitingApproval, then the Events;
#     `diff web` marks staging `=` and prod `~` (2.1 wanted, 2.0 running), exit 0; `diff missing`
#     has a Missing row for its absent Deployment. history and diff join every verb's checks in 3.
#  5. Shell completion: the build's kubectl_complete-rollgate (a link to the CLI, which kubectl
#     1.26+ runs from PATH for `kubectl rollgate <TAB>`): `-n NS get ''` prints the rollout's
#     name and `:4`, verbs and -o's formats too; `kubectl __complete rollgate ...` (kubectl's own
#     completion) gives the same through it; the script of `rollgate completion bash` completes
#     the name by asking `rollgate __complete`; a forbidden or unreachable API server gives no
#     names, still `:4`, exit 0.
#
# Needs KUBECONFIG, CONTROL_PLANE_BIN, ROLLGATE_CONTROLLER_BIN, ROLLGATE_CLI_BIN, ROLLGATE_CRD
# (ctest sets them: rollgate_add_e2e_test; the kubectl-rollgate and kubectl_complete-rollgate
# symlinks are next to ROLLGATE_CLI_BIN), jq, python3 (with yaml), curl and bash. Its controller
# acts on the test's namespace only (--namespace), but other tests' cluster-wide controllers would
# act on this test's rollouts: RESOURCE_LOCK rollgate_controller. About 20 s.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
for v in KUBECONFIG CONTROL_PLANE_BIN ROLLGATE_CONTROLLER_BIN ROLLGATE_CLI_BIN ROLLGATE_CRD; do
  [[ -n "${!v:-}" ]] || { echo "FAIL: $v is not set (run it through ctest: e2e_cli)" >&2; exit 1; }
done
kubectl=$CONTROL_PLANE_BIN/kubectl
plugin=$(dirname "$ROLLGATE_CLI_BIN")/kubectl-rollgate
completer=$(dirname "$ROLLGATE_CLI_BIN")/kubectl_complete-rollgate
[[ -x "$kubectl" ]] || { echo "FAIL: no kubectl at $kubectl" >&2; exit 1; }
[[ -x "$ROLLGATE_CONTROLLER_BIN" ]] || { echo "FAIL: $ROLLGATE_CONTROLLER_BIN is missing" >&2; exit 1; }
for tool in jq python3 curl; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed" >&2; exit 1; }
done
export KUBECONFIG

start=$SECONDS
check_name="cli test"
# shellcheck source-path=SCRIPTDIR source=lib/checks.sh
source "$here/lib/checks.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-cli-test.XXXXXX")
chmod 0700 "$work"
export KUBECACHEDIR=$work/kube-cache
ns=rg-cli-$$-$RANDOM
empty_ns=$ns-empty
controller_pid="" controller_log=$work/controller.log
unset NO_COLOR

kc() { "$kubectl" "$@"; }

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  if [[ -n "$controller_pid" ]]; then
    kill -TERM "$controller_pid" 2>/dev/null || true
    wait "$controller_pid" 2>/dev/null || true
  fi
  if ((failures)) && [[ -s "$controller_log" ]]; then
    echo "--- last lines of the controller's log ---"
    tail -n 25 "$controller_log"
  fi
  kc delete namespace "$ns" "$empty_ns" --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- helpers -----------------------------------------------------------------------------------

# expect WHAT RC ERR_REGEX [STDOUT_EMPTY]: PASS/FAIL on the last run's exit code, its stderr
# matching ERR_REGEX (extended, on one line), and, with STDOUT_EMPTY=empty, nothing on stdout.
expect() {
  local what=$1 want_rc=$2 re=$3 empty=${4:-} e
  e=$(one_line "$err" | sed 's/ $//')
  if [[ "$rc" == "$want_rc" ]] && grep -Eq -- "$re" <<<"$e" && { [[ -z "$empty" ]] || [[ -z "$out" ]]; }; then
    pass "$what: exit $rc, stderr \"$(cut -c1-160 <<<"$e")\""
  else
    fail "$what: want exit $want_rc, stderr ~ /$re/${empty:+, empty stdout}; got exit $rc, stderr \"$e\", stdout \"$(one_line "$out")\""
  fi
}
rollout_json() { kc -n "$ns" get "containerrollout/$1" -o json 2>/dev/null || echo '{}'; }
# wait_phase NAME PHASE SECONDS: polls until status.phase is PHASE; returns 1 at the timeout.
wait_phase() {
  local until=$((SECONDS + $3))
  until [[ $(rollout_json "$1" | jq -r '.status.phase // ""') == "$2" ]]; do
    ((SECONDS < until)) || return 1
    kill -0 "$controller_pid" 2>/dev/null || { fail "the controller exited: $(one_line "$(tail -n 12 "$controller_log")")"; finish; }
    sleep 0.5
  done
}
# deployment NAME: two replicas of container app, registry.example.com/app:1.0 (kwok pulls
# nothing), ready one second after they start.
deployment() {
  kc -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1, labels: {app: $1}}
spec:
  replicas: 2
  selector: {matchLabels: {app: $1}}
  template:
    metadata:
      labels: {app: $1}
      annotations: {pod-ready.stage.kwok.x-k8s.io/delay: 1s}
    spec:
      terminationGracePeriodSeconds: 0
      containers: [{name: app, image: registry.example.com/app:1.0}]
EOF
}
# rollout NAME IMAGE ENVIRONMENTS_YAML: a ContainerRollout of image `app`.
rollout() {
  kc -n "$ns" apply -f - >"$work/apply.out" 2>&1 <<EOF || { fail "apply rollout $1: $(one_line "$(cat "$work/apply.out")")"; finish; }
apiVersion: rollgate.io/v1alpha1
kind: ContainerRollout
metadata: {name: $1}
spec:
  images: {app: "$2"}
  environments:
$3
EOF
}
# watch_start NAME: `kubectl rollgate get NAME --watch --until-done` piped into cat, in the
# background (at most 90 s); its stdout in $work/watch-NAME.out, stderr .err, exit code .rc.
watch_start() {
  { code=0
    timeout 90 "$kubectl" rollgate -n "$ns" get "$1" --watch --until-done 2>"$work/watch-$1.err" || code=$?
    echo "$code" >"$work/watch-$1.rc"; } | cat >"$work/watch-$1.out" &
}
# watch_wait NAME SECONDS: waits for the watch to end; sets rc, out, err (rc "" at the timeout).
watch_wait() {
  local until=$((SECONDS + $2))
  while [[ ! -s "$work/watch-$1.rc" ]] && ((SECONDS < until)); do sleep 0.3; done
  sleep 0.2 # cat drains the pipe
  rc=$(cat "$work/watch-$1.rc" 2>/dev/null || true)
  out=$(cat "$work/watch-$1.out")
  err=$(cat "$work/watch-$1.err")
}
# watch_shows NAME REGEX SECONDS: waits until the watch's output has a line matching REGEX.
watch_shows() {
  local until=$((SECONDS + $3))
  until grep -Eq -- "$2" "$work/watch-$1.out" 2>/dev/null; do
    ((SECONDS < until)) || return 1
    sleep 0.3
  done
}

# --- the CRD, the namespace, the Deployments, the controller -----------------------------------
if out=$(kc apply --server-side --force-conflicts --field-manager=rollgate-e2e -f "$ROLLGATE_CRD" 2>&1) &&
  kc wait --for=condition=Established --timeout=60s crd/containerrollouts.rollgate.io >/dev/null 2>&1; then
  pass "the CRD is applied and Established"
else
  fail "the CRD does not apply: $(one_line "$out")"
  finish
fi
kc create namespace "$ns" >/dev/null
kc create namespace "$empty_ns" >/dev/null
for d in web-staging web-prod image-app; do deployment "$d"; done
for d in web-staging web-prod image-app; do
  if ! out=$(kc -n "$ns" rollout status "deployment/$d" --timeout=60s 2>&1); then
    fail "deployment $d did not become available: $(one_line "$out")"
    finish
  fi
done

read -r mport hport < <(python3 "$repo/hack/lib/free-ports.py" 2)
"$ROLLGATE_CONTROLLER_BIN" --kubeconfig "$KUBECONFIG" --namespace "$ns" \
  --allowed-registries registry.example.com --log-level debug \
  --metrics-bind-address "127.0.0.1:$mport" --health-probe-bind-address "127.0.0.1:$hport" \
  >"$controller_log" 2>&1 &
controller_pid=$!
until curl -fsS -o /dev/null "http://127.0.0.1:$hport/readyz" 2>/dev/null; do
  if ! kill -0 "$controller_pid" 2>/dev/null || ((SECONDS - start > 60)); then
    fail "rollgate-controller did not become ready: $(one_line "$(tail -n 12 "$controller_log")")"
    finish
  fi
  sleep 0.3
done
pass "rollgate-controller ready (--namespace $ns --allowed-registries registry.example.com)"

# --- 1. the kubectl plugin ---------------------------------------------------------------------
if [[ -L "$plugin" && $(readlink -f "$plugin") == $(readlink -f "$ROLLGATE_CLI_BIN") ]]; then
  pass "the build made $plugin, a link to the CLI"
else
  fail "$plugin is not a link to $ROLLGATE_CLI_BIN"
  finish
fi
mkdir "$work/bin"
ln -s "$plugin" "$work/bin/kubectl-rollgate"
export PATH=$work/bin:$PATH

run plugin-version "$kubectl" rollgate version
if [[ $rc == 0 && "$out" =~ ^rollgate\ [^[:space:]]+$ && -z "$err" ]]; then
  pass "kubectl rollgate version: \"$out\""
else
  fail "kubectl rollgate version: exit $rc, stdout \"$out\", stderr \"$(one_line "$err")\""
fi
run plugin-help "$kubectl" rollgate --help
if [[ $rc == 0 && $(head -n1 <<<"$out") == "Usage: kubectl rollgate [flags] COMMAND" &&
  $(grep -c '^Usage:' <<<"$out") == 1 ]]; then
  pass "kubectl rollgate --help: one usage line, \"$(head -n1 <<<"$out")\""
else
  fail "kubectl rollgate --help: exit $rc, $(one_line "$(head -n3 <<<"$out")")"
fi
run plugin-list-empty "$kubectl" rollgate -n "$ns" list
expect "kubectl rollgate -n NS list (no rollouts yet)" 0 "^No resources found in $ns namespace\.$" empty

# --- 2. get --watch --until-done through approval ----------------------------------------------
rollout web registry.example.com/app:2.0 "  - name: staging
    targets: [{deployment: web-staging, containers: {app: app}}]
  - name: prod
    approval: Manual
    targets: [{deployment: web-prod, containers: {app: app}}]"
watch_start web
if watch_shows web '^Phase: +‖ AwaitingApproval$' 60 &&
  watch_shows web '^Waiting for: approval of environment prod: kubectl rollgate promote web$' 5 &&
  watch_shows web '^└── prod +‖ AwaitingApproval' 5 &&
  watch_shows web 'approval: awaited: kubectl rollgate promote web$' 5; then
  pass "get web --watch: AwaitingApproval, \"Waiting for: approval of environment prod: kubectl rollgate promote web\""
else
  fail "get web --watch never showed AwaitingApproval and what it waits for: $(one_line "$(tail -n 20 "$work/watch-web.out")") $(one_line "$(cat "$work/watch-web.err")")"
fi
if grep -Eq '^├── staging +✔ Succeeded' "$work/watch-web.out" &&
  grep -Eq '^│   └── Deployment '"$ns"'/web-staging  updated 2/2  ready 2/2  available 2/2$' "$work/watch-web.out"; then
  pass "get web --watch: staging Succeeded with its Deployment's replicas (updated/ready/available 2/2)"
else
  fail "get web --watch: no Succeeded staging with 2/2 replicas: $(one_line "$(tail -n 20 "$work/watch-web.out")")"
fi

# --- 4. output formats of the live rollout (while it awaits approval) -----------------------------
run get-json "$kubectl" rollgate -n "$ns" get web -o json
if [[ $rc == 0 ]] && jq -e --arg ns "$ns" '.kind == "ContainerRollout" and .apiVersion == "rollgate.io/v1alpha1"
    and .metadata.name == "web" and .metadata.namespace == $ns and .status.phase == "AwaitingApproval"
    and (.spec.environments | length) == 2' "$work/get-json.out" >/dev/null; then
  pass "get web -o json: parses (jq), kind, name, namespace, phase AwaitingApproval, 2 environments"
else
  fail "get web -o json: exit $rc, $(one_line "$(head -c 600 "$work/get-json.out")") $(one_line "$err")"
fi
run get-yaml "$kubectl" rollgate -n "$ns" get web -o yaml
missing=""
for line in "apiVersion: rollgate.io/v1alpha1" "kind: ContainerRollout" "metadata:" "  name: web" \
  "  namespace: $ns" "spec:" "  environments:" "  - approval: Automatic" "    name: staging" \
  "  - approval: Manual" "    name: prod" "status:" "  phase: AwaitingApproval"; do
  grep -qxF -- "$line" "$work/get-yaml.out" || missing+="[$line] "
done
if [[ $rc == 0 && -z "$missing" ]]; then
  pass "get web -o yaml: the key lines (apiVersion, kind, metadata.name/namespace, spec.environments, status.phase)"
else
  fail "get web -o yaml: exit $rc, missing lines $missing: $(one_line "$(head -c 600 "$work/get-yaml.out")")"
fi
if same=$(python3 - "$work/get-yaml.out" "$work/get-json.out" <<'PY'
import json, sys, yaml
y = yaml.safe_load(open(sys.argv[1]))
j = json.load(open(sys.argv[2]))
print("same" if (y["spec"], y["metadata"]["uid"], y["kind"]) == (j["spec"], j["metadata"]["uid"], j["kind"]) else "different")
PY
) && [[ "$same" == same ]]; then
  pass "get web -o yaml: read back by python3 yaml, the same spec, uid and kind as -o json"
else
  fail "get web -o yaml: does not read back as the JSON's object: ${same:-unparsable}"
fi
run get-name "$kubectl" rollgate -n "$ns" get web -o name
if [[ $rc == 0 && "$out" == "containerrollout.rollgate.io/web" ]]; then
  pass "get web -o name: \"$out\""
else
  fail "get web -o name: exit $rc, \"$out\""
fi
run list-plain "$kubectl" rollgate -n "$ns" list
run list-wide "$kubectl" rollgate -n "$ns" list -o wide
plain_header=$(head -n1 "$work/list-plain.out" | tr -s ' ')
wide_header=$(head -n1 "$work/list-wide.out" | tr -s ' ')
if [[ $rc == 0 && "$plain_header" == "NAME PHASE ENVIRONMENT REVISION" &&
  "$wide_header" == "NAME PHASE ENVIRONMENT REVISION IMAGES MESSAGE" ]] &&
  grep -Eq '^web +AwaitingApproval +prod +[0-9]+ +app=registry\.example\.com/app:2\.0 +.*prod' "$work/list-wide.out" &&
  grep -Eq '^web +AwaitingApproval +prod +[0-9]+$' "$work/list-plain.out"; then
  pass "list -o wide: IMAGES and MESSAGE beyond list's columns: $(one_line "$(grep '^web' "$work/list-wide.out")")"
else
  fail "list / list -o wide: exit $rc, plain \"$(one_line "$(cat "$work/list-plain.out")")\", wide \"$(one_line "$(cat "$work/list-wide.out")")\""
fi
run list-json "$kubectl" rollgate -n "$ns" list -o json
if [[ $rc == 0 ]] && jq -e '.kind == "List" and ([.items[].metadata.name] | index("web")) != null' "$work/list-json.out" >/dev/null; then
  pass "list -o json: a List holding web"
else
  fail "list -o json: exit $rc, $(one_line "$(head -c 400 "$work/list-json.out")")"
fi
run list-all "$kubectl" rollgate list -A
if [[ $rc == 0 ]] && grep -Eq "^$ns +web +AwaitingApproval" "$work/list-all.out" &&
  [[ $(head -n1 "$work/list-all.out" | awk '{print $1}') == NAMESPACE ]]; then
  pass "kubectl rollgate list -A: a NAMESPACE column and $ns/web"
else
  fail "kubectl rollgate list -A: exit $rc, $(one_line "$(head -c 400 "$work/list-all.out")")"
fi
context=$(kc config current-context)
run list-context "$kubectl" rollgate --context "$context" -n "$ns" list -o name
if [[ $rc == 0 && "$out" == "containerrollout.rollgate.io/web" ]]; then
  pass "kubectl rollgate --context $context -n NS list -o name: \"$out\""
else
  fail "--context $context list: exit $rc, \"$out\", $(one_line "$err")"
fi

# --- 5. shell completion (while web is the namespace's only rollout) -----------------------------
# kubectl 1.26+ completes `kubectl rollgate ...` by running kubectl_complete-rollgate from PATH
# with the words typed so far: the build links it to the CLI, as kubectl-rollgate.
if [[ -L "$completer" && $(readlink -f "$completer") == $(readlink -f "$ROLLGATE_CLI_BIN") ]]; then
  pass "the build made $completer, a link to the CLI"
  ln -s "$completer" "$work/bin/kubectl_complete-rollgate"
else
  fail "$completer is not a link to $ROLLGATE_CLI_BIN"
fi
run complete-names kubectl_complete-rollgate -n "$ns" get ''
if [[ $rc == 0 && "$out" == $'web\n:4' && -z "$err" ]]; then
  pass "kubectl_complete-rollgate -n NS get '': the rollout's name, then :4 (ShellCompDirectiveNoFileComp)"
else
  fail "kubectl_complete-rollgate -n NS get '': exit $rc, stdout \"$(one_line "$out")\", stderr \"$(one_line "$err")\""
fi
run complete-prefix kubectl_complete-rollgate --namespace="$ns" promote 'x'
run complete-verbs kubectl_complete-rollgate 'pro'
run complete-output kubectl_complete-rollgate -n "$ns" get web -o ''
if [[ $(cat "$work/complete-prefix.out") == ":4" && $(cat "$work/complete-verbs.out") == $'promote\n:4' &&
  $(cat "$work/complete-output.out") == $'json\nyaml\nwide\nname\n:4' ]]; then
  pass "kubectl_complete-rollgate: no name for a prefix no rollout has, verbs, -o's formats"
else
  fail "kubectl_complete-rollgate: prefix \"$(one_line "$(cat "$work/complete-prefix.out")")\", verbs \"$(one_line "$(cat "$work/complete-verbs.out")")\", -o \"$(one_line "$(cat "$work/complete-output.out")")\""
fi
# kubectl itself: its hidden __complete finds the plugin and asks kubectl_complete-rollgate.
run complete-kubectl "$kubectl" __complete rollgate -n "$ns" get ''
if [[ $rc == 0 && "$out" == $'web\n:4' ]]; then
  pass "kubectl __complete rollgate -n NS get '' (kubectl's own completion): web, :4"
else
  fail "kubectl __complete rollgate -n NS get '': exit $rc, stdout \"$(one_line "$out")\", stderr \"$(one_line "$err")\""
fi
run complete-kubectl-verbs "$kubectl" __complete rollgate 'sta'
if [[ $rc == 0 && "$out" == $'status\n:4' ]]; then
  pass "kubectl __complete rollgate sta: status, :4"
else
  fail "kubectl __complete rollgate sta: exit $rc, stdout \"$(one_line "$out")\""
fi
# `rollgate completion bash` asks the binary (`rollgate __complete`) for the names too.
run complete-bash env PATH="$(dirname "$ROLLGATE_CLI_BIN"):$PATH" bash -c '
  source <(rollgate completion bash)
  COMP_LINE="rollgate -n $1 status w" COMP_POINT=${#COMP_LINE}
  COMP_WORDS=(rollgate -n "$1" status w) COMP_CWORD=4
  _rollgate && printf "%s\n" "${COMPREPLY[@]}"
  COMP_LINE="rollgate get web --output=y" COMP_POINT=${#COMP_LINE}
  _rollgate && printf "%s\n" "${COMPREPLY[@]}"' _ "$ns"
if [[ $rc == 0 && "$out" == $'web\nyaml' ]]; then
  pass "rollgate completion bash: _rollgate completes \"rollgate -n NS status w\" to web (from rollgate __complete), --output=y to yaml"
else
  fail "rollgate completion bash: exit $rc, COMPREPLY \"$(one_line "$out")\", stderr \"$(one_line "$err")\""
fi

# The approval, then the watch ends Succeeded.
run promote "$kubectl" rollgate -n "$ns" promote web
if [[ $rc == 0 && "$out" == "promote requested for $ns/web (rollgate.io/promote="*")" ]]; then
  pass "kubectl rollgate promote web: exit 0, \"$out\""
else
  fail "kubectl rollgate promote web: exit $rc, \"$out\", $(one_line "$err")"
fi
watch_wait web 60
if [[ "$rc" == 0 && -z "$err" ]] && grep -Eq '^Phase: +✔ Succeeded$' "$work/watch-web.out" &&
  grep -Eq '^└── prod +✔ Succeeded' "$work/watch-web.out" &&
  grep -Eq 'approval: approved ' "$work/watch-web.out"; then
  pass "get web --watch --until-done: Succeeded after the promote (prod approved), exit 0, nothing on stderr"
else
  fail "get web --watch --until-done after promote: exit '${rc}', stderr \"$(one_line "$err")\", last lines: $(one_line "$(tail -n 14 "$work/watch-web.out")")"
fi
first_wait=$(grep -n 'AwaitingApproval$' "$work/watch-web.out" | head -n1 | cut -d: -f1)
last_done=$(grep -n '^Phase: +✔ Succeeded$' -E "$work/watch-web.out" | tail -n1 | cut -d: -f1)
frames=$(grep -c '^Name: ' "$work/watch-web.out" || true)
if [[ -n "$first_wait" && -n "$last_done" ]] && ((first_wait < last_done && frames >= 3)) &&
  ! grep -q $'\x1b' "$work/watch-web.out"; then
  pass "get web --watch, piped: $frames frames appended (AwaitingApproval before Succeeded), no escape sequences"
else
  fail "get web --watch, piped: frames $frames, AwaitingApproval at line ${first_wait:-none}, Succeeded at ${last_done:-none}, or escape sequences"
fi

# Failures: DeploymentNotFound and ImageNotAllowed.
rollout missing registry.example.com/app:2.0 "  - name: staging
    targets: [{deployment: absent, containers: {app: app}}]"
rollout foreign other.example.org/app:2.0 "  - name: staging
    targets: [{deployment: image-app, containers: {app: app}}]"
watch_start missing
watch_start foreign
for case in "missing DeploymentNotFound" "foreign ImageNotAllowed"; do
  name=${case% *} reason=${case#* }
  watch_wait "$name" 60
  if [[ "$rc" == 1 ]] && grep -Eq '^Phase: +✖ Failed$' "$work/watch-$name.out" &&
    grep -Eq "^└── staging +✖ Failed .*$reason" "$work/watch-$name.out" &&
    grep -Eq "^Message: .*$reason" "$work/watch-$name.out" &&
    [[ "$err" == "error: the rollout ended Failed" ]]; then
    pass "get $name --watch --until-done: exit 1, the tree names $reason: $(one_line "$(grep -E '^└── staging' "$work/watch-$name.out" | tail -n1)")"
  else
    fail "get $name --watch --until-done: want exit 1 naming $reason; exit '${rc}', stderr \"$(one_line "$err")\", last lines: $(one_line "$(tail -n 10 "$work/watch-$name.out")")"
  fi
done
run get-failed "$kubectl" rollgate -n "$ns" get foreign
if [[ $rc == 0 ]] && grep -q 'other.example.org' "$work/get-failed.out"; then
  pass "get foreign (no watch) prints the failed rollout's tree, exit 0"
else
  fail "get foreign: exit $rc, $(one_line "$out")"
fi

# --- 6. history and diff ---------------------------------------------------------------------------
# web's revision 1 succeeded; revision 2 (app:2.1) rolls staging and waits for prod's approval.
run history-one "$kubectl" rollgate -n "$ns" history web -o json
if [[ $rc == 0 ]] && jq -e '(length == 1) and .[0].revision == 1 and .[0].phase == "Succeeded"
    and .[0].reason == "Succeeded" and .[0].images.app == "registry.example.com/app:2.0"
    and (.[0].startedAt | test("Z$")) and (.[0].finishedAt | test("Z$"))' "$work/history-one.out" >/dev/null; then
  pass "history web -o json: revision 1 Succeeded with its images, start and end (status.history)"
else
  fail "history web -o json: exit $rc, $(one_line "$(head -c 600 "$work/history-one.out")") $(one_line "$err")"
fi
rollout web registry.example.com/app:2.1 "  - name: staging
    targets: [{deployment: web-staging, containers: {app: app}}]
  - name: prod
    approval: Manual
    targets: [{deployment: web-prod, containers: {app: app}}]"
if wait_phase web AwaitingApproval 60; then
  pass "web revision 2 (app:2.1): staging rolled, prod awaits approval"
else
  fail "web revision 2 never reached AwaitingApproval: $(one_line "$(rollout_json web | jq -c .status)")"
fi
run history "$kubectl" rollgate -n "$ns" history web
header=$(head -n1 "$work/history.out" | tr -s ' ')
if [[ $rc == 0 && -z "$err" && "$header" == "REVISION PHASE STARTED DURATION IMAGES REASON" ]] &&
  grep -Eq '^1 +Succeeded +[0-9T:-]+Z +[0-9hms]+ +app=registry\.example\.com/app:2\.0 +Succeeded$' "$work/history.out" &&
  grep -Eq '^2 \(current\) +AwaitingApproval +[0-9T:-]+Z +[0-9hms]+ +app=registry\.example\.com/app:2\.1$' "$work/history.out" &&
  grep -q '^Events:$' "$work/history.out" &&
  grep -Eq '^[0-9hms]+ +Normal +RolloutStarted +revision 1 started at environment staging$' "$work/history.out" &&
  grep -Eq '^[0-9hms]+ +Normal +NewRevision +revision 2 started' "$work/history.out"; then
  pass "history web: revision 1 Succeeded, 2 (current) AwaitingApproval, then the Events (RolloutStarted, NewRevision)"
else
  fail "history web: exit $rc, stderr \"$(one_line "$err")\", stdout: $(one_line "$(cat "$work/history.out")")"
fi
run diff "$kubectl" rollgate -n "$ns" diff web
header=$(head -n1 "$work/diff.out" | tr -s ' ')
if [[ $rc == 0 && -z "$err" && "$header" == " ENVIRONMENT NAMESPACE DEPLOYMENT CONTAINER SPEC RUNNING" ]] &&
  grep -Eq "^= +staging +$ns +web-staging +app +registry\.example\.com/app:2\.1 +registry\.example\.com/app:2\.1$" "$work/diff.out" &&
  grep -Eq "^~ +prod +$ns +web-prod +app +registry\.example\.com/app:2\.1 +registry\.example\.com/app:2\.0$" "$work/diff.out"; then
  pass "diff web: staging = app:2.1, prod ~ app:2.1 wanted, app:2.0 running (exit 0)"
else
  fail "diff web: exit $rc, stderr \"$(one_line "$err")\", stdout: $(one_line "$(cat "$work/diff.out")")"
fi
run diff-missing "$kubectl" rollgate -n "$ns" diff missing -o json
if [[ $rc == 0 && -z "$err" ]] && jq -e '(length == 1) and .[0].deployment == "absent" and .[0].state == "Missing"
    and .[0].missing == "deployment" and .[0].spec == "registry.example.com/app:2.0"' "$work/diff-missing.out" >/dev/null; then
  pass "diff missing -o json: the absent Deployment is a Missing row, exit 0"
else
  fail "diff missing -o json: exit $rc, stderr \"$(one_line "$err")\", $(one_line "$(cat "$work/diff-missing.out")")"
fi

# abort and retry on live rollouts: exit 0 and their annotations set.
for verb in retry abort; do
  run "$verb" "$kubectl" rollgate -n "$ns" "$verb" missing
  value=$(rollout_json missing | jq -r --arg a "rollgate.io/$verb" '.metadata.annotations[$a] // ""')
  if [[ $rc == 0 && -n "$value" && "$out" == "$verb requested for $ns/missing (rollgate.io/$verb=$value)" ]]; then
    pass "kubectl rollgate $verb missing: exit 0, rollgate.io/$verb=$value"
  else
    fail "kubectl rollgate $verb missing: exit $rc, \"$out\", annotation \"$value\", $(one_line "$err")"
  fi
done

# --- 3. errors of every verb ---------------------------------------------------------------------
verbs=("get nope" "get nope --watch --until-done" "promote nope" "abort nope" "retry nope"
  "history nope" "diff nope")
# (a) a missing rollout
for v in "${verbs[@]}"; do
  read -ra words <<<"$v"
  run missing "$kubectl" rollgate -n "$ns" "${words[@]}"
  expect "missing rollout: kubectl rollgate $v" 1 "^error: .*containerrollouts\.rollgate\.io \"nope\" not found$" empty
done
run missing-list "$kubectl" rollgate -n "$empty_ns" list
expect "missing rollouts: kubectl rollgate list in an empty namespace" 0 "^No resources found in $empty_ns namespace\.$" empty

# (b) a forbidden namespace: a ServiceAccount without any role binding.
kc -n "$ns" create serviceaccount nobody >/dev/null
token=$(kc -n "$ns" create token nobody --duration 10m)
server=$(kc config view --minify -o jsonpath='{.clusters[0].cluster.server}')
ca_data=$(kc config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
cat >"$work/nobody.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$server", certificate-authority-data: "$ca_data"}}]
users: [{name: nobody, user: {token: "$token"}}]
contexts: [{name: nobody, context: {cluster: local, user: nobody, namespace: $ns}}]
current-context: nobody
EOF
sa="User \"system:serviceaccount:$ns:nobody\" cannot"
for v in "list" "list -A" "get web" "get web --watch --until-done" "promote web" "abort web" "retry web" \
  "history web" "diff web"; do
  read -ra words <<<"$v"
  run forbidden "$kubectl" rollgate --kubeconfig "$work/nobody.kubeconfig" "${words[@]}"
  expect "forbidden: kubectl rollgate $v as ServiceAccount nobody" 1 "^error: Forbidden: .*$sa" empty
done
run forbidden-complete kubectl_complete-rollgate --kubeconfig "$work/nobody.kubeconfig" get ''
if [[ $rc == 0 && "$out" == ":4" && -z "$err" ]]; then
  pass "forbidden: kubectl_complete-rollgate get '' prints no names, still :4, exit 0, nothing on stderr"
else
  fail "forbidden: kubectl_complete-rollgate get '': exit $rc, stdout \"$(one_line "$out")\", stderr \"$(one_line "$err")\""
fi
if [[ -z $(rollout_json web | jq -r '.metadata.annotations["rollgate.io/abort"] // ""') ]]; then
  pass "forbidden: the refused abort left web without rollgate.io/abort"
else
  fail "forbidden: web has a rollgate.io/abort annotation after a refused abort"
fi

# (c) an unreachable API server: a closed port on loopback.
read -r closed < <(python3 "$repo/hack/lib/free-ports.py" 1)
sed "s#server: \"$server\"#server: \"https://127.0.0.1:$closed\"#" "$work/nobody.kubeconfig" >"$work/closed.kubeconfig"
for v in "list" "get web" "get web --watch --until-done" "promote web" "abort web" "retry web" \
  "history web" "diff web"; do
  read -ra words <<<"$v"
  t0=$SECONDS
  run unreachable "$kubectl" rollgate --kubeconfig "$work/closed.kubeconfig" "${words[@]}"
  expect "unreachable (127.0.0.1:$closed, $((SECONDS - t0))s): kubectl rollgate $v" 1 "^error: .*127\.0\.0\.1:$closed" empty
done

t0=$SECONDS
run unreachable-complete kubectl_complete-rollgate --kubeconfig "$work/closed.kubeconfig" get ''
if [[ $rc == 0 && "$out" == ":4" && -z "$err" ]] && ((SECONDS - t0 <= 6)); then
  pass "unreachable: kubectl_complete-rollgate get '' prints no names, still :4, in $((SECONDS - t0))s"
else
  fail "unreachable: kubectl_complete-rollgate get '': exit $rc, $((SECONDS - t0))s, stdout \"$(one_line "$out")\", stderr \"$(one_line "$err")\""
fi

# (d) usage errors: exit 2 before anything is sent.
for v in "list --bogus" "get web --bogus" "promote web --bogus" "abort web --bogus" "retry web --bogus" \
  "history web --bogus" "diff web --bogus"; do
  read -ra words <<<"$v"
  run usage "$kubectl" rollgate -n "$ns" "${words[@]}"
  expect "usage: kubectl rollgate $v" 2 "^error: unknown flag:? --bogus See 'kubectl rollgate --help' for usage\.$" empty
done
for v in "promote" "get web -o table" "frobnicate" "history" "diff web -o wide"; do
  read -ra words <<<"$v"
  run usage "$kubectl" rollgate -n "$ns" "${words[@]}"
  expect "usage: kubectl rollgate $v" 2 "^error: .* See 'kubectl rollgate --help' for usage\.$" empty
done
# A kubeconfig or context that cannot be used is not a usage error: exit 1, as kubectl.
run badconfig "$kubectl" rollgate --kubeconfig "$work/absent.kubeconfig" list
expect "kubectl rollgate --kubeconfig ABSENT list" 1 "^error: .*absent\.kubeconfig" empty
run badcontext "$kubectl" rollgate --context no-such-context list
expect "kubectl rollgate --context no-such-context list" 1 "^error: .*no-such-context" empty

finish
