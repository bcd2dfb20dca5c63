#!/usr/bin/env bash
# End-to-end test of the controller as a pod on the real node (issue 15): the chart installed by
# Helm with the locally built controller image, pulled from the node's registry, rolling real
# containers.
#
#  1. Images (while the cluster starts): the controller images (hack/image.sh, what `make image`
#     runs, from BUILD_DIR's binaries) and the test app images (hack/test-app-images.sh).
#  2. Up: a fresh cluster with `hack/cluster.sh up --real-node` in a temporary directory; its API
#     server listens on the node bridge's gateway (10.89.0.1), which its serving certificate names.
#     The images pushed to the node's registry (hack/registry.sh push: skopeo, digests preserved).
#  3. `helm install` (CONTROL_PLANE_BIN/helm) into a namespace enforcing the restricted Pod
#     Security Standard, with image.repository at the registry copy, nodeSelector and toleration
#     for rollgate-real-0, KUBERNETES_SERVICE_HOST/PORT (extraEnv) at the API server,
#     allowedRegistries the node's registry. The pod is Ready on rollgate-real-0 running the pushed
#     digest (prints the time from `helm install` to Ready); a non-compliant pod is refused there;
#     the ServiceAccount token is the projected, expiring one; `kubectl logs` shows the startup
#     line (in-cluster config, the bridge's API server); the pod holds the leader Lease.
#  4. A ContainerRollout of testapp 1.0 -> 2.0 over two environments (two namespaces opted in with
#     rollgate.io/allow-rollouts-from), Deployments pinned to the real node: Succeeded (prints the
#     time), every pod on rollgate-real-0, Ready, its imageID 2.0's pushed digest.
#  4b. Pod health, with the chart's default thresholds: a rollout to testapp:2.0-missing fails
#     ImagePullFailed (the image and the kubelet's "not found" in the message), one to
#     testapp:2.0-crash fails ContainerCrashing (its stderr line, through
#     terminationMessagePolicy FallbackToLogsOnError), both long before their progress deadline;
#     both roll back to testapp:1.0 (prints the time from the patch to each failure).
#  5. `helm uninstall`: the Deployment and its pod are gone.
#  6. Down: every component stops on SIGTERM (the bridge the API server listens on is removed after
#     it), no bridge rollgate0 left.
#
#   tests/e2e/real_node_controller_test.sh BUILD_DIR   (holds controller/rollgate-controller,
#                                                       rollgate and rollgate-validate)
#
# Needs root and what tests/e2e/real_node_test.sh and tests/e2e/image_test.sh need (containerd,
# runc, catatonit, containernetworking-plugins, docker-registry, skopeo, umoci, mmdebstrap and the
# Debian mirror). One real node per machine at a time (the bridge rollgate0): ctest serializes the
# real-node tests (RESOURCE_LOCK real_node). Prints PASS/FAIL per check; exits non-zero when any
# fails. About 3 minutes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
[[ $# -eq 1 ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" 2>/dev/null && pwd) || { echo "FAIL: no such build directory: $1" >&2; exit 1; }
if [[ $(id -u) -ne 0 ]]; then
  echo "FAIL: needs root (containerd, runc, the kubelet, mmdebstrap)" >&2
  exit 1
fi
for tool in containerd ctr runc catatonit skopeo umoci iptables curl jq python3 openssl; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed" >&2; exit 1; }
done
for b in rollgate-controller rollgate rollgate-validate; do
  [[ -x "$build/controller/$b" ]] || { echo "FAIL: $build/controller/$b is missing (build it first)" >&2; exit 1; }
done
# shellcheck source-path=SCRIPTDIR source=../../hack/control-plane-versions.sh
source "$repo/hack/control-plane-versions.sh"
helm=$CONTROL_PLANE_BIN/helm
[[ -x "$helm" ]] || { echo "FAIL: no helm at $helm (run hack/build-control-plane.sh)" >&2; exit 1; }

readonly NODE=rollgate-real-0 SYSTEM_NS=rollgate-system RELEASE=rollgate
readonly APP_NS=rn-app DEV_NS=rn-dev PROD_NS=rn-prod ROLLOUT=testapp-v2
start=$SECONDS
check_name="real node controller test"
# shellcheck source-path=SCRIPTDIR source=lib/checks.sh
source "$here/lib/checks.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-real-node-controller-test.XXXXXX")
cluster=$work/cluster
# Private discovery cache and helm home.
export KUBECACHEDIR=$work/kube-cache HELM_CACHE_HOME=$work/helm/cache \
  HELM_CONFIG_HOME=$work/helm/config HELM_DATA_HOME=$work/helm/data
bg_pids=()

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local p
  for p in "${bg_pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null || true
      wait "$p" 2>/dev/null || true
    fi
  done
  bash "$repo/hack/cluster.sh" down "$cluster" >/dev/null 2>&1 || bash "$repo/hack/cluster.sh" down "$cluster" || true
  rm -rf "$work"
}
trap cleanup EXIT

