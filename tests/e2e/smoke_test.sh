#!/usr/bin/env bash
# Smoke test of the local control plane (hack/cluster.sh): checks that the real
# controller-manager, scheduler and kwok roll out Deployments, that GPU requests land on the fake
# GPU nodes, and that the kwok chaos stages the e2e tests rely on behave (never-ready pods, failing
# init containers). Runs in its own namespace, deleted at the end. Prints PASS/FAIL per check and
# exits non-zero when any check fails.
#
# Needs KUBECONFIG (the cluster's admin kubeconfig); kubectl comes from $CONTROL_PLANE_BIN
# (default: computed from hack/control-plane-versions.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
if [[ -z "${CONTROL_PLANE_BIN:-}" || -z "${K8S_VERSION:-}" ]]; then
  # shellcheck source-path=SCRIPTDIR source=../../hack/control-plane-versions.sh
  source "$repo/hack/control-plane-versions.sh"
fi
kubectl=$CONTROL_PLANE_BIN/kubectl
[[ -x "$kubectl" ]] || { echo "FAIL: no kubectl at $kubectl (run hack/build-control-plane.sh)"; exit 1; }
[[ -n "${KUBECONFIG:-}" && -f "$KUBECONFIG" ]] || { echo "FAIL: KUBECONFIG is not set to a file"; exit 1; }
export KUBECONFIG

ns=rollgate-smoke-$$-$RANDOM
failures=0
k() { "$kubectl" -n "$ns" "$@"; }
pass() { echo "PASS: $*"; }
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
# jp OBJECT JSONPATH: one field of an object.
jp() { k get "$1" -o "jsonpath=$2"; }

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() { "$kubectl" delete namespace "$ns" --wait=false >/dev/null 2>&1 || true; }
trap cleanup EXIT

start=$SECONDS
"$kubectl" create namespace "$ns" >/dev/null
# Pods cannot be created before the service account controller made the namespace's default SA.
for _ in $(seq 1 150); do
  k get serviceaccount default >/dev/null 2>&1 && break
  sleep 0.2
done

