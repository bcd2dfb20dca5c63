#!/usr/bin/env bash
# `make demo`: Rollgate end to end on a throwaway local control plane.
#
#   hack/demo.sh [--real | --multicluster] BUILD_DIR   (BUILD_DIR holds controller/rollgate-controller;
#                               `make demo` passes $(BUILD) after building it and the control plane's binaries)
#
# --real (`make demo-real`; root): the same on a real node (hack/real-node.sh): the cluster starts
# with --real-node, the node rollgate-real-0 advertises DEMO_GPUS nvidia.com/gpu (it has none; its
# status patched, hack/lib/node-gpus.sh, and kept by the kubelet's next status post, checked), the
# test application images (hack/test-app-images.sh) are pushed to the node's registry, the target
# namespaces enforce the restricted Pod Security Standard, and the split-image application's
# Deployments (hack/demo/deployments-real.yaml: api and a CPU worker in dev, api and a GPU worker
# in staging and production) run real testapp:1.0 containers on rollgate-real-0, which the rollout
# (hack/demo/rollout-real.yaml: dev -> staging -> production) swaps for testapp:2.0 under three
# logical images (backend, worker-cpu, worker-gpu), with smoke checks: Jobs of the new image built
# from the targets' pod templates, the GPU worker's requesting a GPU. The live tree shows the
# checks while they run; the summary adds one line per check (phase, exit code, duration, the node
# its pod ran on and its log's last line, both caught by a watch of the checks' pods while they
# live) and each pod's node and image digest. The controller runs on the host, as in the plain
# demo.
#
# --multicluster (`make demo-multicluster`): the same rollout with production in another cluster
# (issue 17). A second local control plane, the target, starts in its own directory next to the
# hub's; it is set up only with the chart's target mode (`helm install --skip-crds --set
# mode=target`: ServiceAccount rollgate-target and its RBAC), its namespace app-prod carries the
# opt-in label rollgate.io/allow-rollouts-from=app, and it holds production's Deployments (api,
# worker-gpu from hack/demo/deployments.yaml); the hub keeps dev, staging and the canary. The hub's
# Secret `production` is made with `rollgate cluster kubeconfig --secret production` against the
# target and applied in the rollout's namespace; the rollout (hack/demo/rollout-multicluster.yaml)
# names it in production's `cluster: {secretRef: {name: production}}`; production's GPU worker is
# validated in the target (workerValidation), as in the plain demo. The summary reads
# production's Deployments with the target's kubeconfig and shows the target recorded in the
# rollout's status (cluster, namespace). Both control planes are stopped on exit.
#
# 1. starts a local control plane (hack/cluster.sh) in a temporary directory;
# 2. installs the ContainerRollout CRD (crds/);
# 3. creates the namespaces and the split-image application's Deployments at 1.9.0
#    (hack/demo/namespaces.yaml, hack/demo/deployments.yaml) and waits until they are available;
# 4. applies the ContainerRollout to 2.0.0 (hack/demo/rollout.yaml): dev -> staging -> canary ->
#    production, production with manual approval;
# 5. runs the controller in the background (its log in the temporary directory);
# 6. shows the rollout live with the CLI as a kubectl plugin: `kubectl rollgate -n app get
#    split-images-v2 --watch --until-done` (PATH gets BUILD_DIR/controller, where the build links
#    kubectl-rollgate to rollgate): the tree of environments, Deployments' replicas, smoke checks
#    and what the rollout waits for, redrawn in place on a terminal, appended when piped; meanwhile
#    the script promotes production (`rollgate promote`: the rollgate.io/promote annotation)
#    APPROVE_AFTER_S (3) seconds after it starts awaiting approval, silently so as not to disturb
#    the redraw, and reports it when the watch has ended;
# 7. ends at a terminal phase (the watch's --until-done) or after ROLLGATE_DEMO_TIMEOUT seconds
#    (default 300; the watch is stopped) with a summary:
#    per environment its phase, duration and images before/after, the smoke checks (if any), the
#    rollout's Events, the total time. Exit status 0 only when the rollout Succeeded; otherwise the
#    controller log's tail too.
#
# The control plane and the controller are always stopped on exit, Ctrl-C included. The temporary
# directory is removed after a success and kept (controller log) after a failure.
# Environment: ROLLGATE_DEMO_TIMEOUT (seconds), ROLLGATE_DEMO_KEEP=1 (keep the temporary directory).
# Colours only when stdout is a terminal (and NO_COLOR is unset).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=control-plane-versions.sh
source "$here/control-plane-versions.sh"
# shellcheck source-path=SCRIPTDIR source=lib/node-gpus.sh
source "$here/lib/node-gpus.sh"

