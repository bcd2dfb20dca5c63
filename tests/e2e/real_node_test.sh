#!/usr/bin/env bash
# End-to-end test of the real node (hack/real-node.sh, `hack/cluster.sh up --real-node`; issue 15):
# a fresh local control plane in a temporary directory with a real kubelet and containerd next to
# the kwok nodes, pulling the test application images from the node's loopback registry.
#
#  1. Up: the node rollgate-real-0 is Ready, labelled rollgate.io/real-node=true and tainted
#     rollgate.io/real-node=true:NoSchedule; prints the time to Ready.
#  2. The test app images (hack/test-app-images.sh) pushed to the node's registry (hack/registry.sh).
#  3. A Deployment of testapp:1.0 that tolerates the taint and selects the node, with a readiness
#     probe on /healthz: Available, its pod on rollgate-real-0, imageID the pushed digest,
#     `kubectl logs` (API server -> kubelet) shows the app's first line. The image patched to 2.0:
#     rolls out, the new pod's imageID carries 2.0's pushed digest.
#  4. A pod that selects the node but does not tolerate the taint stays Pending (and no pod of this
#     test lands on a kwok node).
#  5. testapp:2.0-missing: ErrImagePull/ImagePullBackOff with the kubelet's "not found" message;
#     prints the time from creating the Deployment to it. 2.0-crash: CrashLoopBackOff, its log has
#     the crash line. 2.0-never-ready: running, never Ready for 15 s.
#  6. Down (twice): no containerd, kubelet, shim, registry or container process left, no mount
#     under the cluster directory, no KUBE-* iptables/ip6tables chain, no kubepods cgroup and no
#     bridge that were not there before, the sysctls the kubelet changes back to their old values,
#     no network namespace or CNI cache file left.
#
#   tests/e2e/real_node_test.sh
#
# Needs root and the Debian packages containerd, runc, catatonit, containernetworking-plugins,
# docker-registry, skopeo, umoci (fails at once, saying so, without them); builds the kubelet on
# first use (hack/build-control-plane.sh --with-kubelet). One real node per machine at a time (the
# bridge rollgate0). Prints PASS/FAIL per check and exits non-zero when any fails. About 1 minute.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
[[ $# -eq 0 ]] || { echo "usage: $0 (no arguments)" >&2; exit 2; }
if [[ $(id -u) -ne 0 ]]; then
  echo "FAIL: needs root (containerd, runc, the kubelet)" >&2
  exit 1
fi
for tool in containerd ctr runc catatonit skopeo umoci iptables curl jq python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed" >&2; exit 1; }
done
# shellcheck source-path=SCRIPTDIR source=../../hack/control-plane-versions.sh
source "$repo/hack/control-plane-versions.sh"

readonly NODE=rollgate-real-0
readonly SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward)
start=$SECONDS
check_name="real node test"
# shellcheck source-path=SCRIPTDIR source=lib/checks.sh
source "$here/lib/checks.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-real-node-test.XXXXXX")
cluster=$work/cluster


# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  bash "$repo/hack/cluster.sh" down "$cluster" >/dev/null 2>&1 || bash "$repo/hack/cluster.sh" down "$cluster" || true
  rm -rf "$work"
}
trap cleanup EXIT

