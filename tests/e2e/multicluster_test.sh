#!/usr/bin/env bash
# End-to-end test of environments in another cluster (issue 17) with two local control planes at
# once: the shared one is the hub (it runs rollgate-controller and holds the rollouts), a second
# one, started here with hack/cluster.sh, is the target. The target is set up only with the
# chart's target mode (`helm install --skip-crds --set mode=target`), and the hub reaches it with
# that ServiceAccount's token, in a Secret made by `rollgate cluster kubeconfig --secret`.
#
#  1. Happy path: dev in the hub, prod in the target: both Deployments patched, each with its own
#     cluster's client (the target's Deployment has the hub's name: only the target's changes);
#     status records prod's target with `cluster: prod` and the remote previous images.
#  1b. Worker validation in the target: a GPU worker with `workerValidation: {cuda: Required}`
#     gets the validator injected there, and the verdicts are read from the target's pods.
#  2. A target namespace without the opt-in label, although it has the rollout namespace's name:
#     Failed NamespaceNotPermitted, nothing patched there.
#  3. A Secret whose kubeconfig runs an exec plugin: held with Progressing reason
#     ClusterUnreachable and a message naming the refused field.
#  4. Rotation: a Secret with a token the target refuses (401): held ClusterUnreachable; the Secret
#     replaced by a valid one: the rollout goes on and succeeds, with no restart.
#  5. The hub's controller SIGKILLed the moment prod's previous images are recorded (the patch is
#     next): after a restart, prod's Deployment is patched exactly once, its previous images kept.
#  6. A bad release in the target (pods never ready): ProgressDeadlineExceeded, the previous image
#     restored in the target (RolledBack).
#  7. The target's API server stopped for 20 s mid-rollout (prod promoted while it is down): held
#     ClusterUnreachable during the outage, nothing patched; Succeeded after it, patched once.
#
# Needs KUBECONFIG, CONTROL_PLANE_BIN, ROLLGATE_CLUSTER_SH, ROLLGATE_CONTROLLER_BIN,
# ROLLGATE_CLI_BIN, ROLLGATE_CRD (ctest sets them: rollgate_add_e2e_test), jq, python3, curl,
# base64. About 4 minutes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
for v in KUBECONFIG CONTROL_PLANE_BIN ROLLGATE_CLUSTER_SH ROLLGATE_CONTROLLER_BIN ROLLGATE_CLI_BIN \
  ROLLGATE_CRD; do
  [[ -n "${!v:-}" ]] || { echo "FAIL: $v is not set (run it through ctest: e2e_multicluster)" >&2; exit 1; }
done
kubectl=$CONTROL_PLANE_BIN/kubectl
helm=$CONTROL_PLANE_BIN/helm
for b in "$kubectl" "$helm" "$ROLLGATE_CONTROLLER_BIN" "$ROLLGATE_CLI_BIN" "$ROLLGATE_CLUSTER_SH"; do
  [[ -x "$b" ]] || { echo "FAIL: no executable $b" >&2; exit 1; }
done
for tool in jq python3 curl base64; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed" >&2; exit 1; }
done
hub_kc=$KUBECONFIG
export KUBECONFIG

start=$SECONDS
check_name="multicluster test"
# shellcheck source-path=SCRIPTDIR source=lib/checks.sh
source "$here/lib/checks.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-multicluster.XXXXXX")
chmod 0700 "$work"
export KUBECACHEDIR=$work/kube-cache
export HELM_CACHE_HOME=$work/helm-cache HELM_CONFIG_HOME=$work/helm-config
export HELM_DATA_HOME=$work/helm-data
ns=rg-mc-$$-$RANDOM  # the hub's rollout namespace; in the target, the namespace of the same name
target_dir=$work/target
target_kc=$target_dir/kubeconfig
controller_pid="" controller_log=$work/controller.log

hub() { "$kubectl" --kubeconfig "$hub_kc" "$@"; }
tgt() { "$kubectl" --kubeconfig "$target_kc" "$@"; }

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  stop_controller
  if ((failures)) && [[ -s "$controller_log" ]]; then
    echo "--- last lines of the controller's log ---"
    tail -n 40 "$controller_log"
  fi
  hub delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  "$ROLLGATE_CLUSTER_SH" down "$target_dir" >"$work/target-down.log" 2>&1 || cat "$work/target-down.log"
  rm -rf "$work"
}
# shellcheck disable=SC2317 # also invoked by the EXIT trap
stop_controller() {
  if [[ -n "$controller_pid" ]]; then
    kill -"${1:-TERM}" "$controller_pid" 2>/dev/null || true
    wait "$controller_pid" 2>/dev/null || true
    controller_pid=""
  fi
}
trap cleanup EXIT