readonly DEMO_DIR=$here/demo
readonly ROLLOUT_NS=app ROLLOUT_NAME=split-images-v2
readonly TARGET_NAMESPACES=(app-dev app-staging app-prod)
readonly TIMEOUT_S=${ROLLGATE_DEMO_TIMEOUT:-300}
readonly APPROVE_AFTER_S=3 # how long the watch shows production awaiting approval
readonly REAL_NODE=rollgate-real-0 DEMO_GPUS=4 # --real: the GPUs the real node advertises

if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then
  BOLD=$'\e[1m' RED=$'\e[31m' GREEN=$'\e[32m' YELLOW=$'\e[33m' RESET=$'\e[0m'
else
  BOLD="" RED="" GREEN="" YELLOW="" RESET=""
fi

step() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$RESET"; }
info() { printf '    %s\n' "$*"; }
warn() { printf '%s!!! %s%s\n' "$YELLOW" "$*" "$RESET"; }
die() {
  printf '%sdemo: error: %s%s\n' "$RED" "$*" "$RESET" >&2
  exit 1
}
indent() { sed 's/^/    /'; }

# Microseconds since the epoch (bash 5's EPOCHREALTIME, locale-proof).
now_us() {
  local t=${EPOCHREALTIME/[^0-9]/}
  echo "$((10#$t))"
}
# secs_since START_US: "12.3"
secs_since() {
  local d=$(($(now_us) - $1))
  printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000))
}

real=0 multi=0
case ${1:-} in
  --real) real=1 && shift ;;
  --multicluster) multi=1 && shift ;;