kubectl() { "$CONTROL_PLANE_BIN/kubectl" --request-timeout=10s "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# poll TIMEOUT_S CMD...: run CMD every 0.5 s until it succeeds; fail after TIMEOUT_S.
poll() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

# --- 1. images, built while the cluster starts -----------------------------------------------------
t_images=$(now)
bash "$repo/hack/image.sh" --out "$work/images" "$build" >"$work/image.out" 2>"$work/image.err" &
bg_pids+=($!)
image_pid=$!
bash "$repo/hack/test-app-images.sh" --out "$work/test-images" >"$work/test-images.log" 2>&1 &
bg_pids+=($!)
test_images_pid=$!

# --- 2. up, push ------------------------------------------------------------------------------------
t0=$(now)
if ! env_out=$(bash "$repo/hack/cluster.sh" up --dir "$cluster" --real-node 2>"$work/up.log"); then
  fail "hack/cluster.sh up --real-node: $(one_line "$(tail -n 5 "$work/up.log")")"
  finish
fi
eval "$env_out"
export KUBECONFIG
rn=$cluster/real-node
api_url=$(sed -n 's|^API_SERVER=||p' "$cluster/cluster.env")
api_host=${api_url#https://} api_host=${api_host%:*} api_port=${api_url##*:}
pass "hack/cluster.sh up --real-node in $(since "$t0")s (API server $api_url, registry $ROLLGATE_REGISTRY)"
san=$(openssl x509 -in "$cluster/pki/apiserver.crt" -noout -ext subjectAltName 2>&1 | tail -n +2)
if [[ "$api_host" == 10.89.0.1 ]] && grep -q "IP Address:$api_host\(,\|$\)" <<<"$san" &&
  [[ "$(sed -n 's|^ *server: ||p' "$KUBECONFIG")" == "$api_url" ]] && kubectl get --raw /readyz >/dev/null 2>&1; then
  pass "the API server listens on the bridge gateway $api_host (in its certificate's SAN:$(one_line "$san")); the admin kubeconfig names it"
else
  fail "API server address: $api_url, SAN: $(one_line "$san")"
fi

if wait "$image_pid" && wait "$test_images_pid"; then
  pass "images built in $(since "$t_images")s: $(one_line "$(awk '{ print $1, $2, $5 }' "$work/image.out")")"
else
  fail "image builds: $(one_line "$(tail -n 3 "$work/image.err" "$work/test-images.log" 2>/dev/null)")"
  finish
fi
bg_pids=()
if bash "$repo/hack/registry.sh" push "$work/images" --dir "$rn/registry" >"$work/push.log" 2>&1 &&
  bash "$repo/hack/registry.sh" push "$work/test-images" --dir "$rn/registry" >>"$work/push.log" 2>&1; then
  pass "images pushed to $ROLLGATE_REGISTRY (skopeo, digests preserved)"
else
  fail "push: $(one_line "$(tail -n 3 "$work/push.log")")"
  finish
fi
digest() { awk -v r="$ROLLGATE_REGISTRY/$1" '$1 == r { print $2 }' "$work/push.log"; }
version=$(awk '$1 == "rollgate-controller" { print $2 }' "$work/image.out")
controller_digest=$(digest "rollgate-controller:$version")

# --- 3. helm install ----------------------------------------------------------------------------------
kubectl create namespace "$SYSTEM_NS" >/dev/null
kubectl label namespace "$SYSTEM_NS" pod-security.kubernetes.io/enforce=restricted \
  pod-security.kubernetes.io/enforce-version=latest >/dev/null
cat >"$work/values.yaml" <<EOF
replicaCount: 1
image: {repository: $ROLLGATE_REGISTRY/rollgate-controller, tag: "$version"}
validatorImage: {repository: $ROLLGATE_REGISTRY/rollgate-validate, tag: "$version"}
allowedRegistries: ["$ROLLGATE_REGISTRY"]
logFormat: json
nodeSelector: {rollgate.io/real-node: "true"}
tolerations: [{key: rollgate.io/real-node, operator: Equal, value: "true", effect: NoSchedule}]
# The kubelet's own values point at the kubernetes Service's ClusterIP, which nothing routes here.
extraEnv:
- {name: KUBERNETES_SERVICE_HOST, value: "$api_host"}
- {name: KUBERNETES_SERVICE_PORT, value: "$api_port"}
EOF
selector=app.kubernetes.io/instance=$RELEASE
t0=$(now)
if "$helm" install "$RELEASE" "$repo/charts/rollgate" -n "$SYSTEM_NS" -f "$work/values.yaml" \
  >"$work/helm.log" 2>&1; then
  pass "helm install $RELEASE -n $SYSTEM_NS (image $ROLLGATE_REGISTRY/rollgate-controller:$version)"
else
  fail "helm install: $(one_line "$(cat "$work/helm.log")")"
  finish
fi
pod_ready() {
  kubectl get pods -n "$SYSTEM_NS" -l "$selector" -o json |
    jq -e '[.items[] | select(.metadata.deletionTimestamp == null)] | length == 1 and
      ([.[0].status.conditions[]? | select(.type == "Ready" and .status == "True")] | length == 1)'
}
if poll 120 pod_ready; then
  ready_s=$(since "$t0")
  pass "the controller pod is Ready ${ready_s}s after helm install"
  echo "time from helm install to the controller pod Ready: ${ready_s}s"
else
  fail "the controller pod is not Ready within 120 s: $(one_line "$(kubectl get pods -n "$SYSTEM_NS" -o json | jq -c '[.items[] | {node: .spec.nodeName, status: .status.containerStatuses, conditions: .status.conditions}]') $(kubectl get events -n "$SYSTEM_NS" -o json | jq -r '.items[] | .message' | tail -n 5)")"
  finish
fi
pod_json=$(kubectl get pods -n "$SYSTEM_NS" -l "$selector" -o json | jq '[.items[] | select(.metadata.deletionTimestamp == null)][0]')
pod=$(jq -r .metadata.name <<<"$pod_json")
if jq -e --arg n "$NODE" --arg d "$controller_digest" '.spec.nodeName == $n and .spec.hostNetwork != true
    and (.status.containerStatuses[0].imageID | endswith("@" + $d))' <<<"$pod_json" >/dev/null && [[ -n "$controller_digest" ]]; then
  pass "$pod runs on $NODE (pod network, IP $(jq -r .status.podIP <<<"$pod_json")), imageID $(jq -r '.status.containerStatuses[0].imageID' <<<"$pod_json")"
else
  fail "$pod: want $NODE and digest $controller_digest, got $(one_line "$(jq -c '{node: .spec.nodeName, hostNetwork: .spec.hostNetwork, imageID: .status.containerStatuses[0].imageID}' <<<"$pod_json")")"
fi
# The restricted Pod Security Standard is enforced in that namespace: a pod lacking its settings
# is refused, so the controller pod was admitted under it.
if out=$(kubectl run psa-probe -n "$SYSTEM_NS" --image="$ROLLGATE_REGISTRY/testapp:1.0" --dry-run=server 2>&1); then
  fail "a non-compliant pod was admitted in $SYSTEM_NS: $(one_line "$out")"
elif [[ "$out" == *"violates PodSecurity \"restricted"* ]]; then
  pass "$SYSTEM_NS enforces the restricted Pod Security Standard (a non-compliant pod is refused); the controller pod was admitted"
else
  fail "the probe pod was refused for another reason: $(one_line "$out")"
fi
# The ServiceAccount token: the projected, expiring one the kubelet rotates (the controller
# re-reads the file when it changes), mounted where in-cluster configuration reads it.
if jq -e '([.spec.volumes[] | select(.projected) | .name as $v | .projected.sources[]
      | select(.serviceAccountToken.expirationSeconds > 0) | $v] | length == 1) as $has
    | $has and ([.spec.containers[0].volumeMounts[] | select(.mountPath == "/var/run/secrets/kubernetes.io/serviceaccount")] | length == 1)' \
  <<<"$pod_json" >/dev/null; then
  pass "the pod mounts the projected ServiceAccount token (expirationSeconds $(jq -r '[.spec.volumes[] | select(.projected) | .projected.sources[] | .serviceAccountToken.expirationSeconds // empty][0]' <<<"$pod_json")) at /var/run/secrets/kubernetes.io/serviceaccount"