start_controller() {
  local mport hport
  read -r mport hport < <(python3 "$repo/hack/lib/free-ports.py" 2)
  "$ROLLGATE_CONTROLLER_BIN" --kubeconfig "$hub_kc" --namespace "$ns" \
    --allowed-registries registry.example.com --log-level debug \
    --validator-image registry.example.com/rollgate/rollgate-validate:0.1.0 \
    --metrics-bind-address "127.0.0.1:$mport" --health-probe-bind-address "127.0.0.1:$hport" \
    >>"$controller_log" 2>&1 &
  controller_pid=$!
  local until=$((SECONDS + 60))
  until curl -fsS -o /dev/null "http://127.0.0.1:$hport/readyz" 2>/dev/null; do
    if ! kill -0 "$controller_pid" 2>/dev/null || ((SECONDS > until)); then
      fail "rollgate-controller did not become ready: $(one_line "$(tail -n 12 "$controller_log")")"
      finish
    fi
    sleep 0.3
  done
}

# deployment KUBECTL NAMESPACE NAME [IMAGE [GPUS]]: a two-replica Deployment of container `api`
# whose pods become ready 1 s after they start (kwok); GPUS > 0 requests that many nvidia.com/gpu
# per pod (kwok's GPU nodes run it and complete injected validation init containers, exit code 0).
deployment() {
  local resources="{}"
  ((${5:-0} > 0)) && resources="{limits: {nvidia.com/gpu: \"$5\"}, requests: {nvidia.com/gpu: \"$5\"}}"
  "$1" -n "$2" apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $3, labels: {app: $3}}
spec:
  replicas: 2
  selector: {matchLabels: {app: $3}}
  template:
    metadata:
      labels: {app: $3}
      annotations: {pod-ready.stage.kwok.x-k8s.io/delay: 1s}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - {name: api, image: "${4:-registry.example.com/app/backend:1.0.0}", resources: $resources}
EOF
}
# rollout NAME IMAGE DEADLINE ENVIRONMENTS_YAML
rollout() {
  hub -n "$ns" apply -f - >"$work/apply.out" 2>&1 <<EOF || { fail "apply rollout $1: $(one_line "$(cat "$work/apply.out")")"; finish; }
apiVersion: rollgate.io/v1alpha1
kind: ContainerRollout
metadata: {name: $1}
spec:
  images: {backend: "$2"}
  progressDeadlineSeconds: $3
  environments:
$4
EOF
}
rollout_json() { hub -n "$ns" get "containerrollout/$1" -o json 2>/dev/null || echo '{}'; }
# wait_for NAME JQ_EXPR SECONDS: polls until the rollout's JSON makes JQ_EXPR true.
wait_for() {
  local until=$((SECONDS + $3))
  until [[ $(rollout_json "$1" | jq -r "$2") == "true" ]]; do
    if ((SECONDS > until)); then
      fail "$1: not ($2) within $3 s; status: $(one_line "$(rollout_json "$1" | jq -c '.status // {}')")"
      return 1
    fi
    if [[ -n "$controller_pid" ]] && ! kill -0 "$controller_pid" 2>/dev/null; then
      fail "the controller exited: $(one_line "$(tail -n 12 "$controller_log")")"
      finish
    fi
    sleep 0.3
  done
}
# want WHAT GOT WANT: PASS when GOT is WANT.
want() {
  if [[ "$2" == "$3" ]]; then pass "$1: $2"; else fail "$1: got '$2', want '$3'"; fi
}
image_of() { "$1" -n "$2" get "deployment/$3" -o jsonpath='{.spec.template.spec.containers[0].image}'; }
generation_of() { "$1" -n "$2" get "deployment/$3" -o jsonpath='{.metadata.generation}'; }
held_expr() {
  echo "[.status.conditions[]? | select(.type == \"Progressing\" and .reason == \"ClusterUnreachable\")] | length > 0"
}
prod_env() { # prod_env SECRET NAMESPACE DEPLOYMENT
  printf '  - name: prod\n    namespace: %s\n    cluster: {secretRef: {name: %s}}\n' "$2" "$1"
  printf '    targets: [{deployment: %s, containers: {api: backend}}]\n' "$3"
}

