#!/usr/bin/env bash
# End-to-end test of worker startup validation on the real node (issue 15, item 4): the
# controller's injected `rollgate-validate` init container really runs under the kubelet, and the
# kubelet's termination message carries its verdict back to the controller. A fresh cluster of its
# own (`hack/cluster.sh up --real-node`, brought down on every exit); the host-built controller
# (BUILD_DIR/controller/rollgate-controller) runs as a child process against it, as
# rollout_e2e_test.cc runs it.
#
#  Setup: the validator image (hack/image.sh), a test-only one with the fake libcuda
#     (hack/test-validator-image.sh) and the test app images (hack/test-app-images.sh) pushed to
#     the node's registry; the node rollgate-real-0 advertises GPUS `nvidia.com/gpu` (its status
#     patched, capacity and allocatable) and still does after the kubelet's next status updates;
#     the CRD installed.
#  Every case gets a namespace of its own that ENFORCES the restricted Pod Security Standard (a
#     non-compliant pod is refused there, checked), with a restricted-compliant GPU worker
#     Deployment of testapp:1.0 (65532, nvidia.com/gpu: 1, tolerating and selecting the real node),
#     Available before the controller starts; a controller with --namespace=<it> and the case's
#     --validator-image; a ContainerRollout to testapp:2.0 with `workerValidation: {cuda: Required}`.
#     Each prints the injected init container's exit code and termination message (from a pod
#     watch), checks that its pod was admitted (no "violates PodSecurity" / FailedCreate event of
#     the ReplicaSet) and ran on rollgate-real-0 with the restricted securityContext, and prints
#     the times from creating the rollout and from the Deployment's patch (as a 0.5 s poll sees
#     it) to the result.
#  Case validation_fails: the real validator image; this machine has no libcuda, so
#     rollgate-validate exits 10 with its JSON verdict as termination message -> the environment
#     fails with reason WorkerValidationFailed and the verdict in its message (also a Warning
#     event of the rollout) -> the rollout ends RolledBack, and the Deployment's images and init
#     containers are back as before (its pod runs testapp:1.0 again).
#  Case validation_passes: the fake-libcuda validator image -> rollgate-validate exits 0 with a
#     passing verdict -> Succeeded; the Deployment runs testapp:2.0 with the injected init container.
#
#   tests/e2e/real_node_validation_test.sh [BUILD_DIR [CASE...]]
#
#   BUILD_DIR  holds controller/rollgate-controller, controller/rollgate,
#              controller/rollgate-validate and tests/fake_libcuda/libcuda.so.1 (default: build/)
#   CASE       the cases to run, in order (default: all of CASES_ALL below)
#
# Adding a case (e.g. ImagePullFailed with testapp:2.0-missing, never pushed, or ContainerCrashing
# with testapp:2.0-crash, in the registry): write a function case_<name> (see
# case_validation_fails; the helpers new_namespace, gpu_worker, start_controller (extra controller
# flags welcome), start_pod_watch, create_rollout (TAG, and the workerValidation or none),
# watch_rollout, check_admitted and check_restored do the work) and add <name> to CASES_ALL. The
# cluster, the images in the registry, the GPUs and the CRD are shared; each case has its own
# namespace and stops its controller (finish_case) before the next one starts.
#
# Needs root and what tests/e2e/real_node_test.sh needs, plus mmdebstrap (hack/image.sh: the Debian
# mirror). One real node per machine at a time (the bridge rollgate0): ctest serialises the
# real-node tests (RESOURCE_LOCK real_node); by hand, run it under
# `flock /tmp/rollgate-real-node.lock`. Prints PASS/FAIL per check; exits non-zero when any fails.
# ROLLGATE_KEEP_FAILED=1 keeps the temporary directory (controller logs, pod watches) after a
# failure. 70-100 s.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-$repo/build}
(($# == 0)) || shift
readonly CASES_ALL=(validation_fails validation_passes)
cases=("$@")
((${#cases[@]})) || cases=("${CASES_ALL[@]}")
for c in "${cases[@]}"; do
  [[ " ${CASES_ALL[*]} " == *" $c "* ]] || { echo "usage: $0 [BUILD_DIR [CASE...]]; cases: ${CASES_ALL[*]}" >&2; exit 2; }
done
if [[ $(id -u) -ne 0 ]]; then
  echo "FAIL: needs root (containerd, runc, the kubelet)" >&2
  exit 1
fi
for tool in containerd ctr runc catatonit skopeo umoci mmdebstrap iptables curl jq python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed" >&2; exit 1; }
done
[[ -d "$build" ]] || { echo "FAIL: no build directory $build" >&2; exit 1; }
build=$(cd "$build" && pwd)
for f in controller/rollgate-controller controller/rollgate controller/rollgate-validate tests/fake_libcuda/libcuda.so.1; do
  [[ -f "$build/$f" ]] || { echo "FAIL: $build/$f is not built (cmake --build $build --target rollgate-controller rollgate rollgate-validate fake_libcuda)" >&2; exit 1; }
done
# shellcheck source-path=SCRIPTDIR source=../../hack/control-plane-versions.sh
source "$repo/hack/control-plane-versions.sh"

readonly NODE=rollgate-real-0
readonly GPU=nvidia.com/gpu GPUS=8
readonly VALIDATOR=rollgate-validate
start=$SECONDS
check_name="real node validation test"
# shellcheck source-path=SCRIPTDIR source=lib/checks.sh
source "$here/lib/checks.sh"
# shellcheck source-path=SCRIPTDIR source=lib/restricted_namespace.sh
source "$here/lib/restricted_namespace.sh"
# shellcheck source-path=SCRIPTDIR source=../../hack/lib/node-gpus.sh
source "$repo/hack/lib/node-gpus.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-real-node-validation.XXXXXX")
cluster=$work/cluster
controller_pid="" pod_watch_pid="" pod_watch=""

# stop_controller: SIGTERM to the controller this test started, SIGKILL after 10 s.
stop_controller() {
  [[ -n "$controller_pid" ]] || return 0
  if kill -TERM "$controller_pid" 2>/dev/null; then
    local i
    for i in $(seq 1 50); do
      kill -0 "$controller_pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$controller_pid" 2>/dev/null; then
      echo "controller (pid $controller_pid) still alive 10 s after SIGTERM (iteration $i): SIGKILL"
      kill -KILL "$controller_pid" 2>/dev/null || true
    fi
  fi
  wait "$controller_pid" 2>/dev/null || true
  controller_pid=""
}
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  stop_pod_watch
  stop_controller
  bash "$repo/hack/cluster.sh" down "$cluster" >/dev/null 2>&1 || bash "$repo/hack/cluster.sh" down "$cluster" || true
  if ((failures)) && [[ "${ROLLGATE_KEEP_FAILED:-0}" == 1 ]]; then
    echo "kept $work (ROLLGATE_KEEP_FAILED=1)"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

kubectl() { "$CONTROL_PLANE_BIN/kubectl" --request-timeout=10s "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.1f", b - a }'; }

# --- shared setup ---------------------------------------------------------------------------------

# build_images: into $work/push (what goes to the registry): rollgate-validate:<version> (hack/
# image.sh; its controller image stays in $work/product), rollgate-validate:<version>-fake-cuda
# and the testapp images. Sets validator_tag, fake_tag.
build_images() {
  local t0
  t0=$(now)
  mkdir -p "$work/product" "$work/push"
  if ! bash "$repo/hack/image.sh" --out "$work/product" "$build" >"$work/image.log" 2>&1; then
    fail "hack/image.sh: $(one_line "$(tail -n 5 "$work/image.log")")"
    finish
  fi
  local archive
  archive=$(find "$work/product" -maxdepth 1 -name "$VALIDATOR-*.tar" | head -n 1)
  validator_tag=$(basename "$archive" .tar)
  validator_tag=${validator_tag#"$VALIDATOR-"}
  cp "$archive" "$work/push/"
  if ! bash "$repo/hack/test-validator-image.sh" --out "$work/push" "$archive" \
    "$build/tests/fake_libcuda/libcuda.so.1" >"$work/fake-image.log" 2>&1; then
    fail "hack/test-validator-image.sh: $(one_line "$(tail -n 5 "$work/fake-image.log")")"
    finish
  fi
  fake_tag=$validator_tag-fake-cuda
  if ! bash "$repo/hack/test-app-images.sh" --out "$work/push" >"$work/app-images.log" 2>&1; then
    fail "hack/test-app-images.sh: $(one_line "$(tail -n 5 "$work/app-images.log")")"
    finish
  fi
  # Their summary lines: name, tag (or name:tag), size, digest, archive.
  pass "images built in $(since "$t0")s: $(grep -h "^$VALIDATOR" "$work/image.log" "$work/fake-image.log" |
    awk '{ ref = ($1 ~ /:/) ? $1 : $1 ":" $2; for (i = 2; i <= NF; i++) if ($i ~ /^sha256:/) print ref "@" $i }' | paste -sd' ')"
}

cluster_up() {
  local t0 env_out
  t0=$(now)
  if ! env_out=$(bash "$repo/hack/cluster.sh" up --dir "$cluster" --real-node 2>"$work/up.log"); then
    fail "hack/cluster.sh up --real-node: $(one_line "$(tail -n 5 "$work/up.log")")"
    finish
  fi
  eval "$env_out"
  pass "hack/cluster.sh up --real-node in $(since "$t0")s (registry $ROLLGATE_REGISTRY)"
  if bash "$repo/hack/registry.sh" push "$work/push" --dir "$cluster/real-node/registry" >"$work/push.log" 2>&1; then
    pass "pushed to $ROLLGATE_REGISTRY: $(one_line "$(awk '{ print $1 }' "$work/push.log" | sed 's,^[^/]*/,,')")"
  else
    fail "hack/registry.sh push: $(one_line "$(tail -n 3 "$work/push.log")")"
    finish
  fi
  if kubectl apply --server-side -f "$repo/crds/rollgate.io_containerrollouts.yaml" >/dev/null 2>"$work/crd.err" &&
    kubectl wait crd/containerrollouts.rollgate.io --for=condition=Established --timeout=30s >/dev/null 2>>"$work/crd.err"; then
    pass "CRD installed"
  else
    fail "CRD: $(one_line "$(cat "$work/crd.err")")"
    finish
  fi
}

# advertise_gpus: GPUS nvidia.com/gpu on the node's status (capacity and allocatable), as a device
# plugin would (hack/lib/node-gpus.sh); then watches the node until the kubelet has posted its
# status twice more (its Ready condition's lastHeartbeatTime after the patch; every 4 s,
# nodeStatusUpdateFrequency in hack/real-node.sh), at least 8 s and at most 30 s: the GPUs must
# stay all along.
advertise_gpus() {
  local t_patch
  t_patch=$(date +%s)
  if ! node_gpus_advertise kubectl "$NODE" "$GPUS" 2>"$work/patch.err"; then
    fail "patching $NODE's status: $(one_line "$(cat "$work/patch.err")")"
    finish
  fi
  if node_gpus_watch kubectl "$NODE" "$GPUS" "$t_patch" 2 8 30; then
    pass "$NODE advertises $GPUS $GPU (capacity and allocatable), still after ${node_gpus_elapsed}s and $(wc -w <<<"$node_gpus_posts") status posts of the kubelet ($node_gpus_posts)"
  else
    fail "$NODE's $GPU: $node_gpus_error"
  fi
}

# --- per case -------------------------------------------------------------------------------------

# gpu_worker NS TAG: Deployment `worker` of testapp:TAG, restricted-compliant, requesting one GPU,
# on the real node; waits until it is Available.
gpu_worker() {
  local ns=$1 tag=$2 t0
  t0=$(now)
  kubectl apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker, namespace: $ns}
spec:
  replicas: 1
  progressDeadlineSeconds: 120
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      nodeSelector: {rollgate.io/real-node: "true"}
      tolerations: [{key: rollgate.io/real-node, operator: Equal, value: "true", effect: NoSchedule}]
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 1
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: app
        image: $ROLLGATE_REGISTRY/testapp:$tag
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
        resources:
          requests: {cpu: 10m, memory: 16Mi, $GPU: "1"}
          limits: {cpu: 500m, memory: 64Mi, $GPU: "1"}
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1, failureThreshold: 1}
EOF
  if kubectl -n "$ns" rollout status deploy/worker --timeout=90s >/dev/null 2>"$work/wait.err"; then
    pass "$ns/worker (testapp:$tag, 1 $GPU) Available on $NODE in $(since "$t0")s"
  else
    fail "$ns/worker not Available: $(one_line "$(cat "$work/wait.err"; kubectl -n "$ns" get pods -o json | jq -c '[.items[].status]')")"
    return 1
  fi
}

# template NS: what a rollback must restore: the containers' names and images, the init containers.
template() {
  kubectl -n "$1" get deploy worker -o json |
    jq -cS '.spec.template.spec | {containers: [.containers[] | {name, image}], initContainers: (.initContainers // [])}'
}

# start_controller CASE NS VALIDATOR_IMAGE [FLAG...]: the host-built controller, watching NS only,
# with the extra FLAGs (e.g. --image-pull-failure-seconds=10). Sets controller_pid, controller_log.
start_controller() {
  local name=$1 ns=$2 image=$3
  shift 3
  controller_log=$work/controller-$name.log
  "$build/controller/rollgate-controller" --kubeconfig "$KUBECONFIG" --namespace="$ns" \
    --validator-image="$image" --metrics-bind-address=0 --health-probe-bind-address=0 "$@" \
    </dev/null >"$controller_log" 2>&1 &
  controller_pid=$!
  echo "controller for $name: pid $controller_pid, --validator-image=$image $*, log $controller_log"
}

# create_rollout NS TAG [VALIDATION]: ContainerRollout `worker` to testapp:TAG; VALIDATION is the
# target's workerValidation (default {cuda: Required}; "" for none).
create_rollout() {
  local validation=${3-"{cuda: Required}"}
  kubectl apply -f - >/dev/null <<EOF
apiVersion: rollgate.io/v1alpha1
kind: ContainerRollout
metadata: {name: worker, namespace: $1}
spec:
  images: {app: "$ROLLGATE_REGISTRY/testapp:$2"}
  progressDeadlineSeconds: 120
  environments:
  - name: gpu
    targets:
    - deployment: worker
      containers: {app: app}
      ${validation:+workerValidation: $validation}
EOF
}

# start_pod_watch NS: records every change of the pods labelled rollgate.io/validation in NS (a
# kubectl watch in the background, into $work/pods-NS.watch), so that no state of the injected
# init container is missed however briefly a pod lives (a rollback deletes the failed one within
# a second or two). Call it before create_rollout; watch_rollout stops it.
start_pod_watch() {
  pod_watch=$work/pods-$1.watch
  "$CONTROL_PLANE_BIN/kubectl" -n "$1" get pods -l rollgate.io/validation --watch --output-watch-events \
    -o json >"$pod_watch" 2>"$pod_watch.err" &
  pod_watch_pid=$!
}
stop_pod_watch() {
  [[ -n "$pod_watch_pid" ]] || return 0
  kill -TERM "$pod_watch_pid" 2>/dev/null || true
  wait "$pod_watch_pid" 2>/dev/null || true
  pod_watch_pid=""
}

# watch_rollout NS TIMEOUT: polls (every 0.5 s) the rollout and the Deployment until the rollout is
# in a terminal phase, then stops the pod watch (start_pod_watch) and reads it. Call it right after
# create_rollout. Sets: r_json (the rollout), r_phase, history (the rollout's phase / the
# environment's phase(reason) as they changed), t_patched / t_reason / t_end (seconds from the call
# until the Deployment carried the injected init container, until the environment had a reason,
# until the phase was terminal; "" when never), init (JSON: the first terminated state of an
# injected rollgate-validate in any pod, with its pod, node, image, restarts and securityContext;
# "" when none).
watch_rollout() {
  local ns=$1 timeout=$2 t0 deadline d state last=""
  t0=$(now) deadline=$((SECONDS + timeout))
  r_json="" r_phase="" history="" t_patched="" t_reason="" t_end="" init=""
  while ((SECONDS < deadline)); do
    r_json=$(kubectl -n "$ns" get crol worker -o json 2>/dev/null || echo '{}')
    r_phase=$(jq -r '.status.phase // ""' <<<"$r_json")
    state=$(jq -r '"\(.status.phase // "-")/\(.status.environments[0].phase // "-")\(.status.environments[0].reason // "" | if . == "" then "" else "(\(.))" end)"' <<<"$r_json")
    if [[ "$state" != "$last" ]]; then
      history+="${history:+ -> }$state@$(since "$t0")s"
      last=$state
    fi
    if [[ -z "$t_patched" ]]; then
      d=$(kubectl -n "$ns" get deploy worker -o json)
      if jq -e --arg v "$VALIDATOR" '[.spec.template.spec.initContainers[]? | select(.name == $v)] | length == 1' <<<"$d" >/dev/null; then
        t_patched=$(since "$t0")
      fi
    fi
    if [[ -z "$t_reason" && -n "$(jq -r '.status.environments[0].reason // empty' <<<"$r_json")" ]]; then
      t_reason=$(since "$t0")
    fi
    case $r_phase in
      Succeeded | RolledBack | Failed | Aborted)
        t_end=$(since "$t0")
        break
        ;;
    esac
    sleep 0.5
  done
  sleep 1 # the watch's last events
  stop_pod_watch
  # The events are pretty-printed JSON objects one after the other; the last may be cut short.
  init=$(jq -c -n --arg v "$VALIDATOR" 'first(inputs | .object // empty | . as $p
    | $p.status.initContainerStatuses[]? | select(.name == $v)
    | (.state.terminated // .lastState.terminated) as $t | select($t != null)
    | {pod: $p.metadata.name, node: $p.spec.nodeName, image, restartCount,
       exitCode: $t.exitCode, reason: $t.reason, message: $t.message,
       securityContext: first($p.spec.initContainers[] | select(.name == $v) | .securityContext)})' \
    "$pod_watch" 2>/dev/null) || true
  [[ -n "$init" ]] || echo "pod watch: $(grep -c '"type"' "$pod_watch" || true) event(s); $(one_line "$(cat "$pod_watch.err")")"
  return 0
}

# show_init: prints the injected init container's exit code and termination message.
show_init() {
  if [[ -n "$init" ]]; then
    echo "$VALIDATOR in pod $(jq -r .pod <<<"$init") on $(jq -r .node <<<"$init") ($(jq -r .image <<<"$init")):" \
      "exit code $(jq -r .exitCode <<<"$init") ($(jq -r .reason <<<"$init"), restarts $(jq -r .restartCount <<<"$init"))"
    echo "  termination message: $(jq -r '.message // ""' <<<"$init")"
  else
    echo "$VALIDATOR: no terminated state seen in any pod"
  fi
}

# check_admitted NS: the pods with the injected init container were created in the restricted
# namespace (one ran on the real node), and no ReplicaSet event says PodSecurity refused one.
check_admitted() {
  local ns=$1 refused
  refused=$(kubectl -n "$ns" get events -o json | jq -c '[.items[] | select(.involvedObject.kind == "ReplicaSet"
    and (.reason == "FailedCreate" or (.message | test("violates PodSecurity"))))
    | {object: .involvedObject.name, reason, message}]')
  if [[ "$refused" == "[]" && -n "$init" && "$(jq -r .node <<<"$init")" == "$NODE" ]] &&
    jq -e '.securityContext | .runAsNonRoot and .runAsUser == 65532 and .readOnlyRootFilesystem
      and .allowPrivilegeEscalation == false and .capabilities.drop == ["ALL"] and .seccompProfile.type == "RuntimeDefault"' <<<"$init" >/dev/null; then
    pass "$ns: the pod with the injected $VALIDATOR was admitted under restricted (no FailedCreate / violates PodSecurity event) and ran on $NODE as $(jq -c .securityContext <<<"$init")"
  else
    fail "$ns: admission: ReplicaSet events $(one_line "$refused"), init container ${init:-never terminated}"
  fi
}

# finish_case NAME: stops the controller; on failure shows the end of its log.
finish_case() {
  stop_controller
  if ((failures > case_failures)); then
    echo "--- last 30 lines of the controller log ($1) ---"
    tail -n 30 "$controller_log" || true
  fi
}

# --- case: the real validator, no libcuda here -> WorkerValidationFailed, rollback ----------------
case_validation_fails() {
  local ns=rg-val-fails before env msg t0
  new_namespace "$ns"
  gpu_worker "$ns" 1.0 || return 0
  before=$(template "$ns")
  start_controller validation_fails "$ns" "$ROLLGATE_REGISTRY/$VALIDATOR:$validator_tag"
  start_pod_watch "$ns"
  create_rollout "$ns" 2.0
  t0=$(now)
  watch_rollout "$ns" 150
  show_init
  echo "rollout/environment phases: $history"
  env=$(jq -c '.status.environments[0] // {} | {phase, reason, message}' <<<"$r_json")
  msg=$(jq -r '.message // ""' <<<"$env")
  if [[ -n "$init" ]] && jq -e '.exitCode == 10 and (.message | fromjson | .passed == false and .failedCheck == "library")' \
    <<<"$init" >/dev/null 2>&1; then
    pass "$VALIDATOR exited 10 (libcuda missing), its termination message the JSON verdict (failedCheck library)"
  else
    fail "$VALIDATOR: want exit 10 and a verdict with failedCheck library, got ${init:-nothing}"
  fi
  # The environment fails and, rolled back, ends RolledBack keeping the failure's reason and message.
  if [[ "$r_phase" == RolledBack ]] && jq -e '(.phase == "Failed" or .phase == "RolledBack") and .reason == "WorkerValidationFailed"' <<<"$env" >/dev/null &&
    [[ "$msg" == *"$VALIDATOR exited 10"* && "$msg" == *'"failedCheck":"library"'* && "$msg" == *"$NODE"* ]]; then
    pass "environment $(jq -r .phase <<<"$env") with reason WorkerValidationFailed and the verdict in its message; rollout RolledBack: $(one_line "$msg")"
  else
    fail "want RolledBack after WorkerValidationFailed with the verdict, got phase ${r_phase:-none}, environment $(one_line "$env")"
  fi
  local events
  events=$(kubectl -n "$ns" get events -o json | jq -c '[.items[] | select(.involvedObject.kind == "ContainerRollout")
    | select(.reason == "WorkerValidationFailed" or (.message | contains("WorkerValidationFailed"))) | {type, reason, message}]')
  if jq -e 'length >= 1' <<<"$events" >/dev/null; then
    pass "the rollout's events name the failure: $(one_line "$(jq -r '.[0] | "\(.type) \(.reason): \(.message)"' <<<"$events")")"
  else
    fail "no event of the ContainerRollout names WorkerValidationFailed: $(one_line "$(kubectl -n "$ns" get events -o json | jq -c '[.items[] | {kind: .involvedObject.kind, reason}]')")"
  fi
  echo "timings (validation_fails): Deployment patched ${t_patched:-never}s after the rollout was created;" \
    "WorkerValidationFailed ${t_reason:-never}s ($(awk -v a="${t_patched:-0}" -v b="${t_reason:-0}" 'BEGIN { printf "%.1f", b - a }')s after the patch);" \
    "RolledBack ${t_end:-never}s"
  check_admitted "$ns"
  check_restored "$ns" "$before"
  echo "validation_fails: $(since "$t0")s"
}

# check_restored NS BEFORE: the Deployment's images and init containers are BEFORE's again, and
# it rolls back to a Ready pod of testapp:1.0 without the init container.
check_restored() {
  local ns=$1 before=$2 after pods
  after=$(template "$ns")
  if [[ "$after" == "$before" ]]; then
    pass "rollback restored the pod template: $after"
  else
    fail "pod template before $before, after the rollback $after"
  fi
  if kubectl -n "$ns" rollout status deploy/worker --timeout=60s >/dev/null 2>"$work/wait.err"; then
    local deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
      pods=$(kubectl -n "$ns" get pods -o json | jq -c '[.items[] | select(.metadata.deletionTimestamp == null)
        | {image: .spec.containers[0].image, inits: [.spec.initContainers[]?.name], ready: .status.containerStatuses[0].ready, node: .spec.nodeName}]')
      jq -e 'length == 1' <<<"$pods" >/dev/null && break
      sleep 0.5
    done
    if jq -e --arg i "$ROLLGATE_REGISTRY/testapp:1.0" --arg n "$NODE" \
      'length == 1 and .[0].image == $i and .[0].inits == [] and .[0].ready and .[0].node == $n' <<<"$pods" >/dev/null; then
      pass "after the rollback one Ready pod of testapp:1.0 without init containers on $NODE"
    else
      fail "pods after the rollback: $pods"
    fi
  else
    fail "rollback did not complete: $(one_line "$(cat "$work/wait.err")")"
  fi
}

# --- case: the fake-libcuda validator -> validation passes, Succeeded -----------------------------
case_validation_passes() {
  local ns=rg-val-passes env pods t0
  new_namespace "$ns"
  gpu_worker "$ns" 1.0 || return 0
  start_controller validation_passes "$ns" "$ROLLGATE_REGISTRY/$VALIDATOR:$fake_tag"
  start_pod_watch "$ns"
  create_rollout "$ns" 2.0
  t0=$(now)
  watch_rollout "$ns" 150
  show_init
  echo "rollout/environment phases: $history"
  env=$(jq -c '.status.environments[0] // {} | {phase, reason, message, validation}' <<<"$r_json")
  if [[ -n "$init" ]] && jq -e '.exitCode == 0 and (.message | fromjson | .passed == true and .deviceCount == 1
      and .devices[0].name == "Fake CUDA Device" and all(.checks[]; .passed))' <<<"$init" >/dev/null 2>&1; then
    pass "$VALIDATOR exited 0 with the fake libcuda, a passing verdict ($(jq -r '.message | fromjson | .message' <<<"$init"))"
  else
    fail "$VALIDATOR: want exit 0 and a passing verdict, got ${init:-nothing}"
  fi
  if [[ "$r_phase" == Succeeded ]] && jq -e '.phase == "Succeeded" and .validation.passed == 1 and .validation.failed == 0' <<<"$env" >/dev/null; then
    pass "rollout Succeeded: environment $(one_line "$env")"
  else
    fail "want Succeeded, got phase ${r_phase:-none}, environment $(one_line "$env")"
  fi
  echo "timings (validation_passes): Deployment patched ${t_patched:-never}s after the rollout was created;" \
    "Succeeded ${t_end:-never}s ($(awk -v a="${t_patched:-0}" -v b="${t_end:-0}" 'BEGIN { printf "%.1f", b - a }')s after the patch)"
  check_admitted "$ns"
  pods=$(kubectl -n "$ns" get pods -o json | jq -c --arg v "$VALIDATOR" '[.items[] | select(.metadata.deletionTimestamp == null)
    | {image: .spec.containers[0].image, inits: [.spec.initContainers[]? | {name, image}], ready: (.status.containerStatuses[0].ready // false), node: .spec.nodeName}]')
  if jq -e --arg i "$ROLLGATE_REGISTRY/testapp:2.0" --arg vi "$ROLLGATE_REGISTRY/$VALIDATOR:$fake_tag" --arg v "$VALIDATOR" --arg n "$NODE" \
    'length >= 1 and any(.[]; .image == $i and .inits == [{name: $v, image: $vi}] and .ready and .node == $n)' <<<"$pods" >/dev/null; then
    pass "a Ready pod of testapp:2.0 with the injected $VALIDATOR ($fake_tag) on $NODE"
  else
    fail "pods after the rollout: $pods"
  fi
  echo "validation_passes: $(since "$t0")s"
}

# --- main -----------------------------------------------------------------------------------------
build_images
cluster_up
advertise_gpus
validator_tag=${validator_tag:?} fake_tag=${fake_tag:?}
for c in "${cases[@]}"; do
  echo "=== case $c ==="
  case_failures=$failures
  "case_$c"
  finish_case "$c"
done
# The kubelet kept the GPUs advertised to the end.
gpus=$(node_gpus kubectl "$NODE")
if [[ "$gpus" == "$GPUS/$GPUS" ]]; then
  pass "$NODE still advertises $GPUS $GPU at the end ($((SECONDS - start))s after the start)"
else
  fail "$NODE's $GPU capacity/allocatable at the end: $gpus"
fi
finish