else
  fail "no projected ServiceAccount token volume: $(one_line "$(jq -c '.spec.volumes' <<<"$pod_json")")"
fi
logs=$(kubectl logs -n "$SYSTEM_NS" "$pod" 2>&1) || true
startup=$(jq -c 'select(.msg == "starting")' <<<"$logs" 2>/dev/null | head -n 1) || startup=""
if [[ -n "$startup" ]] && jq -e --arg s "$api_url" '.config == "in-cluster" and .server == $s' <<<"$startup" >/dev/null; then
  pass "kubectl logs: the startup line, in-cluster configuration (the pod's token) at $api_url: $(one_line "$startup")"
else
  fail "kubectl logs $pod: no startup line with config in-cluster and server $api_url: $(one_line "$(head -n 5 <<<"$logs")")"
fi
lease_holder() { kubectl get lease -n "$SYSTEM_NS" "$RELEASE-leader" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
holder_is_pod() { [[ "$(lease_holder)" == "${pod}_"* ]]; }
if poll 60 holder_is_pod; then
  pass "the pod holds the leader Lease $SYSTEM_NS/$RELEASE-leader (holderIdentity $(lease_holder))"
else
  fail "Lease $SYSTEM_NS/$RELEASE-leader: holderIdentity '$(lease_holder)', want ${pod}_<pid>"
fi

# --- 4. a rollout of real containers ------------------------------------------------------------------
for ns in "$APP_NS" "$DEV_NS" "$PROD_NS"; do kubectl create namespace "$ns" >/dev/null; done
kubectl label namespace "$DEV_NS" "$PROD_NS" "rollgate.io/allow-rollouts-from=$APP_NS" >/dev/null
# apply_testapp NS LABEL: Deployment NS/app, one testapp:1.0 pod labelled app=LABEL, pinned to the
# real node; a crash's stderr becomes its termination message (FallbackToLogsOnError).
apply_testapp() {
  kubectl apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: $1}
spec:
  replicas: 1
  selector: {matchLabels: {app: $2}}
  template:
    metadata: {labels: {app: $2}}
    spec:
      nodeSelector: {rollgate.io/real-node: "true"}
      tolerations: [{key: rollgate.io/real-node, operator: Equal, value: "true", effect: NoSchedule}]
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: $ROLLGATE_REGISTRY/testapp:1.0
        terminationMessagePolicy: FallbackToLogsOnError
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1, failureThreshold: 1}
EOF
}
for ns in "$DEV_NS" "$PROD_NS"; do apply_testapp "$ns" app; done
t0=$(now)
available=1
for ns in "$DEV_NS" "$PROD_NS"; do
  kubectl wait -n "$ns" deploy/app --for=condition=Available --timeout=90s >/dev/null 2>>"$work/wait.err" || available=0