# --- setup: the target cluster, its target-mode install, the Secret; the hub's controller --------
if ! "$ROLLGATE_CLUSTER_SH" up --dir "$target_dir" >"$work/target-up.log" 2>&1; then
  fail "the target cluster did not start: $(one_line "$(tail -n 15 "$work/target-up.log")")"
  finish
fi
pass "a second control plane (the target) is up: $(tgt config view -o jsonpath='{.clusters[0].cluster.server}')"
tgt create namespace rollgate-target >/dev/null
if ! out=$("$helm" --kubeconfig "$target_kc" install rollgate-target "$repo/charts/rollgate" \
  -n rollgate-target --skip-crds --set mode=target 2>&1); then
  fail "helm install --set mode=target: $(one_line "$out")"
  finish
fi
pass "the target is set up only with the chart's target mode"
if ! out=$(hub apply --server-side --force-conflicts --field-manager=rollgate-e2e -f "$ROLLGATE_CRD" \
  2>&1) || ! hub wait --for=condition=Established --timeout=60s crd/containerrollouts.rollgate.io \
  >/dev/null 2>&1; then
  fail "the CRD does not apply to the hub: $(one_line "$out")"
  finish
fi
hub create namespace "$ns" >/dev/null
tgt create namespace "$ns" >/dev/null
tgt label namespace "$ns" "rollgate.io/allow-rollouts-from=$ns" >/dev/null
tgt create namespace "$ns-closed" >/dev/null  # no opt-in
deployment hub "$ns" api
for d in api api-kill api-bad; do deployment tgt "$ns" "$d"; done
deployment tgt "$ns" gpu-worker registry.example.com/app/worker-gpu:1.0.0 1
deployment tgt "$ns" api-outage
deployment tgt "$ns-closed" api
for d in api api-outage api-kill api-bad gpu-worker; do
  tgt -n "$ns" rollout status "deployment/$d" --timeout=90s >/dev/null 2>&1 ||
    { fail "target deployment $d did not become available"; finish; }
done
hub -n "$ns" rollout status deployment/api --timeout=90s >/dev/null 2>&1 ||
  { fail "hub deployment api did not become available"; finish; }

# The hub's Secret for the target, made in the target with the chart's ServiceAccount.
if ! "$ROLLGATE_CLI_BIN" cluster kubeconfig --kubeconfig "$target_kc" -n rollgate-target \
  --secret prod >"$work/prod-secret.yaml" 2>"$work/prod-secret.err"; then
  fail "rollgate cluster kubeconfig --secret prod: $(one_line "$(cat "$work/prod-secret.err")")"
  finish
fi
hub -n "$ns" apply -f "$work/prod-secret.yaml" >/dev/null
pass "Secret prod made by rollgate cluster kubeconfig (target's ServiceAccount token) applied in the hub"
good_kubeconfig=$(jq -r '.data.value' < <(hub -n "$ns" get secret prod -o json) | base64 -d)
start_controller
pass "rollgate-controller ready on the hub (--namespace $ns)"

# --- 1. happy path -------------------------------------------------------------------------------
rollout happy registry.example.com/app/backend:2.0.0 120 "  - name: dev
    targets: [{deployment: api, containers: {api: backend}}]
$(prod_env prod "$ns" api)"
if wait_for happy '.status.phase == "Succeeded"' 90; then
  pass "happy: Succeeded across both clusters"
fi
want "happy: dev patched in the hub" "$(image_of hub "$ns" api)" registry.example.com/app/backend:2.0.0
want "happy: prod patched in the target" "$(image_of tgt "$ns" api)" \
  registry.example.com/app/backend:2.0.0
want "happy: the target Deployment was patched once (generation)" "$(generation_of tgt "$ns" api)" 2
if grep -q "msg=\"watching a remote cluster's deployments\" cluster=$ns/prod namespace=$ns" \
  "$controller_log"; then
  pass "happy: the controller watches the target's namespace through cluster $ns/prod"
else
  fail "happy: no watch of the target's namespace in the controller's log"
fi
t=$(rollout_json happy | jq -c '.status.environments[] | select(.name == "prod") | .targets[0]')
if [[ $(jq -r '.cluster' <<<"$t") == prod && $(jq -r '.namespace' <<<"$t") == "$ns" &&
  $(jq -r '.previousImages.api' <<<"$t") == registry.example.com/app/backend:1.0.0 ]]; then
  pass "happy: status records prod's target as cluster prod, namespace $ns, previous image 1.0.0"