esac
[[ $# -eq 1 ]] || {
  sed -n '4,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
if ((real)); then
  [[ $EUID -eq 0 ]] || die "--real needs root (containerd, runc and the kubelet of the real node)"
fi
build_dir=$(cd "$1" 2>/dev/null && pwd) || die "no such build directory: $1"
controller_bin=$build_dir/controller/rollgate-controller
cli_bin=$build_dir/controller/rollgate
[[ -x "$controller_bin" ]] || die "$controller_bin is missing; build it first (make build)"
[[ -x "$cli_bin" ]] || die "$cli_bin is missing; build it first (make build)"
[[ -x "$build_dir/controller/kubectl-rollgate" ]] ||
  die "$build_dir/controller/kubectl-rollgate (the kubectl plugin, a link the build makes) is missing; build rollgate first"
for tool in python3 sed; do command -v "$tool" >/dev/null || die "$tool is required"; done
[[ "$TIMEOUT_S" =~ ^[0-9]+$ ]] || die "ROLLGATE_DEMO_TIMEOUT must be a number of seconds"

demo_t0=$(now_us)
work=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-demo.XXXXXX")
cluster_dir=$work/cluster
controller_log=$work/controller.log
state=$work/state.json
controller_pid="" smoke_watch_pid="" watch_pid=""
smoke_pods=$work/smoke-pods.txt smoke_logs=$work/smoke-logs
keep_work=${ROLLGATE_DEMO_KEEP:-0}
rollout_file=$DEMO_DIR/rollout.yaml deployments_file=$DEMO_DIR/deployments.yaml
# --multicluster: the target cluster, in its own directory; production's Deployments there.
readonly REMOTE_CLUSTER=production REMOTE_NAMESPACE=app-prod REMOTE_DEPLOYMENTS=(api worker-gpu)
readonly TARGET_RELEASE_NS=rollgate-target
target_dir=$work/target-cluster
target_kc=$target_dir/kubeconfig
target_deployments_file=""
if ((multi)); then
  rollout_file=$DEMO_DIR/rollout-multicluster.yaml
  # helm's cache and configuration stay in the temporary directory.
  export HELM_CACHE_HOME=$work/helm/cache HELM_CONFIG_HOME=$work/helm/config HELM_DATA_HOME=$work/helm/data
fi

# --- teardown -----------------------------------------------------------------------------------

stop_controller() {
  [[ -n "$controller_pid" ]] || return 0
  local pid=$controller_pid i
  controller_pid=""
  kill -0 "$pid" 2>/dev/null || {
    wait "$pid" 2>/dev/null || true
    return 0
  }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do # up to 10 s; it promises to stop within 5 s
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "the controller (pid $pid) did not stop 10 s after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  set +e
  step "Tearing down"
  if [[ -n "$watch_pid" ]]; then
    kill -TERM "$watch_pid" 2>/dev/null
    wait "$watch_pid" 2>/dev/null
  fi
  stop_controller
  if [[ -n "$smoke_watch_pid" ]]; then
    kill -TERM "$smoke_watch_pid" 2>/dev/null
    wait "$smoke_watch_pid" 2>/dev/null
  fi
  if [[ -d "$target_dir" ]]; then
    "$here/cluster.sh" down "$target_dir" 2>&1 | indent
  fi
  if [[ -d "$cluster_dir" ]]; then
    "$here/cluster.sh" down "$cluster_dir" 2>&1 | indent
  fi
  if [[ "$keep_work" == 1 || ($rc -ne 0 && -s "$controller_log") ]]; then
    info "kept $work (controller log: $controller_log)"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'printf "\n"; warn "interrupted"; exit 130' INT
trap 'warn "terminated"; exit 143' TERM HUP

# --- 1. control plane ---------------------------------------------------------------------------

if ((multi)); then
  printf '%sRollgate demo across two clusters%s: roll the split-image application from 1.9.0 to 2.0.0, dev, staging and canary in the hub, production in a second cluster\n' \
    "$BOLD" "$RESET"
elif ((real)); then
  printf '%sRollgate demo on a real node%s: roll the split-image application, real testapp containers, from 1.0 to 2.0, environment by environment, smoke checks included\n' \
    "$BOLD" "$RESET"
else
  printf '%sRollgate demo%s: roll the split-image application from 1.9.0 to 2.0.0, environment by environment\n' \
    "$BOLD" "$RESET"
fi
up_args=()
if ((real)); then
  step "Starting a local control plane with a real node (containerd + kubelet: rollgate-real-0)"
  up_args=(--real-node)
elif ((multi)); then
  step "Starting the hub: a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)"
else
  step "Starting a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)"
fi
# cluster_up DIR [ARGS...]: hack/cluster.sh up, its progress (stderr) shown indented, live; its
# stdout, the export lines, in $cluster_env.
cluster_up() {
  local up_rc=0 indent_pid
  exec 4> >(indent >&2)
  indent_pid=$!
  cluster_env=$("$here/cluster.sh" up --dir "$@" 2>&4 4>&-) || up_rc=$?
  exec 4>&-
  wait "$indent_pid" 2>/dev/null || true
  return "$up_rc"
}
cluster_up "$cluster_dir" "${up_args[@]}" || die "the local control plane did not start (see above)"
eval "$cluster_env"
export KUBECONFIG
kubectl_bin=$CONTROL_PLANE_BIN/kubectl
[[ -x "$kubectl_bin" ]] || kubectl_bin=$(command -v kubectl) || die "kubectl not found"
k() { "$kubectl_bin" --kubeconfig "$KUBECONFIG" "$@"; }
info "KUBECONFIG=$KUBECONFIG"
if ((multi)); then
  step "Starting the target: a second local control plane, in its own directory"
  cluster_up "$target_dir" || die "the target control plane did not start (see above)"
  tk() { "$kubectl_bin" --kubeconfig "$target_kc" "$@"; }
  target_server=$(tk config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  info "hub:    $(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')  (KUBECONFIG=$KUBECONFIG)"
  info "target: $target_server  (kubeconfig $target_kc)"
fi
if ((real)); then
  # The node has no GPU: its status advertises some, as a device plugin would, for the GPU worker
  # and its smoke check; the kubelet's next status post must keep them.
  t_patch=$(date +%s)
  node_gpus_advertise k "$REAL_NODE" "$DEMO_GPUS" || die "patching $REAL_NODE's status failed"
  node_gpus_watch k "$REAL_NODE" "$DEMO_GPUS" "$t_patch" 1 0 20 ||
    die "$REAL_NODE's nvidia.com/gpu: $node_gpus_error"
  info "$REAL_NODE advertises $DEMO_GPUS nvidia.com/gpu (its status patched; no real GPU), kept by the kubelet's status post at $node_gpus_posts"
fi
k get nodes -o custom-columns='NODE:.metadata.name,TYPE:.metadata.labels.node\.kubernetes\.io/instance-type,GPUS:.status.allocatable.nvidia\.com/gpu' |
  indent

if ((real)); then
  step "Building the test application images and pushing them to the real node's registry"
  bash "$here/test-app-images.sh" --out "$work/test-images" 2>&1 | indent ||
    die "hack/test-app-images.sh failed (see above)"
  bash "$here/registry.sh" push "$work/test-images" --dir "$cluster_dir/real-node/registry" | indent ||
    die "pushing the test application images to $ROLLGATE_REGISTRY failed"
  # The demo's manifests name the registry REGISTRY: the node's, on a port chosen at start.
  for f in deployments rollout; do
    sed "s|REGISTRY/|$ROLLGATE_REGISTRY/|g" "$DEMO_DIR/$f-real.yaml" >"$work/$f.yaml"
  done
  rollout_file=$work/rollout.yaml deployments_file=$work/deployments.yaml
fi

# --- 2. CRD -------------------------------------------------------------------------------------

step "Installing the ContainerRollout CRD"
k apply --server-side -f "$root/crds/rollgate.io_containerrollouts.yaml" | indent
k wait --for=condition=Established --timeout=60s crd/containerrollouts.rollgate.io | indent

if ((multi)); then
  step "Setting up the target with the chart's target mode (charts/rollgate, mode=target)"
  info "helm install rollgate-target charts/rollgate -n $TARGET_RELEASE_NS --create-namespace --skip-crds --set mode=target"
  "$CONTROL_PLANE_BIN/helm" --kubeconfig "$target_kc" install rollgate-target "$root/charts/rollgate" \
    -n "$TARGET_RELEASE_NS" --create-namespace --skip-crds --set mode=target --hide-notes --wait --timeout 60s 2>&1 |
    indent || die "helm install --set mode=target in the target failed (see above)"
  tk get serviceaccounts,roles,clusterroles,rolebindings,clusterrolebindings -A \
    -l app.kubernetes.io/instance=rollgate-target --no-headers -o name 2>&1 | indent
fi

# --- 3. namespaces and Deployments --------------------------------------------------------------

if ((real)); then
  step "Creating namespaces and the application's Deployments at testapp:1.0 on rollgate-real-0 (hack/demo/)"
else
  step "Creating namespaces and the application's Deployments at 1.9.0 (hack/demo/)"
fi
k apply -f "$DEMO_DIR/namespaces.yaml" | indent
if ((multi)); then
  # Production's Deployments go to the target, the rest stay in the hub: the split of
  # hack/demo/deployments.yaml (kubectl renders it as JSON, client side).
  k create --dry-run=client -o json -f "$DEMO_DIR/deployments.yaml" >"$work/deployments.json"
  python3 - "$work/deployments.json" "$REMOTE_NAMESPACE" "$work/deployments-hub.json" \
    "$work/deployments-target.json" "${REMOTE_DEPLOYMENTS[@]}" <<'PY'
import json, sys

text, pos, items = open(sys.argv[1]).read(), 0, []  # one JSON object per Deployment
while text[pos:].strip():
    doc, end = json.JSONDecoder().raw_decode(text, pos + len(text[pos:]) - len(text[pos:].lstrip()))
    items += doc["items"] if doc.get("kind") == "List" else [doc]
    pos = end
remote = lambda i: (i["metadata"].get("namespace") == sys.argv[2]
                    and i["metadata"]["name"] in sys.argv[5:])
for path, keep in ((sys.argv[3], False), (sys.argv[4], True)):
    json.dump({"apiVersion": "v1", "kind": "List",
               "items": [i for i in items if remote(i) == keep]}, open(path, "w"))
PY
  deployments_file=$work/deployments-hub.json target_deployments_file=$work/deployments-target.json
  info "in the target: namespace $REMOTE_NAMESPACE, opted in to rollouts from the hub's namespace $ROLLOUT_NS"
  tk create namespace "$REMOTE_NAMESPACE" | indent
  tk label namespace "$REMOTE_NAMESPACE" "rollgate.io/allow-rollouts-from=$ROLLOUT_NS" | indent
  tk apply -f "$target_deployments_file" | sed 's/^/(target) /' | indent
fi
if ((real)); then
  # Real pods, and the smoke checks' Jobs built from their templates, under the restricted
  # Pod Security Standard (hack/demo/deployments-real.yaml is compliant).
  k label --overwrite namespace "${TARGET_NAMESPACES[@]}" pod-security.kubernetes.io/enforce=restricted \
    pod-security.kubernetes.io/enforce-version=latest | indent
fi
k apply -f "$deployments_file" | indent
info "waiting for the Deployments to be available..."
for ns in "${TARGET_NAMESPACES[@]}"; do
  for d in $(k get deployments -n "$ns" -l app.kubernetes.io/part-of=rollgate-demo -o name); do
    k rollout status -n "$ns" "$d" --timeout=120s >/dev/null ||
      die "$ns/${d#*/} did not become available"
  done
done
if ((multi)); then
  for d in "${REMOTE_DEPLOYMENTS[@]}"; do
    tk rollout status -n "$REMOTE_NAMESPACE" "deployment/$d" --timeout=120s >/dev/null ||
      die "$REMOTE_NAMESPACE/$d did not become available in the target"
  done
fi

# print_deployments: one line per Deployment: images, GPU request and the nodes its pods run on.
# --multicluster: the target's too, read with its kubeconfig, and a CLUSTER column (hub, target).
print_deployments() {
  k get deployments,pods -A -l app.kubernetes.io/part-of=rollgate-demo -o json >"$state.deploy"
  local files=("$state.deploy")
  if ((multi)); then
    tk get deployments,pods -A -l app.kubernetes.io/part-of=rollgate-demo -o json >"$state.deploy-target"
    files+=("$state.deploy-target")
  fi
  python3 - "${files[@]}" <<'PY'
import collections, json, sys

multi = len(sys.argv) > 2
items = []
for cluster, path in zip(("hub", "target"), sys.argv[1:]):
    for i in json.load(open(path))["items"]:
        i["cluster"] = cluster
        items.append(i)
pods = collections.defaultdict(list)
for p in items:
    if p["kind"] == "Pod" and not p["metadata"].get("deletionTimestamp"):
        key = (p["cluster"], p["metadata"]["namespace"],
               p["metadata"]["labels"].get("app.kubernetes.io/name"))
        pods[key].append(p["spec"].get("nodeName") or "(pending)")
rows = [("CLUSTER",) * multi + ("NAMESPACE", "DEPLOYMENT", "READY", "IMAGE", "GPU", "NODES")]
order = {"app-dev": 0, "app-staging": 1, "app-prod": 2}
deps = sorted((d for d in items if d["kind"] == "Deployment"),
              key=lambda d: (order.get(d["metadata"]["namespace"], 9), d["cluster"],
                             d["metadata"]["name"]))
for d in deps:
    md, spec, st = d["metadata"], d["spec"], d.get("status", {})
    cs = spec["template"]["spec"]["containers"]
    gpu = sum(int(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0)) for c in cs)
    nodes = collections.Counter(pods[(d["cluster"], md["namespace"], md["name"])])
    rows.append((d["cluster"],) * multi + (md["namespace"], md["name"],
                 "%d/%d" % (st.get("availableReplicas", 0), spec.get("replicas", 1)),
                 ",".join(c["image"] for c in cs),
                 "%d/pod" % gpu if gpu else "-",
                 ",".join("%s x%d" % (n, c) for n, c in sorted(nodes.items()))))
w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
for r in rows:
    print("    " + "  ".join(v.ljust(w[i]) for i, v in enumerate(r)).rstrip())
PY
}
print_deployments

# --- 4. the ContainerRollout --------------------------------------------------------------------

if ((multi)); then
  step "Giving the hub the target's kubeconfig: Secret $ROLLOUT_NS/$REMOTE_CLUSTER (rollgate cluster kubeconfig)"
  info "rollgate cluster kubeconfig --kubeconfig <target> -n $TARGET_RELEASE_NS --secret $REMOTE_CLUSTER | kubectl -n $ROLLOUT_NS apply -f -"
  "$cli_bin" cluster kubeconfig --kubeconfig "$target_kc" -n "$TARGET_RELEASE_NS" \
    --secret "$REMOTE_CLUSTER" >"$work/$REMOTE_CLUSTER-secret.yaml" 2>"$work/secret.err" ||
    die "rollgate cluster kubeconfig: $(cat "$work/secret.err")"
  k -n "$ROLLOUT_NS" apply -f "$work/$REMOTE_CLUSTER-secret.yaml" | indent
  rm -f "$work/$REMOTE_CLUSTER-secret.yaml" # the token is in the hub now
  info "its key value: a kubeconfig for $target_server with a token of ServiceAccount $TARGET_RELEASE_NS/rollgate-target"
fi

rollout_source=hack/demo/rollout.yaml
((real)) && rollout_source=hack/demo/rollout-real.yaml
((multi)) && rollout_source=hack/demo/rollout-multicluster.yaml
step "Applying the ContainerRollout $ROLLOUT_NS/$ROLLOUT_NAME ($rollout_source)"
k apply -f "$rollout_file" | indent
if ((real)); then
  info "images: backend, worker-cpu, worker-gpu -> $ROLLGATE_REGISTRY/testapp:2.0 (one test image, three logical names; real containers on $REAL_NODE)"
  info "environments: dev (smoke checks backend-starts, cpu-worker before the patch)"
  info "           -> staging (smoke check canary-inference once healthy; bake 3 s)"
  info "           -> production (manual approval; smoke check gpu-worker-sees-a-device, with a GPU, before the patch)"
elif ((multi)); then
  info "images: backend, worker-gpu, worker-cpu -> 2.0.0"
  info "environments: dev -> staging -> canary (bake 3 s), in the hub"
  info "           -> production (manual approval), in the target: cluster: {secretRef: {name: $REMOTE_CLUSTER}}"
else
  info "images: backend, worker-gpu, worker-cpu -> 2.0.0"
  info "environments: dev -> staging -> canary (bake 3 s) -> production (manual approval)"
fi

# The smoke checks' pods, watched from now on: each one's node, GPU limit and exit code as the
# kubelet reports it (a passed check's Job and pod are deleted at once), and its log while it is
# there.
if ((real)); then
  mkdir -p "$smoke_logs"
  "$kubectl_bin" --kubeconfig "$KUBECONFIG" get pods -A -l rollgate.io/smoke-check --watch --no-headers \
    -o custom-columns='NAMESPACE:.metadata.namespace,POD:.metadata.name,JOB:.metadata.ownerReferences[0].name,NODE:.spec.nodeName,GPU:.spec.containers[0].resources.limits.nvidia\.com/gpu,EXIT:.status.containerStatuses[0].state.terminated.exitCode' \
    </dev/null >"$smoke_pods" 2>/dev/null &
  smoke_watch_pid=$!
fi

# --- 5. the controller --------------------------------------------------------------------------

step "Starting the controller"
"$controller_bin" --kubeconfig "$KUBECONFIG" \
  --validator-image=registry.example.com/rollgate/rollgate-validate:0.1.0 </dev/null >"$controller_log" 2>&1 &
controller_pid=$!
t0=$(now_us)
info "$controller_bin (pid $controller_pid), log: $controller_log"

# --- 6. live progress: kubectl rollgate get --watch ---------------------------------------------

# The rollout's phase and current environment, "PHASE|ENVIRONMENT" ("" when kubectl fails).
rollout_phase() {
  k get -f "$rollout_file" -o jsonpath='{.status.phase}{"|"}{.status.currentEnvironment}' \
    2>/dev/null || true
}

# fetch_smoke_logs: the log of each smoke check pod that the watch saw terminate, once (into
# $smoke_logs/NAMESPACE_POD; empty when it is already gone).
fetch_smoke_logs() {
  [[ -s "$smoke_pods" ]] || return 0
  local ns pod exit_code
  while read -r ns pod _ _ _ exit_code; do
    [[ "$exit_code" != "<none>" && ! -e "$smoke_logs/${ns}_$pod" ]] || continue
    k logs -n "$ns" "$pod" </dev/null >"$smoke_logs/${ns}_$pod" 2>/dev/null || true
  done <"$smoke_pods"
}

# The live view is the CLI itself, run as the kubectl plugin: kubectl finds kubectl-rollgate (the
# build's link to rollgate) on PATH. On a terminal it redraws the tree in place; piped, it appends
# each tree that differs from the one before. --until-done ends it at a terminal phase.
watch_cmd=(kubectl rollgate -n "$ROLLOUT_NS" get "$ROLLOUT_NAME" --watch --until-done)
step "Watching the rollout: ${watch_cmd[*]} (Ctrl-C stops the demo and tears everything down)"
info "production needs a manual approval: the demo gives it ${APPROVE_AFTER_S} s after the rollout asks"
info "for it, as you would with: rollgate -n $ROLLOUT_NS promote $ROLLOUT_NAME"
printf '\n'
PATH="$build_dir/controller:$PATH" "$kubectl_bin" "${watch_cmd[@]:1}" </dev/null &
watch_pid=$!

# While the watch draws: the approval (silent, so as not to disturb the redraw; reported after),
# the controller's health and the timeout.
approved=" " awaiting_since="" timed_out=0 controller_died=0 approvals=()
while kill -0 "$watch_pid" 2>/dev/null; do
  ((real)) && fetch_smoke_logs
  IFS='|' read -r phase env <<<"$(rollout_phase)"
  if [[ "$phase" == AwaitingApproval && -n "$env" && "$approved" != *" $env "* ]]; then
    [[ -n "$awaiting_since" ]] || awaiting_since=$(now_us)
    if (($(now_us) - awaiting_since >= APPROVE_AFTER_S * 1000000)); then
      approved+="$env "
      awaiting_since=""
      if out=$("$cli_bin" --kubeconfig "$KUBECONFIG" -n "$ROLLOUT_NS" promote "$ROLLOUT_NAME" 2>&1); then
        approvals+=("[+$(secs_since "$t0")s] $env awaited approval; the demo approved it with" \
          "  rollgate -n $ROLLOUT_NS promote $ROLLOUT_NAME" "  $out")
      else
        approvals+=("[+$(secs_since "$t0")s] $env awaited approval; promoting it failed:" "  $out")
      fi
    fi
  fi
  if ! kill -0 "$controller_pid" 2>/dev/null; then
    controller_died=1
    break
  fi
  if (($(now_us) - t0 >= TIMEOUT_S * 1000000)); then
    timed_out=1
    break
  fi
  sleep 0.5
done
watch_stopped=0
if kill -0 "$watch_pid" 2>/dev/null; then
  kill -TERM "$watch_pid" 2>/dev/null || true # it ends its watch cleanly on SIGTERM
  watch_stopped=1
fi
watch_rc=0
wait "$watch_pid" || watch_rc=$?
watch_pid=""
rollout_s=$(secs_since "$t0")
((real)) && fetch_smoke_logs
IFS='|' read -r phase _ <<<"$(rollout_phase)"
final_phase=""
case $phase in
  Succeeded | Failed | RolledBack | Aborted) final_phase=$phase ;;
esac
printf '\n'
if ((watch_stopped)); then
  info "the demo stopped the watch (kubectl rollgate get --watch --until-done)"
else
  info "the watch (kubectl rollgate get --watch --until-done) ended with exit code $watch_rc"
fi
for a in "${approvals[@]}"; do info "$a"; done

# --- 7. summary ---------------------------------------------------------------------------------

step "Summary"
if ((timed_out)); then
  warn "timed out after ${TIMEOUT_S}s; the rollout is still ${phase:-Pending}"
elif ((controller_died)); then
  warn "the controller exited unexpectedly"
fi
k get -f "$rollout_file" -f "$deployments_file" -o json >"$state" 2>/dev/null || true
target_state=""
if ((multi)); then # production's Deployments, read in the target with its kubeconfig
  target_state=$state.target
  tk get -f "$target_deployments_file" -o json >"$target_state" 2>/dev/null || true
fi
if [[ -s "$state" ]]; then
  python3 - "$state" "$smoke_pods" "$smoke_logs" "$target_state" "${target_server:-}" <<'PY'
import calendar, json, os, sys, time

def ts(s):
    return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) if s else None

items = json.load(open(sys.argv[1]))["items"]
ro = next(i for i in items if i["kind"] == "ContainerRollout")
deps = {("", i["metadata"]["namespace"], i["metadata"]["name"]): i
        for i in items if i["kind"] == "Deployment"}
# --multicluster: the target's Deployments, under the name of the cluster that production names.
target_state, target_server = sys.argv[4], sys.argv[5]
remote, env_ns = {}, {}  # environment -> its cluster's name, its namespace
for env in ro["spec"]["environments"]:
    env_ns[env["name"]] = env.get("namespace", ro["metadata"]["namespace"])
    if env.get("cluster"):
        remote[env["name"]] = env["cluster"]["secretRef"]["name"]
if target_state and os.path.getsize(target_state) > 0:
    for c in set(remote.values()):
        for i in json.load(open(target_state))["items"]:
            deps[(c, i["metadata"]["namespace"], i["metadata"]["name"])] = i
spec, st = ro["spec"], ro.get("status") or {}
env_status = {e["name"]: e for e in st.get("environments", [])}
print("    rollout %s/%s  revision %s  phase %s" % (
    ro["metadata"]["namespace"], ro["metadata"]["name"], st.get("revision", "-"),
    st.get("phase") or "Pending"))
if st.get("message"):
    print("    message: %s" % st["message"])
print()
rows = [("ENVIRONMENT", "PHASE", "DURATION") + ("CLUSTER",) * bool(remote) +
        ("DEPLOYMENT", "CONTAINER", "BEFORE", "AFTER")]
notes = []
for env in spec["environments"]:
    es = env_status.get(env["name"], {})
    ns = env.get("namespace", ro["metadata"]["namespace"])
    start, end = ts(es.get("startedAt")), ts(es.get("finishedAt"))
    dur = "%ds" % (end - start) if start is not None and end is not None else (
        "running" if start is not None else "-")
    prev = {t["deployment"]: t.get("previousImages", {}) for t in es.get("targets", [])}
    first = True
    for t in env["targets"]:
        d = deps.get((remote.get(env["name"], ""), ns, t["deployment"]))
        have = ({c["name"]: c["image"] for c in d["spec"]["template"]["spec"]["containers"]}
                if d else {})
        for c in t["containers"]:
            before = prev.get(t["deployment"], {}).get(c, "-")
            after = have.get(c, "(missing)")
            if after == before:
                after += " (unchanged)"
            rows.append((env["name"] if first else "", es.get("phase", "Pending") if first else "",
                         dur if first else "") +
                        (remote.get(env["name"], "hub") if first else "",) * bool(remote) +
                        ("%s/%s" % (ns, t["deployment"]), c, before, after))
            first = False
    if es.get("phase", "Pending") != "Succeeded" and (es.get("reason") or es.get("message")):
        notes.append("%s: %s %s" % (env["name"], es.get("reason", ""), es.get("message", "")))
w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
for r in rows:
    print("    " + "  ".join(v.ljust(w[i]) for i, v in enumerate(r)).rstrip())
for n in notes:
    print("    " + n.strip())
# Where each remote environment ran: its targets as the rollout's status records them, and the
# images there read with the target cluster's kubeconfig (the AFTER column above).
for name, c in remote.items():
    es = env_status.get(name, {})
    recorded = ", ".join("%s:%s/%s" % (t.get("cluster", "(hub)"), t.get("namespace", "?"),
                                       t["deployment"]) for t in es.get("targets", []))
    hub_here = sorted(n for (cl, ns, n) in deps if cl == "" and ns == env_ns.get(name))
    print()
    print("    %s ran in the target cluster %s, reached through Secret %s/%s (cluster %s);" % (
        name, target_server, ro["metadata"]["namespace"], c, c))
    print("    the rollout's status records its targets as %s;" % (recorded or "(none)"))
    print("    BEFORE: the images the controller recorded there before patching; AFTER: read from the")
    print("    target with its own kubeconfig (the hub's %s holds only %s)." % (
        env_ns.get(name), ", ".join(hub_here) or "no Deployment of the demo"))

# The smoke checks: status.environments[].smokeChecks, plus what the watch of their pods saw (--real
# only): the node, the GPU limit and, while the pod was there, its log's verdict line (testapp's
# PASSED or FAILED line; stdout and stderr interleave in the log, so not always the last line).
pods = {}  # (namespace, job) -> (node, GPUs, log line)
if os.path.exists(sys.argv[2]):
    for line in open(sys.argv[2]):
        f = line.split()
        if len(f) != 6:
            continue
        ns, pod, job, node, gpu, _ = f
        log = ""
        try:
            lines = open(os.path.join(sys.argv[3], ns + "_" + pod)).read().splitlines()
            verdict = [l for l in lines if "PASSED" in l or "FAILED" in l]
            log = (verdict or lines or [""])[-1]
        except OSError:
            pass
        old = pods.get((ns, job), ("", "", ""))
        pods[(ns, job)] = (node if node != "<none>" else old[0], gpu if gpu != "<none>" else old[1],
                           log or old[2])
smoke_notes = []
rows = [("ENVIRONMENT", "SMOKE CHECK", "WHEN", "IMAGE", "TARGET", "PHASE", "EXIT", "DURATION",
         "NODE", "GPU", "LOG")]
for env in spec["environments"]:
    ns = env.get("namespace", ro["metadata"]["namespace"])
    declared = [(c, None) for c in env.get("smokeChecks", [])] + [
        (c, t["deployment"]) for t in env["targets"] for c in t.get("smokeChecks", [])]
    records = {c["name"]: c for c in env_status.get(env["name"], {}).get("smokeChecks", [])}
    for c, target in declared:
        r = records.get(c["name"], {})
        start, end = ts(r.get("startedAt")), ts(r.get("finishedAt"))
        node, gpu, log = pods.get((ns, r.get("job")), ("", "", ""))
        rows.append((env["name"], c["name"], c.get("when", "BeforePatch"),
                     "%s (%s)" % (c["image"], spec["images"].get(c["image"], "?").rsplit("/", 1)[-1]),
                     r.get("target") or target or "-", r.get("phase", "not run"),
                     str(r["exitCode"]) if "exitCode" in r else "-",
                     "%ds" % (end - start) if start is not None and end is not None else "-",
                     node or "-", gpu or "-", log or "-"))
        if r.get("message") and r.get("phase") != "Passed":
            smoke_notes.append("%s/%s: %s" % (env["name"], c["name"], r["message"]))
if len(rows) > 1:
    print()
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("    " + "  ".join(v.ljust(w[i]) for i, v in enumerate(r)).rstrip())
    for n in smoke_notes:
        print("    " + n.strip())
PY
fi

printf '\n    Events of %s/%s:\n' "$ROLLOUT_NS" "$ROLLOUT_NAME"
k get events -n "$ROLLOUT_NS" --field-selector "involvedObject.name=$ROLLOUT_NAME" \
  --sort-by=.metadata.creationTimestamp \
  -o custom-columns='TIME:.firstTimestamp,TYPE:.type,REASON:.reason,MESSAGE:.message' 2>&1 |
  indent

if ((real)); then
  printf '\n    Containers of the demo on the real node (image digests as pulled by containerd):\n'
  k get pods -A -l app.kubernetes.io/part-of=rollgate-demo \
    -o custom-columns='NAMESPACE:.metadata.namespace,POD:.metadata.name,NODE:.spec.nodeName,READY:.status.containerStatuses[0].ready,IMAGE ID:.status.containerStatuses[0].imageID' 2>&1 |
    indent
fi

# verdict: the times, then exit 0 when the rollout Succeeded, else 1 after the controller log's tail.
verdict() {
  printf '\n'
  info "rollout: ${rollout_s}s from the controller's start to ${final_phase:-no terminal phase}"
  info "demo total: $(secs_since "$demo_t0")s (control plane start included)"
  if [[ "$final_phase" == Succeeded ]]; then
    printf '\n%sRollout Succeeded.%s\n' "$GREEN" "$RESET"
    return 0
  fi
  printf '\n%sRollout did not succeed (%s).%s Last 40 lines of the controller log (%s):\n' \
    "$RED" "${final_phase:-${phase:-no phase}}" "$RESET" "$controller_log"
  tail -n 40 "$controller_log" | indent
  return 1
}
verdict