done
if ((available)); then
  pass "testapp:1.0 Available in $DEV_NS and $PROD_NS on $NODE in $(since "$t0")s"
else
  fail "testapp:1.0 not Available: $(one_line "$(cat "$work/wait.err")")"
fi
kubectl apply -f - >/dev/null <<EOF
apiVersion: rollgate.io/v1alpha1
kind: ContainerRollout
metadata: {name: $ROLLOUT, namespace: $APP_NS}
spec:
  images: {app: $ROLLGATE_REGISTRY/testapp:2.0}
  environments:
  - name: dev
    namespace: $DEV_NS
    targets: [{deployment: app, containers: {app: app}}]
  - name: prod
    namespace: $PROD_NS
    targets: [{deployment: app, containers: {app: app}}]
  progressDeadlineSeconds: 120
EOF
t0=$(now)
rollout_phase() { kubectl get containerrollout -n "$APP_NS" "$ROLLOUT" -o jsonpath='{.status.phase}' 2>/dev/null; }
terminal() { [[ "$(rollout_phase)" =~ ^(Succeeded|Failed|RolledBack|Aborted)$ ]]; }
poll 180 terminal || true
phase=$(rollout_phase)
status=$(kubectl get containerrollout -n "$APP_NS" "$ROLLOUT" -o json | jq -c '.status')
if [[ "$phase" == Succeeded ]] && jq -e '[.environments[] | select(.phase == "Succeeded")] | length == 2' <<<"$status" >/dev/null; then
  succeeded_s=$(since "$t0")
  pass "ContainerRollout $APP_NS/$ROLLOUT Succeeded through dev ($DEV_NS) and prod ($PROD_NS) in ${succeeded_s}s"
  echo "time from applying the ContainerRollout to Succeeded: ${succeeded_s}s"