else
  fail "happy: prod target in status: $t"
fi

# --- 1b. worker validation in the target ---------------------------------------------------------
rollout gpu registry.example.com/app/worker-gpu:2.0.0 120 "  - name: prod
    namespace: $ns
    cluster: {secretRef: {name: prod}}
    targets:
    - deployment: gpu-worker
      containers: {api: backend}
      workerValidation: {cuda: Required}"
if wait_for gpu '.status.phase == "Succeeded"' 90; then
  v=$(rollout_json gpu | jq -c '.status.environments[0].validation')
  if [[ $(jq -r '.gpuPods' <<<"$v") == 2 && $(jq -r '.passed' <<<"$v") == 2 ]]; then
    pass "gpu: worker validation judged on the target's pods: $v"
  else
    fail "gpu: validation status $v"
  fi
fi
inits=$(tgt -n "$ns" get deployment/gpu-worker -o json |
  jq -r '[.spec.template.spec.initContainers[]?.name] | join(",")')
if [[ "$inits" == *rollgate-validate* ]]; then
  pass "gpu: the validator was injected into the target's Deployment: $inits"
else
  fail "gpu: init containers of the target's gpu-worker: '$inits'"
fi

# --- 2. a target namespace without opt-in --------------------------------------------------------
rollout closed registry.example.com/app/backend:2.0.0 120 "$(prod_env prod "$ns-closed" api)"
if wait_for closed '.status.phase == "Failed"' 60; then
  reason=$(rollout_json closed | jq -r '.status.environments[0].reason')
  want "closed: Failed NamespaceNotPermitted in the target" "$reason" NamespaceNotPermitted
fi
want "closed: nothing patched in the namespace that did not opt in" \
  "$(image_of tgt "$ns-closed" api)" registry.example.com/app/backend:1.0.0

# --- 3. a Secret with an exec plugin -------------------------------------------------------------
python3 - "$good_kubeconfig" >"$work/exec-kubeconfig" <<'PY'
import sys
lines = []
for line in sys.argv[1].splitlines():
    if line.strip().startswith("token:"):
        indent = line[: len(line) - len(line.lstrip())]
        lines += [indent + "exec:", indent + "  apiVersion: client.authentication.k8s.io/v1",
                  indent + "  command: /bin/sh"]
    else:
        lines.append(line)
print("\n".join(lines))
PY
hub -n "$ns" create secret generic exec --from-file=value="$work/exec-kubeconfig" >/dev/null
rollout exec registry.example.com/app/backend:2.0.0 120 "$(prod_env exec "$ns" api)"
if wait_for exec "$(held_expr)" 30; then
  msg=$(rollout_json exec | jq -r '.status.environments[0].message')
  if [[ "$msg" == *"kubeconfig Secret $ns/exec: users"*".exec: not supported"* ]]; then
    pass "exec: held ClusterUnreachable: $(cut -c1-140 <<<"$msg")"
  else
    fail "exec: message: $msg"
  fi
fi
hub -n "$ns" delete containerrollout exec >/dev/null

# --- 4. a rotated Secret -------------------------------------------------------------------------
# shellcheck disable=SC2001 # a regular expression, per line
sed 's/^\( *token: \).*/\1not-a-valid-token/' <<<"$good_kubeconfig" >"$work/bad-token-kubeconfig"
hub -n "$ns" create secret generic rotating --from-file=value="$work/bad-token-kubeconfig" >/dev/null
deployment tgt "$ns" api-rotate
tgt -n "$ns" rollout status deployment/api-rotate --timeout=60s >/dev/null 2>&1 || true
rollout rotate registry.example.com/app/backend:2.0.0 300 "$(prod_env rotating "$ns" api-rotate)"
if wait_for rotate "$(held_expr)" 30; then
  msg=$(rollout_json rotate | jq -r '.status.environments[0].message')
  if [[ "$msg" == *Unauthorized* || "$msg" == *401* ]]; then
    pass "rotate: a refused token holds the environment: $(cut -c1-140 <<<"$msg")"
  else
    fail "rotate: message: $msg"
  fi