# --- 0. The API server is the selected Kubernetes version (ROLLGATE_K8S_VERSION) -----------------
server_version=$("$kubectl" get --raw /version | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p')
if [[ "$server_version" == "$K8S_VERSION" ]]; then
  pass "the API server is Kubernetes $server_version"
else
  fail "the API server reports '$server_version', expected $K8S_VERSION"
fi

# --- 1. A Deployment with 3 replicas (and an init container) becomes available --------------------
t=$SECONDS
k apply -f - >/dev/null <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      initContainers:
      - name: setup
        image: registry.example.com/smoke/setup:1.0.0
      containers:
      - name: web
        image: registry.example.com/smoke/web:1.0.0
        resources:
          requests: {cpu: 100m, memory: 64Mi}
EOF
if k rollout status deployment/web --timeout=60s >/dev/null; then
  ready=$(jp deployment/web '{.status.readyReplicas}/{.status.availableReplicas}')
  init=$(k get pods -l app=web -o \
    'jsonpath={range .items[*]}{.status.initContainerStatuses[0].state.terminated.reason}:{.status.initContainerStatuses[0].state.terminated.exitCode} {end}')
  if [[ "$ready" == "3/3" && "$init" == "Completed:0 Completed:0 Completed:0 " ]]; then
    pass "deployment with 3 replicas available, init containers Completed ($((SECONDS - t))s)"
  else
    fail "deployment rolled out but ready/available=$ready, init container states='$init'"
  fi
else
  fail "deployment/web not available within 60s: $(jp deployment/web '{.status}')"
fi

# --- 2. Scaling down deletes pods (pod-delete stage) ---------------------------------------------
t=$SECONDS
k scale deployment/web --replicas=1 >/dev/null
n=""
for _ in $(seq 1 150); do
  n=$(k get pods -l app=web --no-headers 2>/dev/null | wc -l)
  [[ "$n" -eq 1 ]] && break
  sleep 0.2
done
if [[ "$n" -eq 1 ]]; then
  pass "scale 3 -> 1 removed the pods ($((SECONDS - t))s)"
else
  fail "scale 3 -> 1: $n pods left after 30s"
fi

# --- 3. A pod requesting nvidia.com/gpu runs on a GPU node ---------------------------------------
t=$SECONDS
k apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: gpu
spec:
  containers:
  - name: worker
    image: registry.example.com/smoke/worker-gpu:1.0.0
    resources:
      limits: {nvidia.com/gpu: 1}
EOF
if k wait pod/gpu --for=condition=Ready --timeout=60s >/dev/null; then
  node=$(jp pod/gpu '{.spec.nodeName}')
  gpu_label=$("$kubectl" get node "$node" -o 'jsonpath={.metadata.labels.nvidia\.com/gpu\.present}')
  if [[ "$gpu_label" == "true" ]]; then
    pass "GPU pod scheduled onto GPU node $node and Ready ($((SECONDS - t))s)"
  else
    fail "GPU pod landed on $node whose nvidia.com/gpu.present label is '$gpu_label'"
  fi
else
  fail "GPU pod not Ready within 60s: $(jp pod/gpu '{.status}')"
fi

# --- 4. A never-ready pod runs but stays not Ready -----------------------------------------------
t=$SECONDS
k apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: never-ready
  labels: {rollgate.io/test-behaviour: never-ready}
spec:
  containers:
  - name: app
    image: registry.example.com/smoke/web:1.0.0
EOF
if k wait pod/never-ready --for=jsonpath='{.status.phase}'=Running --timeout=60s >/dev/null; then
  ok=1
  for _ in 1 2 3 4 5; do
    sleep 1
    state=$(jp pod/never-ready '{.status.phase} {.status.conditions[?(@.type=="Ready")].status} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].state.running.startedAt}')
    read -r phase readyc cready started <<<"$state"
    if [[ "$phase" != Running || "$readyc" != False || "$cready" != false || -z "${started:-}" ]]; then
      ok=0
      break
    fi
  done
  if ((ok)); then
    pass "never-ready pod Running with a running container, Ready=False for 5s ($((SECONDS - t))s)"
  else
    fail "never-ready pod: phase/Ready/containerReady/startedAt = $state"
  fi
else
  fail "never-ready pod not Running within 60s: $(jp pod/never-ready '{.status}')"
fi

# --- 5. A failing init container reports the requested exit code and message --------------------
t=$SECONDS
k apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: init-fail
  annotations:
    rollgate.io/test-init-fail: rollgate-validate
    rollgate.io/test-init-exit-code: "3"
    rollgate.io/test-init-message: '{"ok":false,"error":"cuInit: CUDA_ERROR_NO_DEVICE"}'
spec:
  initContainers:
  - name: setup
    image: registry.example.com/smoke/setup:1.0.0
  - name: rollgate-validate
    image: registry.example.com/rollgate/validate:0.1.0
  - name: after
    image: registry.example.com/smoke/setup:1.0.0
  containers:
  - name: worker
    image: registry.example.com/smoke/worker-gpu:1.0.0
EOF
if k wait pod/init-fail --timeout=60s \
  --for=jsonpath='{.status.initContainerStatuses[1].state.terminated.exitCode}'=3 >/dev/null; then
  sleep 2 # nothing may move it on afterwards
  got=$(jp pod/init-fail '{.status.initContainerStatuses[1].name}|{.status.initContainerStatuses[1].state.terminated.exitCode}|{.status.initContainerStatuses[1].state.terminated.reason}|{.status.initContainerStatuses[1].state.terminated.message}')
  first=$(jp pod/init-fail '{.status.initContainerStatuses[0].state.terminated.reason}:{.status.initContainerStatuses[0].state.terminated.exitCode}')
  third=$(jp pod/init-fail '{.status.initContainerStatuses[2].state.waiting.reason}')
  rest=$(jp pod/init-fail '{.status.phase} {.status.conditions[?(@.type=="Initialized")].status} {.status.conditions[?(@.type=="Ready")].status}')
  want='rollgate-validate|3|Error|{"ok":false,"error":"cuInit: CUDA_ERROR_NO_DEVICE"}'
  if [[ "$got" == "$want" && "$first" == "Completed:0" && "$third" == PodInitializing &&
    "$rest" == "Pending False False" ]]; then
    pass "init container rollgate-validate terminated: exit 3, reason Error, message from annotation ($((SECONDS - t))s)"
  else
    fail "init-fail pod: got '$got' (want '$want'), first init '$first', third init '$third', phase/Initialized/Ready '$rest'"
  fi
else
  fail "init container not terminated with exit code 3 within 60s: $(jp pod/init-fail '{.status}')"
fi

if ((failures == 0)); then
  echo "smoke test: PASS, all checks in $((SECONDS - start))s"
  exit 0
fi
echo "smoke test: FAIL, $failures failed check(s) in $((SECONDS - start))s"
exit 1