kubectl() { "$CONTROL_PLANE_BIN/kubectl" --request-timeout=10s "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
kube_chains() { { iptables-save 2>/dev/null; ip6tables-save 2>/dev/null; } | awk '/^:KUBE-/ { print $1 }' | sort; }
sysctl_values() { local s; for s in "${SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s")"; done; }

# --- 0. the host before ---------------------------------------------------------------------------
before_sysctls=$(sysctl_values)
before_chains=$(kube_chains)
before_kubepods=$(ls -d /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods 2>/dev/null || true)
before_netns=$(ls /run/netns 2>/dev/null || true)
before_cni=$(ls /var/lib/cni/results 2>/dev/null || true)
# Host paths outside the cluster directory that containerd, CNI and the kubelet write to.
host_paths() {
  ls -d /run/containerd /run/containerd/s /run/netns /var/log/containers /var/lib/cni /var/lib/cni/results \
    /var/lib/kubelet /var/lib/kubelet/device-plugins /var/lib/kubelet/device-plugins/kubelet.sock 2>/dev/null || true
}
before_paths=$(host_paths)

# --- 1. up ----------------------------------------------------------------------------------------
t0=$(now)
if ! env_out=$(bash "$repo/hack/cluster.sh" up --dir "$cluster" --real-node 2>"$work/up.log"); then
  fail "hack/cluster.sh up --real-node: $(one_line "$(tail -n 5 "$work/up.log")")"
  finish
fi
eval "$env_out"
rn=$cluster/real-node
pass "hack/cluster.sh up --real-node in $(since "$t0")s (registry $ROLLGATE_REGISTRY)"
echo "node $NODE Ready $(cat "$rn/ready-seconds")s after hack/real-node.sh up started"
node_json=$(kubectl get node "$NODE" -o json)
if jq -e '([.status.conditions[] | select(.type == "Ready" and .status == "True")] | length == 1)
    and .metadata.labels["rollgate.io/real-node"] == "true"
    and ([.spec.taints[]? | select(.key == "rollgate.io/real-node" and .value == "true" and .effect == "NoSchedule")] | length == 1)' \
  <<<"$node_json" >/dev/null; then
  pass "node $NODE Ready, labelled and tainted ($(jq -r '.status.nodeInfo | "\(.kubeletVersion), \(.containerRuntimeVersion)"' <<<"$node_json"))"
else
  fail "node $NODE: $(one_line "$(jq -c '{labels: .metadata.labels, taints: .spec.taints, ready: [.status.conditions[] | select(.type == "Ready")]}' <<<"$node_json")")"
fi
# The pids to look for after down: ours only (pid files and our shims).
own_pids() {
  local f pid _
  for f in "$rn"/pids/* "$rn"/registry/registry.pid; do
    if [[ -f "$f" ]] && read -r pid _ <"$f"; then echo "$pid"; fi
  done
  local p
  for p in /proc/[0-9]*; do
    if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF "$rn/containerd.sock"; then echo "${p#/proc/}"; fi
  done
}

# --- 2. images ------------------------------------------------------------------------------------
if bash "$repo/hack/test-app-images.sh" --out "$work/images" >"$work/images.log" 2>&1 &&
  bash "$repo/hack/registry.sh" push "$work/images" --dir "$rn/registry" >"$work/push.log" 2>&1; then
  pass "test app images built and pushed to $ROLLGATE_REGISTRY"
else
  fail "images: $(one_line "$(tail -n 3 "$work/images.log" "$work/push.log" 2>/dev/null)")"
  finish
fi
digest() { awk -v r="$ROLLGATE_REGISTRY/testapp:$1" '$1 == r { print $2 }' "$work/push.log"; }

# deployment NAME TAG [tolerate=1]: a Deployment of testapp:TAG on the real node.
deployment() {
  local name=$1 tag=$2 tolerate=${3:-1} tol=""
  if ((tolerate)); then tol='tolerations: [{key: rollgate.io/real-node, operator: Equal, value: "true", effect: NoSchedule}]'; fi
  kubectl apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $name, namespace: default}
spec:
  replicas: 1
  progressDeadlineSeconds: 600
  selector: {matchLabels: {app: $name}}
  template:
    metadata: {labels: {app: $name}}
    spec:
      nodeSelector: {rollgate.io/real-node: "true"}
      $tol
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: $ROLLGATE_REGISTRY/testapp:$tag
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1, failureThreshold: 1}
EOF
}
pods_of() { kubectl get pods -l "app=$1" -o json; }

# --- 3. 1.0, then 2.0 -----------------------------------------------------------------------------
t0=$(now)
deployment app 1.0
if kubectl wait deploy/app --for=condition=Available --timeout=90s >/dev/null 2>"$work/wait.err" &&
  kubectl rollout status deploy/app --timeout=60s >/dev/null 2>>"$work/wait.err"; then
  pass "testapp:1.0 Available in $(since "$t0")s"
else
  fail "testapp:1.0 not Available: $(one_line "$(cat "$work/wait.err"; pods_of app | jq -c '[.items[].status]')")"
fi
check_image() { # TAG: the ready pod of app runs TAG's pushed digest on the real node
  local want json
  want=$(digest "$1")
  json=$(pods_of app | jq -c --arg d "$want" '[.items[] | select(.metadata.deletionTimestamp == null)
    | {node: .spec.nodeName, image: .spec.containers[0].image, imageID: .status.containerStatuses[0].imageID,
       ready: .status.containerStatuses[0].ready}]')
  if [[ -n "$want" ]] && jq -e --arg d "$want" --arg n "$NODE" 'length >= 1 and all(.[]; .node == $n and .ready and (.imageID | endswith("@" + $d)))' <<<"$json" >/dev/null; then
    pass "app runs testapp:$1 on $NODE, imageID $(jq -r '.[0].imageID' <<<"$json")"
  else
    fail "app: want testapp:$1 ($want) ready on $NODE, got $json"
  fi
}
check_image 1.0
if logs=$(kubectl logs deploy/app 2>&1) && grep -q 'testapp 1.0' <<<"$logs"; then
  pass "kubectl logs through the kubelet: $(one_line "$(head -n 1 <<<"$logs")")"
else
  fail "kubectl logs deploy/app: $(one_line "$logs")"
fi
t0=$(now)
kubectl set image deploy/app "app=$ROLLGATE_REGISTRY/testapp:2.0" >/dev/null
if kubectl rollout status deploy/app --timeout=90s >/dev/null 2>"$work/wait.err"; then
  pass "rolled out to testapp:2.0 in $(since "$t0")s"
else
  fail "rollout to 2.0: $(one_line "$(cat "$work/wait.err")")"
fi
# The old pod may still be terminating: wait for it to go.
for _ in $(seq 1 50); do
  [[ $(pods_of app | jq '.items | length') == 1 ]] && break
  sleep 0.2
done
check_image 2.0

# --- 4. the taint ---------------------------------------------------------------------------------
deployment untolerated 1.0 0

# --- 5. missing, crash, never ready ---------------------------------------------------------------
t0=$(now)
deployment missing 2.0-missing
pull_s="" msg=""
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
  st=$(pods_of missing | jq -c '.items[0].status.containerStatuses[0].state.waiting // empty')
  if [[ -n "$st" ]] && jq -e '.reason == "ErrImagePull" or .reason == "ImagePullBackOff"' <<<"$st" >/dev/null; then
    pull_s=$(since "$t0")
    msg=$(jq -r '.message // ""' <<<"$st")
    break
  fi
  sleep 0.2
done
if [[ -n "$pull_s" && "$msg" == *"testapp:2.0-missing"*"not found"* ]]; then
  pass "testapp:2.0-missing: $(jq -r .reason <<<"$st") ${pull_s}s after the Deployment was created: $(one_line "$msg")"
  echo "time from creating the missing-image Deployment to ErrImagePull: ${pull_s}s"
else
  fail "testapp:2.0-missing: no ErrImagePull with the kubelet's message within 60 s: $(one_line "$(pods_of missing | jq -c '[.items[].status]')")"
fi

deployment crash 2.0-crash
reason="" deadline=$((SECONDS + 90))
while ((SECONDS < deadline)); do
  reason=$(pods_of crash | jq -r '.items[0].status.containerStatuses[0].state.waiting.reason // empty')
  [[ "$reason" == CrashLoopBackOff ]] && break
  sleep 0.5
done
if [[ "$reason" == CrashLoopBackOff ]]; then
  pod=$(pods_of crash | jq -r '.items[0] | "\(.metadata.name) restarts \(.status.containerStatuses[0].restartCount), last exit \(.status.containerStatuses[0].lastState.terminated.exitCode)"')
  pass "testapp:2.0-crash: CrashLoopBackOff ($pod)"
  crashlog=$(kubectl logs deploy/crash --previous 2>&1 || kubectl logs deploy/crash 2>&1)
  if grep -q 'crashing on purpose' <<<"$crashlog"; then
    pass "testapp:2.0-crash: its log has the crash line"
  else
    fail "testapp:2.0-crash: kubectl logs --previous: $(one_line "$crashlog")"
  fi
else
  fail "testapp:2.0-crash: no CrashLoopBackOff within 90 s: $(one_line "$(pods_of crash | jq -c '[.items[].status.containerStatuses]')")"
fi

deployment never-ready 2.0-never-ready
running_since="" bad="" deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
  cs=$(pods_of never-ready | jq -c '.items[0].status.containerStatuses[0] // empty')
  if [[ -n "$cs" ]] && jq -e '.ready' <<<"$cs" >/dev/null; then
    bad="became Ready: $cs"
    break
  fi
  if [[ -n "$cs" ]] && jq -e '.state.running and .restartCount == 0' <<<"$cs" >/dev/null; then
    running_since=${running_since:-$SECONDS}
    ((SECONDS - running_since >= 15)) && break
  fi
  sleep 0.5
done
if [[ -z "$bad" && -n "$running_since" ]] && ((SECONDS - running_since >= 15)); then
  pass "testapp:2.0-never-ready: running, not Ready for 15 s"
else
  fail "testapp:2.0-never-ready: ${bad:-not running for 15 s: $(one_line "$(pods_of never-ready | jq -c '[.items[].status]')")}"
fi

untol=$(pods_of untolerated | jq -r '.items[0] | "\(.status.phase) \(.spec.nodeName // "unscheduled")"')
if [[ "$untol" == "Pending unscheduled" ]]; then
  pass "a pod selecting the node without tolerating its taint stays Pending, unscheduled"
else
  fail "untolerated pod: $untol"
fi
on_kwok=$(kubectl get pods -o json | jq -r --arg n "$NODE" '[.items[] | select(.spec.nodeName != null and .spec.nodeName != $n) | .metadata.name] | join(" ")')
if [[ -z "$on_kwok" ]]; then
  pass "no pod of this test landed on a kwok node"
else
  fail "pods on kwok nodes: $on_kwok"
fi

# --- 6. down --------------------------------------------------------------------------------------
mapfile -t pids < <(own_pids | sort -u)
echo "processes of the real node before down: ${#pids[@]} (${pids[*]})"
t0=$(now)
if out=$(bash "$repo/hack/cluster.sh" down "$cluster" 2>&1) && out2=$(bash "$repo/hack/cluster.sh" down "$cluster" 2>&1); then
  pass "hack/cluster.sh down, twice, in $(since "$t0")s: $(one_line "$out / $out2")"
else
  fail "hack/cluster.sh down: $(one_line "$out ${out2:-}")"
fi
alive=()
for p in "${pids[@]}"; do
  if [[ -d /proc/$p && $(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null) != Z ]]; then
    alive+=("$p:$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | cut -c1-80)")
  fi
done
if ((${#alive[@]} == 0)) && ((${#pids[@]} >= 3)); then
  pass "no process left (containerd, kubelet, registry, shims: ${#pids[@]} gone)"
else
  fail "processes left: ${alive[*]:-none, but only ${#pids[@]} recorded}"
fi
mounts=$(awk -v b="$work/" 'index($5, b) == 1 { print $5 }' /proc/self/mountinfo)
if [[ -z "$mounts" && ! -e "$cluster" ]]; then
  pass "no mount under $work; the cluster directory is gone"
else
  fail "mounts left: $(one_line "$mounts"); cluster dir exists: $([[ -e "$cluster" ]] && echo yes || echo no)"
fi
after_chains=$(kube_chains)
if [[ "$after_chains" == "$before_chains" ]]; then
  pass "KUBE-* iptables/ip6tables chains as before (${before_chains:-none})"
else
  fail "KUBE-* chains before: $(one_line "$before_chains"), after: $(one_line "$after_chains")"
fi
after_sysctls=$(sysctl_values)
if [[ "$after_sysctls" == "$before_sysctls" ]]; then
  pass "sysctls restored: $(one_line "$after_sysctls")"
else
  fail "sysctls before: $(one_line "$before_sysctls"), after: $(one_line "$after_sysctls")"
fi
after_kubepods=$(ls -d /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods 2>/dev/null || true)
if [[ "$after_kubepods" == "$before_kubepods" ]]; then
  pass "kubepods cgroups as before (${before_kubepods:-none})"
else
  fail "kubepods cgroups left: $(one_line "$after_kubepods")"
fi
if ! ip link show rollgate0 >/dev/null 2>&1 && [[ "$(ls /run/netns 2>/dev/null || true)" == "$before_netns" &&
  "$(ls /var/lib/cni/results 2>/dev/null || true)" == "$before_cni" ]]; then
  pass "no bridge rollgate0, network namespaces and CNI result cache as before"
else
  fail "network left: bridge $(one_line "$(ip -br link show rollgate0 2>&1)"); netns $(one_line "$(ls /run/netns 2>/dev/null)"); cni $(one_line "$(ls /var/lib/cni/results 2>/dev/null)")"
fi
after_paths=$(host_paths)
if [[ "$after_paths" == "$before_paths" ]]; then
  pass "host paths as before: ${before_paths:-none of /run/containerd, /run/netns, /var/log/containers, /var/lib/cni, /var/lib/kubelet}"
else
  fail "host paths before: $(one_line "$before_paths"), after: $(one_line "$after_paths")"
fi

finish