else
  fail "ContainerRollout $APP_NS/$ROLLOUT: phase '${phase}' after $(since "$t0")s: $(one_line "$status")"
fi
want=$(digest testapp:2.0)
pods_on_2() { # every live pod of app in both namespaces: on the node, Ready, 2.0's digest
  kubectl get pods -A -l app=app -o json | jq -e --arg d "$want" --arg n "$NODE" \
    '[.items[] | select(.metadata.deletionTimestamp == null)] | length == 2 and all(.[];
      .spec.nodeName == $n and .status.containerStatuses[0].ready
      and (.status.containerStatuses[0].imageID | endswith("@" + $d)))'
}
if [[ -n "$want" ]] && poll 30 pods_on_2; then
  pass "the pods in $DEV_NS and $PROD_NS run testapp:2.0 on $NODE, imageID $ROLLGATE_REGISTRY/testapp@$want"
else
  fail "pods after the rollout (want 2.0 = $want): $(one_line "$(kubectl get pods -A -l app=app -o json | jq -c '[.items[] | {ns: .metadata.namespace, node: .spec.nodeName, deleting: .metadata.deletionTimestamp, imageID: .status.containerStatuses[0].imageID, ready: .status.containerStatuses[0].ready}]')")"
fi
# --- 4b. pod health: a tag that does not exist, a container that crashes ---------------------------
# Two rollouts at once, each in its own namespace, with the chart's default thresholds: the kubelet
# cannot pull testapp:2.0-missing (ImagePullFailed once a new pod has failed to pull for 30 s) and
# testapp:2.0-crash exits 1 after 1 s (ContainerCrashing at its third restart, ~70 s). Both must
# fail with that reason, naming the image and carrying the kubelet's words, long before their
# progress deadline (600 s), and roll back to testapp:1.0.
declare -A bad_tag=([rn-pull]=2.0-missing [rn-crash]=2.0-crash)
declare -A bad_reason=([rn-pull]=ImagePullFailed [rn-crash]=ContainerCrashing)
declare -A bad_words=([rn-pull]="not found" [rn-crash]="crashing on purpose")
for ns in rn-pull rn-crash; do
  kubectl create namespace "$ns" >/dev/null
  kubectl label namespace "$ns" "rollgate.io/allow-rollouts-from=$APP_NS" >/dev/null
  apply_testapp "$ns" bad
done
available=1
for ns in rn-pull rn-crash; do
  kubectl wait -n "$ns" deploy/app --for=condition=Available --timeout=90s >/dev/null 2>>"$work/wait.err" || available=0
done
((available)) || fail "testapp:1.0 not Available in rn-pull/rn-crash: $(one_line "$(cat "$work/wait.err")")"
for ns in rn-pull rn-crash; do
  kubectl apply -f - >/dev/null <<EOF
apiVersion: rollgate.io/v1alpha1
kind: ContainerRollout
metadata: {name: $ns, namespace: $APP_NS}
spec:
  images: {app: $ROLLGATE_REGISTRY/testapp:${bad_tag[$ns]}}
  environments:
  - name: only
    namespace: $ns
    targets: [{deployment: app, containers: {app: app}}]
  progressDeadlineSeconds: 600