fi
printf '%s\n' "$good_kubeconfig" >"$work/good-kubeconfig"
hub -n "$ns" create secret generic rotating --from-file=value="$work/good-kubeconfig" \
  --dry-run=client -o yaml | hub -n "$ns" apply -f - >/dev/null
rotated_at=$SECONDS
if wait_for rotate '.status.phase == "Succeeded"' 75; then
  pass "rotate: the replaced Secret was picked up without a restart ($((SECONDS - rotated_at)) s)"
fi

# --- 5. the hub's controller SIGKILLed when prod's previous images are recorded ----------------
rollout kill registry.example.com/app/backend:2.0.0 300 "$(prod_env prod "$ns" api-kill)"
wait_for kill '[.status.environments[0].phase] | inside(["Updating", "Verifying", "Succeeded"])' 60 || true
stop_controller KILL
seen=$(rollout_json kill | jq -r '.status.environments[0].phase')
start_controller
if wait_for kill '.status.phase == "Succeeded"' 90; then
  pass "kill: SIGKILL at $seen, restarted, Succeeded"
fi
want "kill: the target Deployment was patched once (generation)" "$(generation_of tgt "$ns" api-kill)" 2
prev=$(rollout_json kill | jq -r '.status.environments[0].targets[0].previousImages.api')
want "kill: previous image kept" "$prev" registry.example.com/app/backend:1.0.0

# --- 6. a rollback in the target -----------------------------------------------------------------
rollout bad registry.example.com/app/backend:2.0.0-never-ready 30 "$(prod_env prod "$ns" api-bad)"
if wait_for bad '.status.phase == "RolledBack"' 120; then
  reason=$(rollout_json bad | jq -r '.status.environments[0].reason')
  pass "bad: RolledBack ($reason)"
fi
want "bad: the previous image restored in the target" "$(image_of tgt "$ns" api-bad)" \
  registry.example.com/app/backend:1.0.0

# --- 7. the target's API server stopped for 20 s mid-rollout (last: its kwok is restarted) ---
# dev (hub) goes first; prod (target, manual approval) is promoted while the target's API server
# is down, so the promoted environment must wait for its cluster.
rollout outage registry.example.com/app/backend:2.1.0 300 "  - name: dev
    targets: [{deployment: api, containers: {api: backend}}]
$(prod_env prod "$ns" api-outage)
    approval: Manual"
wait_for outage '.status.phase == "AwaitingApproval"' 60 || true
"$ROLLGATE_CLUSTER_SH" stop-component "$target_dir" kube-apiserver >"$work/stop.log" 2>&1 ||
  fail "stop the target API server: $(one_line "$(cat "$work/stop.log")")"
stopped_at=$SECONDS
"$ROLLGATE_CLI_BIN" --kubeconfig "$hub_kc" -n "$ns" promote outage >"$work/promote.out" 2>&1 ||
  fail "promote outage: $(one_line "$(cat "$work/promote.out")")"
held_seen=no
while ((SECONDS - stopped_at < 20)); do
  [[ $(rollout_json outage | jq -r "$(held_expr)") == true ]] && held_seen=yes
  sleep 1
done
"$ROLLGATE_CLUSTER_SH" start-component "$target_dir" kube-apiserver >"$work/start.log" 2>&1 ||
  fail "start the target API server: $(one_line "$(cat "$work/start.log")")"
# kwok does not always resume making pods ready after its API server went away (the HA test
# restarts it too): restart it, so that the target's new pods become ready.
{ "$ROLLGATE_CLUSTER_SH" stop-component "$target_dir" kwok &&
  "$ROLLGATE_CLUSTER_SH" start-component "$target_dir" kwok; } >>"$work/start.log" 2>&1 ||
  fail "restart the target's kwok: $(one_line "$(cat "$work/start.log")")"
if [[ $held_seen == yes ]]; then
  pass "outage: the promoted environment held ClusterUnreachable while the target's API server was down"
else
  fail "outage: not held ClusterUnreachable during the outage: $(rollout_json outage | jq -c '.status.environments[1]')"
fi
want "outage: nothing patched in the target while it was down (generation)" \
  "$(generation_of tgt "$ns" api-outage)" 1
back_at=$SECONDS
if wait_for outage '.status.phase == "Succeeded"' 120; then
  pass "outage: Succeeded $((SECONDS - back_at)) s after the target's API server came back"
fi
want "outage: patched once (generation)" "$(generation_of tgt "$ns" api-outage)" 2

finish
