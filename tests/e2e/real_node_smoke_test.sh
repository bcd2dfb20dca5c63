#!/usr/bin/env bash
# End-to-end test of smoke checks on the real node (issue 20): each check really runs as a Job in
# the new image, built from the target Deployment's own pod template, admitted under the
# restricted Pod Security Standard and scheduled on rollgate-real-0 like the application; its exit
# code and (through terminationMessagePolicy FallbackToLogsOnError) its last log lines come back
# from the kubelet to the controller. A fresh cluster of its own (`hack/cluster.sh up
# --real-node`, brought down on every exit); the host-built controller
# (BUILD_DIR/controller/rollgate-controller) runs as a child process against it, as
# real_node_validation_test.sh runs it.
#
#  Setup: the test app images (hack/test-app-images.sh; testapp's `--mode check --exit N
#     [--sleep S]` and `--mode sleep` are the checks' commands) pushed to the node's registry; the
#     CRD installed.
#  Every case has a namespace of its own that ENFORCES the restricted Pod Security Standard (a
#     non-compliant pod is refused there, checked) with a restricted-compliant Deployment `worker`
#     of testapp:1.0 pinned to the real node, Available before its controller starts; a controller
#     with --namespace=<it> (the optin case: one for all namespaces); a ContainerRollout to
#     testapp:2.0 with one smoke check (on the environment or on its target); background watches
#     of the namespace's Jobs and their pods, so that no Job is missed however briefly it lives.
#     Each case prints its rollout/environment phases as they changed and its timings.
#  passes: BeforePatch `check --exit 0` (environment-level) -> Succeeded; the Job (its labels,
#     annotations, backoffLimit 0, restartPolicy Never, activeDeadlineSeconds, TTL,
#     FallbackToLogsOnError, the template's securityContext, env, node selector; no probes, ports
#     or app labels) ran testapp:2.0 on rollgate-real-0, admitted under restricted, exit 0; it is
#     deleted after the pass; status smokeChecks Passed, exitCode 0 (prints the check's duration).
#  fails: BeforePatch `check --exit 3` (target-level) -> Failed, reason SmokeCheckFailed, the
#     message names exit code 3 and carries testapp's FAILED line; the Deployment was never
#     patched (its generation and testapp:1.0 unchanged); the failed Job is kept; a Warning event
#     SmokeCheckFailed.
#  timeout: BeforePatch `--mode sleep`, timeoutSeconds 5 -> Failed SmokeCheckFailed "timed out",
#     status TimedOut, nothing patched.
#  sigkill: BeforePatch `check --exit 0 --sleep 10`; the controller is SIGKILLed as soon as the Job
#     exists and a new one started -> Succeeded, and exactly one Job (one uid, one pod) was ever
#     created for the rollout: the new controller adopted it by its deterministic name.
#  optin: the rollout in namespace A, its environment in B (opted in with
#     rollgate.io/allow-rollouts-from=A) with `approval: Manual` and a check; while it awaits
#     approval B's label is removed, then `rollgate promote` -> the environment fails
#     NamespaceNotPermitted, no Job was ever created in B, the Deployment untouched.
#  after_healthy_passes: AfterHealthy `check --exit 0` -> Succeeded; the Job was created after the
#     Deployment had rolled out (its creationTimestamp not before the Deployment's
#     NewReplicaSetAvailable, the environment Verifying when it was first seen).
#  after_healthy_fails: AfterHealthy `check --exit 4` -> SmokeCheckFailed, rolled back: the
#     rollout RolledBack, the Deployment back on testapp:1.0 with one Ready pod.
#  optin runs first, alone (its controller watches every namespace); the others then run at once,
#     each with its own controller.
#
#   tests/e2e/real_node_smoke_test.sh [BUILD_DIR [CASE...]]
#
#   BUILD_DIR  holds controller/rollgate-controller and controller/rollgate (default: build/)
#   CASE       the cases to run (default: all of CASES_ALL below)
#
# Needs root and what tests/e2e/real_node_test.sh needs (containerd, runc, catatonit,
# containernetworking-plugins, docker-registry, skopeo, umoci). One real node per machine at a
# time (the bridge rollgate0): ctest serialises the real-node tests (RESOURCE_LOCK real_node); by
# hand, run it under `flock /tmp/rollgate-real-node.lock`. Prints PASS/FAIL per check; exits
# non-zero when any fails. ROLLGATE_KEEP_FAILED=1 keeps the temporary directory (controller logs,
# watches) after a failure. About 2 minutes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-$repo/build}
(($# == 0)) || shift
readonly CASES_ALL=(optin passes fails timeout sigkill after_healthy_passes after_healthy_fails)
cases=("$@")
((${#cases[@]})) || cases=("${CASES_ALL[@]}")
for c in "${cases[@]}"; do
  [[ " ${CASES_ALL[*]} " == *" $c "* ]] || { echo "usage: $0 [BUILD_DIR [CASE...]]; cases: ${CASES_ALL[*]}" >&2; exit 2; }
done
if [[ $(id -u) -ne 0 ]]; then
  echo "FAIL: needs root (containerd, runc, the kubelet)" >&2
  exit 1
fi
for tool in containerd ctr runc catatonit skopeo umoci iptables curl jq python3 gcc; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed" >&2; exit 1; }
done
[[ -d "$build" ]] || { echo "FAIL: no build directory $build" >&2; exit 1; }
build=$(cd "$build" && pwd)
for f in controller/rollgate-controller controller/rollgate; do
  [[ -x "$build/$f" ]] || { echo "FAIL: $build/$f is not built (cmake --build $build --target rollgate-controller rollgate)" >&2; exit 1; }
done
# shellcheck source-path=SCRIPTDIR source=../../hack/control-plane-versions.sh
source "$repo/hack/control-plane-versions.sh"

readonly NODE=rollgate-real-0
readonly APP=/usr/local/bin/testapp
readonly ROLLOUT=worker
start=$SECONDS
check_name="real node smoke test"
# shellcheck source-path=SCRIPTDIR source=lib/checks.sh
source "$here/lib/checks.sh"
# shellcheck source-path=SCRIPTDIR source=lib/restricted_namespace.sh
source "$here/lib/restricted_namespace.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-real-node-smoke.XXXXXX")
cluster=$work/cluster
export KUBECACHEDIR=$work/kube-cache
# Every background process (controllers, watches) this test starts, one pid a line: the EXIT trap
# ends those still alive, whichever case (subshell) started them.
bg_pids=$work/bg.pids
: >"$bg_pids"
controller_pid="" controller_log="" watch_pids=()

kubectl() { "$CONTROL_PLANE_BIN/kubectl" --request-timeout=10s "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.1f", b - a }'; }
# epoch TIMESTAMP: an RFC 3339 time in seconds since the epoch ("" for "" or null).
epoch() { [[ -n "$1" && "$1" != null ]] && date -u -d "$1" +%s || echo ""; }

# stop_pid PID: SIGTERM, SIGKILL after 10 s.
stop_pid() {
  local pid=$1 _
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "pid $pid still alive 10 s after SIGTERM: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
stop_controller() {
  [[ -n "$controller_pid" ]] || return 0
  stop_pid "$controller_pid"
  controller_pid=""
}
stop_watches() {
  local p
  for p in "${watch_pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  watch_pids=()
}
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local p
  stop_watches
  stop_controller
  # What a case (a subshell) left running, e.g. when this script was interrupted.
  # Only a pid that still runs one of our commands (a finished case's pid may have been reused).
  while read -r p; do
    [[ -n "$p" && -r /proc/$p/cmdline ]] || continue
    case $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) in
      "$build/controller/rollgate-controller "* | "$CONTROL_PLANE_BIN/kubectl "*) stop_pid "$p" >/dev/null ;;
    esac
  done <"$bg_pids"
  bash "$repo/hack/cluster.sh" down "$cluster" >/dev/null 2>&1 || bash "$repo/hack/cluster.sh" down "$cluster" || true
  if ((failures)) && [[ "${ROLLGATE_KEEP_FAILED:-0}" == 1 ]]; then
    echo "kept $work (ROLLGATE_KEEP_FAILED=1)"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# --- shared setup ---------------------------------------------------------------------------------

# cluster_up: the test app images (built while the cluster starts) pushed to the node's registry,
# the CRD installed.
cluster_up() {
  local t0 env_out images_pid
  t0=$(now)
  mkdir -p "$work/push"
  bash "$repo/hack/test-app-images.sh" --out "$work/push" >"$work/app-images.log" 2>&1 &
  images_pid=$!
  if ! env_out=$(bash "$repo/hack/cluster.sh" up --dir "$cluster" --real-node 2>"$work/up.log"); then
    wait "$images_pid" || true
    fail "hack/cluster.sh up --real-node: $(one_line "$(tail -n 5 "$work/up.log")")"
    finish
  fi
  eval "$env_out"
  pass "hack/cluster.sh up --real-node in $(since "$t0")s (registry $ROLLGATE_REGISTRY)"
  if ! wait "$images_pid"; then
    fail "hack/test-app-images.sh: $(one_line "$(tail -n 5 "$work/app-images.log")")"
    finish
  fi
  if bash "$repo/hack/registry.sh" push "$work/push" --dir "$cluster/real-node/registry" >"$work/push.log" 2>&1; then
    pass "test app images (testapp.c with the smoke-check modes) pushed to $ROLLGATE_REGISTRY: $(one_line "$(awk '{ print $1 }' "$work/push.log" | sed 's,^[^/]*/,,')")"
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
  # The CRD takes the smoke checks: a server-side dry run answers with the object as it would be
  # stored, defaults applied and any field the schema lacks pruned.
  local out
  if out=$(kubectl create --dry-run=server -o json -f - 2>&1 <<EOF
apiVersion: rollgate.io/v1alpha1
kind: ContainerRollout
metadata: {name: schema-probe, namespace: default}
spec:
  images: {app: "$ROLLGATE_REGISTRY/testapp:2.0"}
  environments:
  - name: smoke
    smokeChecks: [{name: env-check, image: app, command: [$APP, --mode, check]}]
    targets:
    - deployment: worker
      containers: {app: app}
      smokeChecks: [{name: target-check, image: app, command: [$APP], when: AfterHealthy, timeoutSeconds: 9}]
EOF
  ) && jq -e '.spec.environments[0] | (.smokeChecks[0] | .timeoutSeconds == 300 and .when == "BeforePatch")
      and (.targets[0].smokeChecks[0] | .timeoutSeconds == 9 and .when == "AfterHealthy")' <<<"$out" >/dev/null; then
    pass "the CRD keeps environments[].smokeChecks and targets[].smokeChecks (defaults timeoutSeconds 300, when BeforePatch)"
  else
    fail "the CRD and smoke checks: $(one_line "$(jq -c '.spec.environments // .' <<<"$out" 2>/dev/null || echo "$out")")"
  fi
}

# --- per case -------------------------------------------------------------------------------------

# worker NS TAG: Deployment `worker` of testapp:TAG, restricted-compliant, on the real node, with
# an env variable of its own (the Job must copy it); waits until it is Available.
worker() {
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
        env: [{name: SMOKE_FROM_TEMPLATE, value: "yes"}]
        ports: [{containerPort: 8080, name: http}]
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
        resources:
          requests: {cpu: 10m, memory: 16Mi}
          limits: {cpu: 500m, memory: 64Mi}
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1, failureThreshold: 1}
EOF
  if kubectl -n "$ns" rollout status deploy/worker --timeout=90s >/dev/null 2>"$work/wait-$ns.err"; then
    pass "$ns/worker (testapp:$tag) Available on $NODE in $(since "$t0")s"
  else
    fail "$ns/worker not Available: $(one_line "$(cat "$work/wait-$ns.err"; kubectl -n "$ns" get pods -o json | jq -c '[.items[].status]')")"
    return 1
  fi
}

# deploy_state NS: the Deployment's generation, image, status counters, and whether it has rolled
# out that image: its generation observed, every replica updated, and the Deployment controller's
# Progressing condition NewReplicaSetAvailable (old pods may still be terminating).
deploy_state() {
  kubectl -n "$1" get deploy worker -o json | jq -c '{generation: .metadata.generation,
    image: .spec.template.spec.containers[0].image,
    status: (.status | {observedGeneration, replicas, updatedReplicas, readyReplicas, availableReplicas, terminatingReplicas}),
    rolledOut: (.status.observedGeneration == .metadata.generation and .status.updatedReplicas == .spec.replicas
      and any(.status.conditions[]?; .type == "Progressing" and .status == "True" and .reason == "NewReplicaSetAvailable"))}'
}

# start_controller NAME [FLAG...]: the host-built controller with the FLAGs (e.g. --namespace=NS).
# Sets controller_pid, controller_log.
start_controller() {
  local name=$1
  shift
  controller_log=$work/controller-$name.log
  "$build/controller/rollgate-controller" --kubeconfig "$KUBECONFIG" --metrics-bind-address=0 \
    --health-probe-bind-address=0 "$@" </dev/null >>"$controller_log" 2>&1 &
  controller_pid=$!
  echo "$controller_pid" >>"$bg_pids"
  echo "controller for $name: pid $controller_pid, ${*:-every namespace}, log $controller_log"
}

# start_watches NS: records every change of the Jobs, the Jobs' pods, the Deployments and the
# rollouts in NS (kubectl watches in the background, into
# $work/{jobs,pods,deployments,containerrollouts}-NS.watch). Call it before create_rollout;
# stop_watches ends them.
start_watches() {
  local ns=$1
  "$CONTROL_PLANE_BIN/kubectl" -n "$ns" get jobs --watch --output-watch-events -o json \
    >"$work/jobs-$ns.watch" 2>"$work/jobs-$ns.watch.err" &
  watch_pids+=($!)
  echo "$!" >>"$bg_pids"
  "$CONTROL_PLANE_BIN/kubectl" -n "$ns" get pods -l batch.kubernetes.io/job-name --watch --output-watch-events -o json \
    >"$work/pods-$ns.watch" 2>"$work/pods-$ns.watch.err" &
  watch_pids+=($!)
  echo "$!" >>"$bg_pids"
  "$CONTROL_PLANE_BIN/kubectl" -n "$ns" get deployments --watch --output-watch-events -o json \
    >"$work/deployments-$ns.watch" 2>"$work/deployments-$ns.watch.err" &
  watch_pids+=($!)
  echo "$!" >>"$bg_pids"
  "$CONTROL_PLANE_BIN/kubectl" -n "$ns" get containerrollouts --watch --output-watch-events -o json \
    >"$work/containerrollouts-$ns.watch" 2>"$work/containerrollouts-$ns.watch.err" &
  watch_pids+=($!)
  echo "$!" >>"$bg_pids"
  sleep 0.5 # the watches' initial lists
}

# watch_events NS KIND: the watch's events, one compact JSON object a line ({type, object}); the
# file is pretty-printed JSON objects one after the other, the last maybe cut short.
watch_events() {
  jq -c -n 'inputs | {type, object}' "$work/$2-$1.watch" 2>/dev/null || true
}

# create_rollout NS CHECKS [TARGET_CHECKS [ENV_EXTRA]]: ContainerRollout `worker` to testapp:2.0;
# CHECKS and TARGET_CHECKS are YAML flow lists ("" for none), ENV_EXTRA extra fields of the
# environment in flow style (e.g. "namespace: x, approval: Manual").
create_rollout() {
  local ns=$1 checks=$2 target_checks=${3:-} extra=${4:-} nl=$'\n    '
  extra=${extra//, /$nl}
  kubectl apply -f - >/dev/null <<EOF
apiVersion: rollgate.io/v1alpha1
kind: ContainerRollout
metadata: {name: $ROLLOUT, namespace: $ns}
spec:
  images: {app: "$ROLLGATE_REGISTRY/testapp:2.0"}
  progressDeadlineSeconds: 120
  environments:
  - name: smoke
    $extra
    ${checks:+smokeChecks: $checks}
    targets:
    - deployment: worker
      containers: {app: app}
      ${target_checks:+smokeChecks: $target_checks}
EOF
}

# watch_rollout NS TIMEOUT [JOB_NS]: polls (every 0.5 s, one kubectl a poll: this runs on small
# machines, next to the other cases) the rollout, the Deployment and the Jobs (in JOB_NS, default
# NS) until the rollout is in a terminal phase. Call it right after create_rollout. Sets: r_json
# (the rollout), r_phase, env (its environment's phase, reason, message and smokeChecks), history
# (rollout phase / environment phase(reason) and the checks' phases as they changed), t_job
# (seconds until a Job was first seen), t_patched (until the Deployment carried testapp:2.0),
# t_end (until terminal); "" when never. The watches (start_watches) see every state; the poll's
# times are as good as its pace.
watch_rollout() {
  local ns=$1 timeout=$2 job_ns=${3:-$1} t0 deadline state last="" all='{"items": []}' patched njobs
  t0=$(now) deadline=$((SECONDS + timeout))
  r_json="" r_phase="" env="" history="" t_job="" t_patched="" t_end=""
  while ((SECONDS < deadline)); do
    if [[ "$job_ns" == "$ns" ]]; then
      all=$(kubectl -n "$ns" get containerrollouts,deployments,jobs -o json 2>>"$work/poll-$ns.err") || all='{"items": []}'
    else
      all=$(jq -s '{items: map(.items[])}' <(kubectl -n "$ns" get containerrollouts -o json 2>>"$work/poll-$ns.err" || echo '{"items": []}') \
        <(kubectl -n "$job_ns" get deployments,jobs -o json 2>>"$work/poll-$job_ns.err" || echo '{"items": []}'))
    fi
    # No field is empty: read would merge the tabs around it.
    IFS=$'\t' read -r r_phase state patched njobs < <(jq -r --arg n "$ROLLOUT" --arg i "$ROLLGATE_REGISTRY/testapp:2.0" '
      (first(.items[] | select(.kind == "ContainerRollout" and .metadata.name == $n)) // {}) as $r
      | ($r.status.environments[0] // {}) as $e
      | [($r.status.phase // "-"),
         "\($r.status.phase // "-")/\($e.phase // "-")\($e.reason // "" | if . == "" then "" else "(\(.))" end)\($e.smokeChecks // [] | map(" \(.name):\(.phase)") | join(""))",
         ([.items[] | select(.kind == "Deployment" and .metadata.name == "worker") | .spec.template.spec.containers[0].image == $i] | any),
         ([.items[] | select(.kind == "Job")] | length)] | @tsv' <<<"$all")
    if [[ "$state" != "$last" ]]; then
      history+="${history:+ -> }$state@$(since "$t0")s"
      last=$state
    fi
    [[ -n "$t_patched" || "$patched" != true ]] || t_patched=$(since "$t0")
    [[ -n "$t_job" || "$njobs" == 0 ]] || t_job=$(since "$t0")
    case $r_phase in
      Succeeded | RolledBack | Failed | Aborted)
        t_end=$(since "$t0")
        break
        ;;
    esac
    sleep 0.5
  done
  r_json=$(jq -c --arg n "$ROLLOUT" 'first(.items[] | select(.kind == "ContainerRollout" and .metadata.name == $n)) // {}' <<<"$all")
  env=$(jq -c '.status.environments[0] // {} | {phase, reason, message, smokeChecks}' <<<"$r_json")
  echo "rollout/environment phases: $history"
}

# job_pod NS: the Job pod's last state seen by the pod watch: name, node, image, command,
# container exit code, reason and termination message, securityContexts, env, labels, probes.
job_pod() {
  watch_events "$1" pods | jq -c -s 'map(.object) | group_by(.metadata.uid) | map(last)
    | map({pod: .metadata.name, uid: .metadata.uid, node: .spec.nodeName, labels: .metadata.labels,
        phase: .status.phase, image: .spec.containers[0].image, command: .spec.containers[0].command,
        args: .spec.containers[0].args, env: .spec.containers[0].env,
        containers: (.spec.containers | length), initContainers: (.spec.initContainers // [] | length),
        ports: .spec.containers[0].ports, readinessProbe: .spec.containers[0].readinessProbe,
        podSecurityContext: .spec.securityContext, securityContext: .spec.containers[0].securityContext,
        terminationMessagePolicy: .spec.containers[0].terminationMessagePolicy,
        exitCode: (.status.containerStatuses[0].state.terminated.exitCode // null),
        reason: (.status.containerStatuses[0].state.terminated.reason // null),
        message: (.status.containerStatuses[0].state.terminated.message // null)})'
}

# jobs_seen NS: every Job the watch saw in NS (by uid, its last state): name, uid, created,
# labels, annotations, spec essentials, conditions, whether it was deleted.
jobs_seen() {
  watch_events "$1" jobs | jq -c -s 'group_by(.object.metadata.uid) | map({deleted: any(.[]; .type == "DELETED")} + (last.object
    | {name: .metadata.name, uid: .metadata.uid, created: .metadata.creationTimestamp, labels: .metadata.labels,
       annotations: .metadata.annotations, backoffLimit: .spec.backoffLimit, activeDeadlineSeconds: .spec.activeDeadlineSeconds,
       ttlSecondsAfterFinished: .spec.ttlSecondsAfterFinished, restartPolicy: .spec.template.spec.restartPolicy,
       startTime: .status.startTime, completionTime: .status.completionTime,
       conditions: [.status.conditions[]? | select(.status == "True") | .type]}))'
}

# check_admitted NS: no event says PodSecurity refused the Job's pod (FailedCreate of the Job).
check_admitted() {
  local ns=$1 refused
  refused=$(kubectl -n "$ns" get events -o json | jq -c '[.items[] | select(.involvedObject.kind == "Job"
    and (.reason == "FailedCreate" or (.message | test("violates PodSecurity"))))
    | {object: .involvedObject.name, reason, message}]')
  if [[ "$refused" == "[]" ]]; then
    pass "$ns: no FailedCreate / violates PodSecurity event of the Job: its pod was admitted under restricted"
  else
    fail "$ns: the Job's pod was refused: $(one_line "$refused")"
  fi
}

# check_event NS REASON: a Warning event of the ContainerRollout with REASON.
check_event() {
  local ns=$1 reason=$2 events
  events=$(kubectl -n "$ns" get events -o json | jq -c --arg r "$reason" '[.items[] | select(.involvedObject.kind == "ContainerRollout" and .reason == $r)
    | {type, reason, message}]')
  if jq -e 'any(.[]; .type == "Warning")' <<<"$events" >/dev/null; then
    pass "$ns: Warning event $reason of the rollout ($(jq 'length' <<<"$events") event(s)): $(one_line "$(jq -r 'first(.[] | select(.type == "Warning")) | .message' <<<"$events")")"
  else
    fail "$ns: no Warning event $reason of the ContainerRollout: $(one_line "$(kubectl -n "$ns" get events -o json | jq -c '[.items[] | select(.involvedObject.kind == "ContainerRollout") | {type, reason}]')")"
  fi
}

# check_unpatched NS BEFORE: the Deployment's generation and image are BEFORE's (deploy_state),
# and the poll never saw it on testapp:2.0.
check_unpatched() {
  local ns=$1 before=$2 after
  after=$(deploy_state "$ns")
  if [[ -z "$t_patched" ]] && jq -e --argjson b "$before" '.generation == $b.generation and .image == $b.image' <<<"$after" >/dev/null; then
    pass "$ns/worker never patched: generation $(jq .generation <<<"$after"), $(jq -r .image <<<"$after" | sed 's,.*/,,')"
  else
    fail "$ns/worker changed: before $before, after $after, seen on testapp:2.0 ${t_patched:-never}s"
  fi
}

# smoke_status: the environment's only smokeChecks entry ({} when none).
smoke_status() { jq -c '.smokeChecks // [] | if length == 1 then .[0] else {entries: .} end' <<<"$env"; }

# check_after_healthy NS: the AfterHealthy check's Job was created after the Deployment had rolled
# out testapp:2.0, by the watches' resourceVersions: the Job's ADDED event is a later write than
# the first Deployment event at generation 2 that the controller's own rule calls rolled out
# (observedGeneration, updatedReplicas == replicas == availableReplicas == spec.replicas), and the
# rollout's last write before it has the environment Verifying. The API server's
# resourceVersions are one etcd's revision, increasing across kinds: a test may compare them, a
# client must not rely on it.
check_after_healthy() {
  local ns=$1 rolled job phase
  rolled=$(watch_events "$ns" deployments | jq -c -s --arg i "$ROLLGATE_REGISTRY/testapp:2.0" 'map(.object | select(.metadata.generation >= 2
      and .spec.template.spec.containers[0].image == $i and .status.observedGeneration >= .metadata.generation
      and .status.updatedReplicas == .spec.replicas and .status.replicas == .spec.replicas and .status.availableReplicas == .spec.replicas))
    | first // empty | {rv: .metadata.resourceVersion, status: (.status | {replicas, updatedReplicas, availableReplicas}),
      progressing: first(.status.conditions[]? | select(.type == "Progressing") | "\(.reason) \(.lastUpdateTime)")}')
  job=$(watch_events "$ns" jobs | jq -c -s 'map(select(.type == "ADDED") | .object) | first // empty
    | {name: .metadata.name, rv: .metadata.resourceVersion, created: .metadata.creationTimestamp}')
  phase=$(watch_events "$ns" containerrollouts | jq -r -s --arg rv "$(jq -r '.rv // 0' <<<"${job:-null}")" 'map(.object
    | select((.metadata.resourceVersion | tonumber) < ($rv | tonumber))) | last // {} | .status.environments[0].phase // "none"')
  echo "Deployment rolled out (first such event): ${rolled:-never}; Job created: ${job:-never}; the environment's phase just before: $phase"
  if [[ -n "$rolled" && -n "$job" ]] && (($(jq -r .rv <<<"$rolled") < $(jq -r .rv <<<"$job"))) && [[ "$phase" == Verifying ]]; then
    pass "the AfterHealthy Job was created after the Deployment had rolled out testapp:2.0 (resourceVersion $(jq -r .rv <<<"$rolled") < $(jq -r .rv <<<"$job")), the environment Verifying"
  else
    fail "AfterHealthy order: Deployment rolled out ${rolled:-never}, Job ${job:-never}, environment $phase before the Job"
  fi
}

# check_before_patch NS: the BeforePatch check's Job was created and had completed before the
# Deployment was patched: its ADDED event, and its Complete condition, are earlier writes than the
# first Deployment event at testapp:2.0 (resourceVersions, as in check_after_healthy).
check_before_patch() {
  local ns=$1 patched job
  patched=$(watch_events "$ns" deployments | jq -c -s --arg i "$ROLLGATE_REGISTRY/testapp:2.0" 'map(.object
    | select(.spec.template.spec.containers[0].image == $i)) | first // empty | {rv: .metadata.resourceVersion, generation: .metadata.generation}')
  job=$(watch_events "$ns" jobs | jq -c -s '{name: (first(.[] | select(.type == "ADDED")) | .object.metadata.name),
    created: (first(.[] | select(.type == "ADDED")) | .object.metadata.resourceVersion),
    complete: (first(.[] | select(any(.object.status.conditions[]?; .type == "Complete" and .status == "True"))) | .object.metadata.resourceVersion)}')
  echo "Job (resourceVersions): $job; Deployment patched: ${patched:-never}"
  if [[ -n "$patched" ]] && jq -e --argjson p "$(jq .rv <<<"$patched")" '.created != null and .complete != null
      and (.created | tonumber) < ($p | tonumber) and (.complete | tonumber) < ($p | tonumber)' <<<"$job" >/dev/null; then
    pass "the Job was created and completed before the Deployment was patched (resourceVersions $(jq -r .created <<<"$job") < $(jq -r .complete <<<"$job") < $(jq -r .rv <<<"$patched"))"
  else
    fail "BeforePatch order: Job $job, Deployment patched ${patched:-never}"
  fi
}

# print_duration: prints the check's duration from status (startedAt to finishedAt) and from its
# Job (startTime to completionTime or its last condition).
print_duration() {
  local s started finished
  s=$(smoke_status)
  started=$(epoch "$(jq -r '.startedAt // ""' <<<"$s")") finished=$(epoch "$(jq -r '.finishedAt // ""' <<<"$s")")
  echo "check $(jq -r .name <<<"$s"): status startedAt $(jq -r .startedAt <<<"$s") finishedAt $(jq -r .finishedAt <<<"$s")" \
    "(${started:+${finished:+$((finished - started))s}})"
}

# case_begin NAME NS...: namespaces with their Deployments; a controller for NS (the first).
# Sets before (the Deployment's deploy_state).
case_begin() {
  local name=$1 ns=$2
  new_namespace "$ns"
  worker "$ns" 1.0 || return 1
  before=$(deploy_state "$ns")
  start_controller "$name" --namespace="$ns"
  start_watches "$ns"
}

# --- case passes: BeforePatch exit 0 -> Succeeded; the Job ran as the template says --------------
case_passes() {
  local ns=rg-smoke-passes before s jobs pod t0
  case_begin passes "$ns" || return 0
  t0=$(now)
  create_rollout "$ns" "[{name: check-ok, image: app, command: [$APP, --mode, check, --exit, \"0\"]}]"
  watch_rollout "$ns" 120
  sleep 1 # the watches' last events
  stop_watches
  s=$(smoke_status)
  if [[ "$r_phase" == Succeeded ]] && jq -e '.name == "check-ok" and .phase == "Passed" and .exitCode == 0 and .target == "worker"
      and (.job | startswith("worker-check-ok-")) and .startedAt != null and .finishedAt != null' <<<"$s" >/dev/null; then
    pass "rollout Succeeded; status smokeChecks: $(one_line "$s")"
  else
    fail "want Succeeded with check-ok Passed exitCode 0, got ${r_phase:-none}, environment $(one_line "$env")"
  fi
  print_duration
  # The Job: created once, before the patch, as the template says; deleted after the pass.
  jobs=$(jobs_seen "$ns")
  echo "jobs seen: $(one_line "$jobs")"
  if jq -e --arg ns "$ns" --arg job "$(jq -r .job <<<"$s")" 'length == 1 and (.[0] | .name == $job and (.name | test("^worker-check-ok-[0-9a-f]{10}$"))
      and .labels["rollgate.io/smoke-check"] == "check-ok" and .labels["rollgate.io/rollout"] == "worker"
      and .labels["rollgate.io/environment"] == "smoke" and (.labels["rollgate.io/revision"] // "" | length > 0)
      and .annotations["rollgate.io/owner"] == "\($ns)/worker" and (.annotations["rollgate.io/rollout-uid"] // "" | length > 0)
      and .backoffLimit == 0 and .activeDeadlineSeconds == 300 and .ttlSecondsAfterFinished == 3600
      and .restartPolicy == "Never" and (.conditions | index("Complete")) != null)' <<<"$jobs" >/dev/null; then
    pass "one Job $(jq -r '.[0].name' <<<"$jobs"): labels, owner annotations, backoffLimit 0, activeDeadlineSeconds 300, ttl 3600, restartPolicy Never, Complete"
  else
    fail "the Job: want one, named in status, with Rollgate's labels and settings: $(one_line "$jobs")"
  fi
  check_before_patch "$ns"
  if ! kubectl -n "$ns" get jobs -o name | grep -q . && jq -e 'all(.[]; .deleted)' <<<"$jobs" >/dev/null; then
    pass "the passed check's Job was deleted"
  else
    fail "the passed check's Job is still there: $(one_line "$(kubectl -n "$ns" get jobs -o name)")"
  fi
  # Its pod goes with it (a Job deleted without propagationPolicy orphans its pods).
  local left deadline=$((SECONDS + 15))
  while left=$(kubectl -n "$ns" get pods -l batch.kubernetes.io/job-name -o name 2>/dev/null) && [[ -n "$left" ]] && ((SECONDS < deadline)); do
    sleep 0.5
  done
  if [[ -z "$left" ]]; then
    pass "the Job's pod was deleted with it"
  else
    fail "the deleted Job's pod is left behind (orphaned?): $(one_line "$left")"
  fi
  pod=$(job_pod "$ns")
  echo "job pod: $(one_line "$pod")"
  if jq -e --arg i "$ROLLGATE_REGISTRY/testapp:2.0" --arg n "$NODE" --arg app "$APP" 'length == 1 and (.[0] | .node == $n and .image == $i
      and .command == [$app, "--mode", "check", "--exit", "0"] and .args == null and .exitCode == 0 and .phase == "Succeeded"
      and .containers == 1 and .initContainers == 0 and .ports == null and .readinessProbe == null
      and (.labels.app // null) == null and .terminationMessagePolicy == "FallbackToLogsOnError"
      and any(.env[]?; .name == "SMOKE_FROM_TEMPLATE" and .value == "yes")
      and .podSecurityContext.runAsNonRoot and .podSecurityContext.runAsUser == 65532 and .podSecurityContext.seccompProfile.type == "RuntimeDefault"
      and .securityContext.allowPrivilegeEscalation == false and .securityContext.readOnlyRootFilesystem and .securityContext.capabilities.drop == ["ALL"])' \
    <<<"$pod" >/dev/null; then
    pass "the check ran once, testapp:2.0 on $NODE, exit 0, with the template's securityContext and env, without its ports, probe and app label"
  else
    fail "the Job's pod: $(one_line "$pod")"
  fi
  check_admitted "$ns"
  echo "timings (passes): Job seen ${t_job:-never}s after the rollout was created, Deployment patched ${t_patched:-never}s, Succeeded ${t_end:-never}s; case $(since "$t0")s"
}

# --- case fails: BeforePatch exit 3 -> Failed SmokeCheckFailed, nothing patched, the Job kept ----
case_fails() {
  local ns=rg-smoke-fails before s msg job kept t0
  case_begin fails "$ns" || return 0
  t0=$(now)
  create_rollout "$ns" "" "[{name: check-bad, image: app, command: [$APP, --mode, check, --exit, \"3\"]}]"
  watch_rollout "$ns" 120
  sleep 1
  stop_watches
  s=$(smoke_status)
  msg=$(jq -r '.message // ""' <<<"$env")
  job=$(jq -r '.job // ""' <<<"$s")
  echo "environment message: $msg"
  if [[ "$r_phase" == Failed ]] && jq -e '.phase == "Failed" and .reason == "SmokeCheckFailed"' <<<"$env" >/dev/null &&
    [[ "$msg" == *"smoke check check-bad (job $ns/$job, image \"$ROLLGATE_REGISTRY/testapp:2.0\") failed with exit code 3"* &&
      "$msg" == *"smoke: testapp 2.0: FAILED: exiting with status 3"* ]]; then
    pass "rollout Failed, environment SmokeCheckFailed, the message names the Job, the image, exit code 3 and carries testapp's FAILED line"
  else
    fail "want Failed/SmokeCheckFailed with exit code 3 and the FAILED line, got ${r_phase:-none}, environment $(one_line "$env")"
  fi
  if jq -e '.name == "check-bad" and .phase == "Failed" and .exitCode == 3 and .finishedAt != null
      and (.message | contains("FAILED"))' <<<"$s" >/dev/null; then
    pass "status smokeChecks: check-bad Failed, exitCode 3"
  else
    fail "status smokeChecks: $(one_line "$s")"
  fi
  print_duration
  check_unpatched "$ns" "$before"
  kept=$(kubectl -n "$ns" get job "$job" -o json 2>/dev/null | jq -c '{name: .metadata.name, failed: .status.failed,
    conditions: [.status.conditions[]? | select(.status == "True") | {type, reason}]}' || true)
  if [[ -n "$job" ]] && jq -e '.failed == 1 and any(.conditions[]; .type == "Failed")' <<<"${kept:-null}" >/dev/null 2>&1; then
    pass "the failed Job is kept for debugging: $(one_line "$kept")"
  else
    fail "the failed Job $ns/${job:-?}: ${kept:-gone}"
  fi
  local jobs
  jobs=$(jobs_seen "$ns")
  if jq -e 'length == 1' <<<"$jobs" >/dev/null && jq -e 'length == 1 and .[0].exitCode == 3' <<<"$(job_pod "$ns")" >/dev/null; then
    pass "one Job, one pod (backoffLimit 0), exit code 3"
  else
    fail "Jobs seen $(one_line "$jobs"); pods $(one_line "$(job_pod "$ns")")"
  fi
  check_admitted "$ns"
  check_event "$ns" SmokeCheckFailed
  echo "timings (fails): Job seen ${t_job:-never}s after the rollout was created, Failed ${t_end:-never}s; case $(since "$t0")s"
}

# --- case timeout: a check that never ends, timeoutSeconds 5 -> TimedOut ---------------------------
case_timeout() {
  local ns=rg-smoke-timeout before s msg jobs t0
  case_begin timeout "$ns" || return 0
  t0=$(now)
  create_rollout "$ns" "[{name: check-hangs, image: app, command: [$APP, --mode, sleep], timeoutSeconds: 5}]"
  watch_rollout "$ns" 120
  sleep 1
  stop_watches
  s=$(smoke_status)
  msg=$(jq -r '.message // ""' <<<"$env")
  echo "environment message: $msg"
  if [[ "$r_phase" == Failed && "$msg" == *"smoke check check-hangs"*"timed out after 5s"* ]] &&
    jq -e '.phase == "Failed" and .reason == "SmokeCheckFailed"' <<<"$env" >/dev/null; then
    pass "rollout Failed, environment SmokeCheckFailed: timed out after 5s"
  else
    fail "want Failed/SmokeCheckFailed \"timed out after 5s\", got ${r_phase:-none}, environment $(one_line "$env")"
  fi
  if jq -e '.name == "check-hangs" and .phase == "TimedOut"' <<<"$s" >/dev/null; then
    pass "status smokeChecks: check-hangs TimedOut"
  else
    fail "status smokeChecks: $(one_line "$s")"
  fi
  print_duration
  jobs=$(jobs_seen "$ns")
  echo "jobs seen: $(one_line "$jobs")"
  if jq -e 'length == 1 and .[0].activeDeadlineSeconds == 5 and (.[0].conditions | index("Failed")) != null' <<<"$jobs" >/dev/null; then
    pass "one Job, activeDeadlineSeconds 5, Failed (DeadlineExceeded), started $(jq -r '.[0].startTime' <<<"$jobs")"
  else
    fail "the Job: $(one_line "$jobs")"
  fi
  check_unpatched "$ns" "$before"
  check_event "$ns" SmokeCheckFailed
  echo "timings (timeout): Job seen ${t_job:-never}s after the rollout was created, Failed ${t_end:-never}s ($(awk -v a="${t_job:-0}" -v b="${t_end:-0}" 'BEGIN { printf "%.1f", b - a }')s after the Job); case $(since "$t0")s"
}

# --- case sigkill: the controller killed while the check runs; the new one adopts the Job --------
case_sigkill() {
  local ns=rg-smoke-sigkill before s jobs pods t0 t_kill="" recorded deadline killed_pid
  case_begin sigkill "$ns" || return 0
  t0=$(now)
  create_rollout "$ns" "" "[{name: check-slow, image: app, command: [$APP, --mode, check, --exit, \"0\", --sleep, \"10\"]}]"
  # As soon as the Job watch sees the Job (maybe before the controller has recorded it in status).
  deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    if grep -q '"ADDED"' "$work/jobs-$ns.watch" 2>/dev/null; then
      killed_pid=$controller_pid
      kill -KILL "$controller_pid"
      wait "$controller_pid" 2>/dev/null || true
      controller_pid=""
      t_kill=$(since "$t0")
      break
    fi
    sleep 0.05
  done
  if [[ -z "$t_kill" ]]; then
    fail "no Job within 60 s"
    return 0
  fi
  recorded=$(kubectl -n "$ns" get crol "$ROLLOUT" -o json | jq -c '.status.environments[0].smokeChecks // []')
  if [[ "$recorded" == "[]" ]]; then
    recorded="before the status recorded the check (the new controller finds the Job by its name alone)"
  else
    recorded="after the status recorded the check: $(one_line "$recorded")"
  fi
  pass "controller (pid $killed_pid) SIGKILLed ${t_kill}s after the rollout was created, its Job present, $recorded"
  sleep 1
  start_controller sigkill-2 --namespace="$ns"
  watch_rollout "$ns" 120
  sleep 1
  stop_watches
  s=$(smoke_status)
  if [[ "$r_phase" == Succeeded ]] && jq -e '.name == "check-slow" and .phase == "Passed" and .exitCode == 0' <<<"$s" >/dev/null; then
    pass "after the restart the rollout Succeeded; status smokeChecks: $(one_line "$s")"
  else
    fail "want Succeeded with check-slow Passed, got ${r_phase:-none}, environment $(one_line "$env")"
  fi
  print_duration
  jobs=$(jobs_seen "$ns")
  pods=$(job_pod "$ns")
  echo "jobs seen: $(one_line "$jobs")"
  if jq -e --arg job "$(jq -r .job <<<"$s")" 'length == 1 and .[0].name == $job and .[0].deleted' <<<"$jobs" >/dev/null &&
    jq -e 'length == 1 and .[0].exitCode == 0' <<<"$pods" >/dev/null; then
    pass "exactly one Job was ever created (uid $(jq -r '.[0].uid' <<<"$jobs")), one pod ran (exit 0): the new controller adopted it, then deleted it after the pass"
  else
    fail "want one Job and one pod across the restart: jobs $(one_line "$jobs"), pods $(one_line "$pods")"
  fi
  check_before_patch "$ns"
  local created lines
  created=$(cat "$work/controller-sigkill.log" "$work/controller-sigkill-2.log" | grep -c 'created a smoke-check job' || true)
  lines=$(grep -E 'smoke[- ]check|job=' "$work/controller-sigkill-2.log" | sed 's/^[^ ]* //' | cut -c1-200 || true)
  if ((created == 1)) && ! grep -q 'created a smoke-check job' "$work/controller-sigkill-2.log"; then
    pass "only the killed controller logged \"created a smoke-check job\"; the new one's lines about it: $(one_line "${lines:-none}")"
  else
    fail "\"created a smoke-check job\" logged $created time(s): $(one_line "$(grep -h 'created a smoke-check job' "$work"/controller-sigkill*.log)")"
  fi
  echo "timings (sigkill): killed ${t_kill}s after the rollout was created, Succeeded ${t_end:-never}s after the restart; case $(since "$t0")s"
}

# --- case optin: the opt-in withdrawn while awaiting approval -> NamespaceNotPermitted, no Job ----
case_optin() {
  local a=rg-smoke-optin-a b=rg-smoke-optin-b before deadline phase="" out t0 jobs
  new_namespace "$a"
  new_namespace "$b" "rollgate.io/allow-rollouts-from=$a"
  worker "$b" 1.0 || return 0
  before=$(deploy_state "$b")
  # Targets in another namespace: a controller for every namespace.
  start_controller optin
  start_watches "$b"
  t0=$(now)
  create_rollout "$a" "[{name: check-ok, image: app, command: [$APP, --mode, check, --exit, \"0\"]}]" "" "namespace: $b, approval: Manual"
  deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    phase=$(kubectl -n "$a" get crol "$ROLLOUT" -o json 2>/dev/null | jq -r '"\(.status.phase // "-")/\(.status.environments[0].phase // "-")"' || true)
    [[ "$phase" == AwaitingApproval/AwaitingApproval ]] && break
    sleep 0.3
  done
  if [[ "$phase" == AwaitingApproval/AwaitingApproval ]]; then
    pass "rollout $a/$ROLLOUT awaits approval of environment smoke (namespace $b) after $(since "$t0")s"
  else
    fail "want AwaitingApproval, got ${phase:-nothing} after 60 s"
    return 0
  fi
  kubectl label namespace "$b" rollgate.io/allow-rollouts-from- >/dev/null
  sleep 1 # the controller's namespace watch; the fresh read before the Job catches it regardless
  if out=$("$build/controller/rollgate" --kubeconfig "$KUBECONFIG" --namespace "$a" promote "$ROLLOUT" 2>&1); then
    pass "opt-in label removed from $b, then \`rollgate promote\`: $(one_line "$out")"
  else
    fail "rollgate promote: $(one_line "$out")"
  fi
  watch_rollout "$a" 60 "$b"
  sleep 1
  stop_watches
  echo "environment: $(one_line "$env")"
  if [[ "$r_phase" == Failed ]] && jq -e '.phase == "Failed" and .reason == "NamespaceNotPermitted"' <<<"$env" >/dev/null; then
    pass "rollout Failed, environment NamespaceNotPermitted: $(one_line "$(jq -r .message <<<"$env")")"
  else
    fail "want Failed/NamespaceNotPermitted, got ${r_phase:-none}, environment $(one_line "$env")"
  fi
  jobs=$(jobs_seen "$b")
  if [[ -z "$t_job" ]] && jq -e 'length == 0' <<<"$jobs" >/dev/null && ! kubectl -n "$b" get jobs -o name | grep -q .; then
    pass "no Job was ever created in $b (its Job watch saw none)"
  else
    fail "Jobs in $b: $(one_line "$jobs")"
  fi
  check_unpatched "$b" "$before"
  echo "timings (optin): NamespaceNotPermitted ${t_end:-never}s after the promote; case $(since "$t0")s"
}

# --- case after_healthy_passes: AfterHealthy exit 0 -> after the rollout of the Deployment --------
case_after_healthy_passes() {
  local ns=rg-smoke-after-ok before s jobs t0
  case_begin after_healthy_passes "$ns" || return 0
  t0=$(now)
  create_rollout "$ns" "[{name: check-after, image: app, command: [$APP, --mode, check, --exit, \"0\"], when: AfterHealthy}]"
  watch_rollout "$ns" 120
  sleep 1
  stop_watches
  s=$(smoke_status)
  if [[ "$r_phase" == Succeeded ]] && jq -e '.name == "check-after" and .phase == "Passed" and .exitCode == 0' <<<"$s" >/dev/null; then
    pass "rollout Succeeded; status smokeChecks: $(one_line "$s")"
  else
    fail "want Succeeded with check-after Passed, got ${r_phase:-none}, environment $(one_line "$env")"
  fi
  print_duration
  check_after_healthy "$ns"
  jobs=$(jobs_seen "$ns")
  if jq -e 'length == 1 and .[0].deleted' <<<"$jobs" >/dev/null; then
    pass "one Job, deleted after the pass"
  else
    fail "Jobs seen: $(one_line "$jobs")"
  fi
  check_admitted "$ns"
  echo "timings (after_healthy_passes): Deployment patched ${t_patched:-never}s after the rollout was created, Job seen ${t_job:-never}s, Succeeded ${t_end:-never}s; case $(since "$t0")s"
}

# --- case after_healthy_fails: AfterHealthy exit 4 -> rolled back to testapp:1.0 -----------------
case_after_healthy_fails() {
  local ns=rg-smoke-after-bad before s msg pods deadline t0
  case_begin after_healthy_fails "$ns" || return 0
  t0=$(now)
  create_rollout "$ns" "" "[{name: check-after, image: app, command: [$APP, --mode, check, --exit, \"4\"], when: AfterHealthy}]"
  watch_rollout "$ns" 150
  sleep 1
  stop_watches
  s=$(smoke_status)
  msg=$(jq -r '.message // ""' <<<"$env")
  echo "environment message: $msg"
  if [[ "$r_phase" == RolledBack && "$msg" == *"failed with exit code 4"* && "$msg" == *"smoke: testapp 2.0: FAILED"* ]] &&
    jq -e '(.phase == "Failed" or .phase == "RolledBack") and .reason == "SmokeCheckFailed"' <<<"$env" >/dev/null &&
    jq -e '.phase == "Failed" and .exitCode == 4' <<<"$s" >/dev/null; then
    pass "rollout RolledBack after SmokeCheckFailed (exit code 4, testapp's FAILED line); status smokeChecks Failed exitCode 4"
  else
    fail "want RolledBack after SmokeCheckFailed exit code 4, got ${r_phase:-none}, environment $(one_line "$env")"
  fi
  check_after_healthy "$ns"
  if kubectl -n "$ns" rollout status deploy/worker --timeout=60s >/dev/null 2>"$work/wait-$ns.err"; then
    deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
      pods=$(kubectl -n "$ns" get pods -l app=worker -o json | jq -c '[.items[] | select(.metadata.deletionTimestamp == null)
        | {image: .spec.containers[0].image, ready: (.status.containerStatuses[0].ready // false), node: .spec.nodeName}]')
      jq -e 'length == 1' <<<"$pods" >/dev/null && break
      sleep 0.5
    done
    if jq -e --arg i "$ROLLGATE_REGISTRY/testapp:1.0" --arg n "$NODE" 'length == 1 and .[0].image == $i and .[0].ready and .[0].node == $n' <<<"$pods" >/dev/null &&
      [[ "$(deploy_state "$ns" | jq -r .image)" == "$ROLLGATE_REGISTRY/testapp:1.0" ]]; then
      pass "rolled back: the Deployment on testapp:1.0, one Ready pod on $NODE"
    else
      fail "pods after the rollback: $pods; Deployment $(deploy_state "$ns")"
    fi
  else
    fail "rollback did not complete: $(one_line "$(cat "$work/wait-$ns.err")")"
  fi
  check_event "$ns" SmokeCheckFailed
  echo "timings (after_healthy_fails): patched ${t_patched:-never}s, Job seen ${t_job:-never}s, RolledBack ${t_end:-never}s; case $(since "$t0")s"
}

# run_case NAME: the case in a subshell, its output into $work/case-NAME.out; on a failure the end
# of its controller logs. Its FAIL lines are counted by report_case.
run_case() {
  local name=$1
  (
    # kubectl's discovery cache of its own: the cases' kubectls run at once.
    export KUBECACHEDIR=$work/kube-cache-$name
    # shellcheck disable=SC2030 # the case's own count; report_case counts its FAIL lines
    failures=0
    controller_pid="" watch_pids=()
    trap 'stop_watches; stop_controller' EXIT
    "case_$name"
    stop_watches
    stop_controller
    if ((failures)); then
      local log
      for log in "$work"/controller-"$name"*.log; do
        [[ -f "$log" ]] || continue
        echo "--- last 30 lines of $(basename "$log") ---"
        tail -n 30 "$log" || true
      done
    fi
  ) >"$work/case-$name.out" 2>&1
}
# report_case NAME STATUS: prints the case's output and counts its failures.
report_case() {
  local name=$1 status=$2 n
  echo "=== case $name ==="
  cat "$work/case-$name.out"
  n=$(grep -c '^FAIL: ' "$work/case-$name.out" || true)
  # shellcheck disable=SC2031 # the cases' subshells counted their own
  failures=$((failures + n))
  if ((status != 0)); then
    fail "case $name ended with status $status"
  fi
}

# --- main -----------------------------------------------------------------------------------------
cluster_up
t_cases=$(now)
# optin first, alone: its controller watches every namespace.
if [[ " ${cases[*]} " == *" optin "* ]]; then
  status=0
  run_case optin || status=$?
  report_case optin "$status"
fi
# The others at once, each with its own controller scoped to its namespace.
declare -A pids=()
for c in "${cases[@]}"; do
  [[ "$c" == optin ]] && continue
  run_case "$c" &
  pids[$c]=$!
done
((${#pids[@]} == 0)) || echo "running at once: ${!pids[*]}"
for c in "${cases[@]}"; do
  [[ "$c" == optin ]] && continue
  status=0
  wait "${pids[$c]}" || status=$?
  report_case "$c" "$status"
done
echo "cases: $(since "$t_cases")s"
finish