EOF
done
bad_phase() { kubectl get containerrollout -n "$APP_NS" "$1" -o jsonpath='{.status.phase}' 2>/dev/null; }
bad_done() {
  [[ "$(bad_phase rn-pull)" =~ ^(RolledBack|Failed|Succeeded)$ && "$(bad_phase rn-crash)" =~ ^(RolledBack|Failed|Succeeded)$ ]]
}
poll 240 bad_done || true
restored() {
  kubectl get deploy -n "$1" app -o json | jq -e --arg i "$ROLLGATE_REGISTRY/testapp:1.0" \
    '.spec.template.spec.containers[0].image == $i and .status.availableReplicas == 1'
}
for ns in rn-pull rn-crash; do
  st=$(kubectl get containerrollout -n "$APP_NS" "$ns" -o json | jq -c '.status')
  env=$(jq -c '.environments[0]' <<<"$st")
  image=$ROLLGATE_REGISTRY/testapp:${bad_tag[$ns]}
  if [[ "$(jq -r .phase <<<"$st")" == RolledBack ]] &&
    jq -e --arg r "${bad_reason[$ns]}" --arg i "$image" --arg w "${bad_words[$ns]}" \
      '.reason == $r and (.message | contains($i)) and (.message | contains($w))' <<<"$env" >/dev/null; then
    took=$(($(date -d "$(jq -r .finishedAt <<<"$env")" +%s) - $(date -d "$(jq -r .startedAt <<<"$env")" +%s)))
    pass "$ns: ${bad_reason[$ns]} ${took}s after the environment started (progress deadline 600 s), rolled back: $(one_line "$(jq -r .message <<<"$env")")"
    echo "time from the patch to ${bad_reason[$ns]} ($image): ${took}s"
  else
    fail "$ns: want RolledBack with ${bad_reason[$ns]} naming $image and '${bad_words[$ns]}', got $(one_line "$st")"
  fi
  if poll 30 restored "$ns"; then
    pass "$ns: the Deployment runs testapp:1.0 again and is available"
  else
    fail "$ns: not restored: $(one_line "$(kubectl get deploy -n "$ns" app -o json | jq -c '{image: .spec.template.spec.containers[0].image, status: .status}')")"
  fi
done
forbidden=$(kubectl logs -n "$SYSTEM_NS" "$pod" 2>&1 | grep -c -i forbidden || true)
if [[ "$forbidden" == 0 ]]; then
  pass "the controller logged no Forbidden (the chart's RBAC suffices)"
else
  fail "the controller logged $forbidden Forbidden line(s): $(one_line "$(kubectl logs -n "$SYSTEM_NS" "$pod" 2>&1 | grep -i -m 2 forbidden)")"
fi

# --- 5. helm uninstall -------------------------------------------------------------------------------
t0=$(now)
gone() {
  [[ -z "$(kubectl get deploy,pods -n "$SYSTEM_NS" -l "$selector" -o name 2>/dev/null)" ]] &&
    ! "$helm" status "$RELEASE" -n "$SYSTEM_NS" >/dev/null 2>&1
}
if "$helm" uninstall "$RELEASE" -n "$SYSTEM_NS" >"$work/uninstall.log" 2>&1 && poll 60 gone; then
  pass "helm uninstall: the release, its Deployment and the controller pod are gone in $(since "$t0")s"
else
  fail "helm uninstall: $(one_line "$(cat "$work/uninstall.log"; kubectl get deploy,pods -n "$SYSTEM_NS" -o name 2>&1)")"
fi

# --- 6. down -----------------------------------------------------------------------------------------
t0=$(now)
# The bridge goes only after the API server stopped: it shuts down on SIGTERM, without SIGKILL.
if out=$(bash "$repo/hack/cluster.sh" down "$cluster" 2>&1) && [[ "$out" != *SIGKILL* ]]; then
  pass "hack/cluster.sh down in $(since "$t0")s, every component stopped on SIGTERM: $(one_line "$out")"
else
  fail "hack/cluster.sh down: $(one_line "$out")"
fi
if ! ip link show rollgate0 >/dev/null 2>&1 && [[ ! -e "$cluster" ]]; then
  pass "no bridge rollgate0 left; the cluster directory is gone"
else
  fail "left after down: $(one_line "$(ip -br addr show rollgate0 2>&1) $(ls -d "$cluster" 2>&1)")"
fi

finish
