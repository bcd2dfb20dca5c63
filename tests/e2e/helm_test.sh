#!/usr/bin/env bash
# End-to-end test of the Helm chart (charts/rollgate) and the plain install manifests
# (manifests/install/rollgate.yaml) against the real local control plane:
#
#  1. Single sources: the chart's CRD is byte-identical to crds/, and hack/render-manifests.sh
#     --check passes (chart CRD and alerts copies, manifests/install/rollgate.yaml up to date).
#  2. `helm lint --strict` and `helm template` with values.yaml and each values-<env>.yaml, with the
#     expected objects per environment; bad values are refused with a clear message.
#  3. Server-side dry runs: the plain install manifests (kubectl apply --dry-run=server), a
#     staging release (helm install --dry-run=server), and the NetworkPolicy that
#     networkPolicy.enabled renders (none by default).
#  4. Real installs of a dev release and a prod release, each in its own namespace labelled
#     pod-security.kubernetes.io/enforce=restricted: the Deployment's pods are admitted, scheduled
#     and Running (kwok), the RBAC objects, Service, PDB (prod), ServiceMonitor/PrometheusRule
#     (prod) and the CRD exist, and a non-compliant pod is refused in the same namespace (proof
#     that the admission actually enforces).
#  5. Least privilege, checked with `kubectl auth can-i --as=<the chart's ServiceAccount>`: what
#     the controller needs is allowed, everything else (Secrets, deleting Deployments, writing
#     rollouts outside /status, other namespaces in dev, ...) is denied.
#  5b. Tenants: users bound (RoleBinding) to the built-in `edit`, `admin` and `view` ClusterRoles
#     in a namespace get ContainerRollout rights through the chart's aggregated ClusterRoles
#     (<release>-edit, <release>-view; aggregated by the real controller-manager): edit/admin may
#     create and patch rollouts but never write /status, view may only read; both in that
#     namespace only.
#  6. When ROLLGATE_CONTROLLER_BIN is set: the real controller, run as a local process with the
#     dev release's ServiceAccount token and the Deployment's own arguments, completes a rollout
#     (so the RBAC is also sufficient) and logs no Forbidden.
#
# prometheus-operator's CRDs are not part of the local control plane: when they are missing, the
# test installs stand-ins (same group/version/kinds, schema-less) so that the ServiceMonitor and
# PrometheusRule are created by the real API server, and removes them at the end.
#
# Everything runs in namespaces of its own (deleted at the end) with release names of its own;
# helm uninstall removes the cluster-scoped RBAC objects. The CRD stays installed (shared cluster).
# Prints PASS/FAIL/SKIP per check and exits non-zero when any check fails.
#
# Needs KUBECONFIG (the cluster's admin kubeconfig) and jq; kubectl and helm come from
# $CONTROL_PLANE_BIN (default: computed from hack/control-plane-versions.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
if [[ -z "${CONTROL_PLANE_BIN:-}" ]]; then
  # shellcheck source-path=SCRIPTDIR source=../../hack/control-plane-versions.sh
  source "$repo/hack/control-plane-versions.sh"
fi
export CONTROL_PLANE_BIN
kubectl=$CONTROL_PLANE_BIN/kubectl
helm=$CONTROL_PLANE_BIN/helm
for b in "$kubectl" "$helm"; do
  [[ -x "$b" ]] || { echo "FAIL: no $(basename "$b") at $b (run hack/build-control-plane.sh)"; exit 1; }
done
[[ -n "${KUBECONFIG:-}" && -f "$KUBECONFIG" ]] || { echo "FAIL: KUBECONFIG is not set to a file"; exit 1; }
command -v jq >/dev/null || { echo "FAIL: jq is not installed (hack/bootstrap.sh installs it)"; exit 1; }
export KUBECONFIG

chart=$repo/charts/rollgate
crd_file=$repo/crds/rollgate.io_containerrollouts.yaml
crd_name=containerrollouts.rollgate.io
alerts_copy=$chart/files/rollgate-alerts.yaml
controller_bin=${ROLLGATE_CONTROLLER_BIN:-}

work=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-helm-test.XXXXXX")
# Private discovery cache and helm home: a shared cache may predate the CRDs installed here.
export KUBECACHEDIR=$work/kube-cache HELM_CACHE_HOME=$work/helm/cache \
  HELM_CONFIG_HOME=$work/helm/config HELM_DATA_HOME=$work/helm/data

suffix=$$-$RANDOM
dev_ns=rg-helm-dev-$suffix
app_ns=rg-helm-app-$suffix # the dev release's watchNamespace
prod_ns=rg-helm-prod-$suffix
staging_ns=rg-helm-staging-$suffix
dev_rel=rollgate-dev-$suffix
prod_rel=rollgate-prod-$suffix
staging_rel=rollgate-staging-$suffix

failures=0
installed=()       # "release namespace" pairs to uninstall
created_crds=()    # stand-in CRDs created here
created_ns=()      # namespaces created here
controller_pid=""

kc() { "$kubectl" "$@"; }
pass() { echo "PASS: $*"; }
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
skip() { echo "SKIP: $*"; }
one_line() { tr '\n' ' ' <<<"$1" | sed 's/  */ /g' | cut -c1-600; }
# check DESCRIPTION CMD...: PASS when CMD succeeds, FAIL (with its output) otherwise.
check() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then pass "$what"; else fail "$what: $(one_line "$out")"; fi
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local pair crd n
  if [[ -n "$controller_pid" ]] && kill -0 "$controller_pid" 2>/dev/null; then
    kill -TERM "$controller_pid" 2>/dev/null || true
    wait "$controller_pid" 2>/dev/null || true
  fi
  # helm uninstall removes the cluster-scoped objects (ClusterRole, ClusterRoleBinding) too.
  for pair in "${installed[@]}"; do
    if ! "$helm" uninstall "${pair% *}" -n "${pair#* }" >/dev/null 2>&1; then
      echo "warning: helm uninstall ${pair% *} -n ${pair#* } failed" >&2
    fi
  done
  for n in "${created_ns[@]}"; do kc delete namespace "$n" --wait=false >/dev/null 2>&1 || true; done
  for crd in "${created_crds[@]}"; do kc delete crd "$crd" --wait=false >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# new_ns NAME [restricted]: create a namespace (optionally enforcing the restricted PSS) and wait
# for its default ServiceAccount.
new_ns() {
  kc create namespace "$1" >/dev/null
  created_ns+=("$1")
  if [[ "${2:-}" == restricted ]]; then
    kc label namespace "$1" pod-security.kubernetes.io/enforce=restricted \
      pod-security.kubernetes.io/enforce-version=latest >/dev/null
  fi
  for _ in $(seq 1 100); do
    kc -n "$1" get serviceaccount default >/dev/null 2>&1 && return 0
    sleep 0.1
  done
}

start=$SECONDS

# --- 1. Single sources ---------------------------------------------------------------------------
if cmp -s "$crd_file" "$chart/crds/rollgate.io_containerrollouts.yaml"; then
  pass "charts/rollgate/crds/ holds a byte-identical copy of crds/rollgate.io_containerrollouts.yaml"
else
  fail "the chart's CRD differs from crds/rollgate.io_containerrollouts.yaml: run hack/render-manifests.sh"
fi
if [[ $(find "$chart/crds" -type f | wc -l) -eq 1 ]]; then
  pass "the chart's crds/ holds only that CRD"
else
  fail "unexpected files in charts/rollgate/crds: $(find "$chart/crds" -type f | tr '\n' ' ')"
fi
check "hack/render-manifests.sh --check: chart copies and manifests/install/rollgate.yaml are fresh" \
  env HELM="$helm" bash "$repo/hack/render-manifests.sh" --check
if [[ -s "$alerts_copy" ]]; then
  pass "the chart carries the alerts (files/rollgate-alerts.yaml)"
else
  fail "the chart has no files/rollgate-alerts.yaml: run hack/render-manifests.sh"
fi

# --- 2. helm lint / helm template per values file ------------------------------------------------
values_files=(values.yaml values-dev.yaml values-staging.yaml values-prod.yaml)
for v in "${values_files[@]}"; do
  check "helm lint --strict -f $v" "$helm" lint --strict "$chart" -f "$chart/$v"
  if out=$("$helm" template rollgate-render "$chart" -n render-ns -f "$chart/$v" 2>&1); then
    printf '%s\n' "$out" >"$work/template-$v"
    pass "helm template -f $v renders ($(grep -c '^kind:' "$work/template-$v") objects)"
  else
    fail "helm template -f $v: $(one_line "$out")"
    : >"$work/template-$v"
  fi
done
# kinds FILE: the sorted kinds of a rendered file, one line.
kinds() { grep '^kind:' "$1" | awk '{ print $2 }' | sort | tr '\n' ' ' | sed 's/ $//'; }
expect_kinds() {
  local v=$1 want=$2 got
  got=$(kinds "$work/template-$v")
  if [[ "$got" == "$want" ]]; then pass "$v renders: $got"; else fail "$v renders [$got], want [$want]"; fi
}
# Four ClusterRoles: the controller's, the tenants' <release>-edit and <release>-view, and
# <release>-metrics-reader (metrics.secure) for Prometheus.
base_kinds="ClusterRole ClusterRole ClusterRole ClusterRole ClusterRoleBinding Deployment"
expect_kinds values.yaml "$base_kinds PodDisruptionBudget Role RoleBinding Service ServiceAccount"
# dev: one replica (no PDB), no leader election (no Lease Role), Role/RoleBinding in watchNamespace.
expect_kinds values-dev.yaml "$base_kinds Role RoleBinding Service ServiceAccount"
mon_kinds="PrometheusRule ServiceMonitor"
for v in values-staging.yaml values-prod.yaml; do
  dash_kind=""
  [[ $v == values-prod.yaml ]] && dash_kind=ConfigMap # dashboard.enabled: the Grafana dashboard
  want=$(tr ' ' '\n' <<<"$base_kinds PodDisruptionBudget Role RoleBinding Service ServiceAccount $mon_kinds${dash_kind:+ $dash_kind}" | sort | tr '\n' ' ' | sed 's/ $//')
  expect_kinds "$v" "$want"
done
# prod ships the Grafana dashboard: a ConfigMap labelled for Grafana's sidecar that carries
# files/rollgate-dashboard.json verbatim (valid JSON, the same uid as the source).
dash_json=$("$helm" template rollgate-render "$chart" -n render-ns -f "$chart/values-prod.yaml" \
  --show-only templates/dashboard-configmap.yaml 2>/dev/null |
  "$kubectl" create --dry-run=client -o json -f - 2>/dev/null || true)
if [[ -n "$dash_json" && $(jq -r '.metadata.labels.grafana_dashboard' <<<"$dash_json") == 1 ]] &&
  [[ $(jq -r '.data["rollgate-dashboard.json"] | fromjson | .uid' <<<"$dash_json" 2>/dev/null) == \
    "$(jq -r .uid "$repo/manifests/dashboards/rollgate-dashboard.json")" ]]; then
  pass "prod: the Grafana dashboard ConfigMap (grafana_dashboard: \"1\") carries manifests/dashboards/rollgate-dashboard.json"
else
  fail "prod: no dashboard ConfigMap labelled grafana_dashboard=1 with the dashboard JSON"
fi
if grep -q -- '--namespace=app-dev' "$work/template-values-dev.yaml" &&
  ! grep -q -- '--leader-elect=true' "$work/template-values-dev.yaml" &&
  grep -q -- '--log-level=debug' "$work/template-values-dev.yaml"; then
  pass "dev: --namespace=app-dev, --log-level=debug, no leader election"
else
  fail "dev flags: $(grep -- '        - --' "$work/template-values-dev.yaml" | tr -s ' \n' ' ')"
fi
# Analysis endpoints: rendered into the --analysis-endpoints-file ConfigMap with the mounted
# Secrets' paths; none by default; an https endpoint without a CA is refused by the schema.
if "$helm" template rollgate-render "$chart" -n render-ns -f "$chart/values.yaml" \
  --set 'analysis.endpoints[0].url=https://prom.monitoring.svc:9090' \
  --set 'analysis.endpoints[0].caSecret.name=prom-ca' --set 'analysis.endpoints[0].caSecret.key=ca.crt' \
  --set 'analysis.endpoints[0].bearerTokenSecret.name=prom-reader' \
  --set 'analysis.endpoints[0].bearerTokenSecret.key=token' >"$work/template-analysis.yaml" 2>&1 &&
  grep -q -- '--analysis-endpoints-file=/etc/rollgate/analysis/endpoints/endpoints.json' "$work/template-analysis.yaml" &&
  grep -q 'bearerTokenFile\\":\\"/etc/rollgate/analysis/0-token/token' "$work/template-analysis.yaml" &&
  grep -q 'secretName: prom-reader' "$work/template-analysis.yaml" &&
  ! grep -q -- '--analysis-endpoints-file' "$work/template-values.yaml" &&
  ! "$helm" template rollgate-render "$chart" -n render-ns \
    --set 'analysis.endpoints[0].url=https://prom:9090' >/dev/null 2>&1; then
  pass "analysis endpoints: ConfigMap + Secret mounts + flag; none by default; https needs caSecret"
else
  fail "analysis endpoints: $(one_line "$(grep -- 'analysis' "$work/template-analysis.yaml" | head -5)")"
fi
# Registry credentials and CAs (spec.imagePolicy): the dockerconfigjson Secret and the CA bundle
# mounted read-only and named by flags; neither by default; a CA from both a Secret and a
# ConfigMap is refused by the schema.
if "$helm" template rollgate-render "$chart" -n render-ns -f "$chart/values.yaml" \
  --set registry.credentialsSecret=pull-creds --set registry.caBundle.configMap=registry-ca \
  --set 'registry.plainHTTP={registry.local:5000}' >"$work/template-registry.yaml" 2>&1 &&
  grep -q -- '--registry-auth-file=/etc/rollgate/registry-auth/.dockerconfigjson' "$work/template-registry.yaml" &&
  grep -q -- '--registry-ca-file=/etc/rollgate/registry-ca/ca.crt' "$work/template-registry.yaml" &&
  grep -q -- '--registry-plain-http=registry.local:5000' "$work/template-registry.yaml" &&
  grep -q 'secretName: pull-creds' "$work/template-registry.yaml" &&
  grep -q 'name: registry-ca$' "$work/template-registry.yaml" &&
  ! grep -q -- '--registry-' "$work/template-values.yaml" &&
  ! "$helm" template rollgate-render "$chart" -n render-ns --set registry.caBundle.secret=a \
    --set registry.caBundle.configMap=b >/dev/null 2>&1; then
  pass "registry: credentials Secret and CA mounted, --registry-auth-file/-ca-file/-plain-http; none by default"
else
  fail "registry values: $(one_line "$(grep -- 'registry' "$work/template-registry.yaml" | head -8)")"
fi
if grep -q -- '--leader-elect=true' "$work/template-values-prod.yaml" &&
  grep -q -- '--allowed-registries=registry.example.com,\*.registry.example.com' "$work/template-values-prod.yaml" &&
  grep -q -- 'replicas: 2' "$work/template-values-prod.yaml"; then
  pass "prod: 2 replicas, leader election, --allowed-registries"
else
  fail "prod flags: $(grep -- '        - --\|replicas:' "$work/template-values-prod.yaml" | tr -s ' \n' ' ')"
fi
if grep -q 'kind: PrometheusRule' "$work/template-values-prod.yaml" &&
  grep -q 'environment: prod' "$work/template-values-prod.yaml"; then
  pass "prod renders a PrometheusRule from files/rollgate-alerts.yaml with the environment=prod rule label"
else
  fail "prod: no PrometheusRule with the ruleLabels (environment: prod) rendered"
fi

# refused VALUE_ARGS... -- WANT: helm template must fail with a message containing WANT.
refused() {
  local want=${*: -1} out
  local args=("${@:1:$#-1}")
  if out=$("$helm" template bad "$chart" "${args[@]}" 2>&1); then
    fail "helm template ${args[*]} was accepted, want an error mentioning '$want'"
  elif grep -qF -- "$want" <<<"$out"; then
    pass "bad values refused (${args[*]}): $(one_line "$(grep -F -- "$want" <<<"$out" | head -n1)")"
  else
    fail "helm template ${args[*]} failed without mentioning '$want': $(one_line "$out")"
  fi
}
refused --set logLevel=verbose "logLevel"
refused --set replicaCount=2 --set leaderElection.enabled=false "needs leaderElection.enabled=true"
refused --set securityContext.allowPrivilegeEscalation=true "allowPrivilegeEscalation"
refused --set securityContext.runAsNonRoot=false "runAsNonRoot"
refused --set concurrency=100 "concurrency"
refused --set noSuchValue=1 "noSuchValue"
refused --set 'allowedRegistries={a.example.com,b c}' "allowedRegistries"
refused --set validatorResources.requests.memory=lots "validatorResources"
refused --set validatorResources.request.cpu=1 "validatorResources"
# The validator's resources reach the controller's flags (defaults, and an override).
if out=$("$helm" template rollgate-render "$chart" -n render-ns \
  --set validatorResources.limits.memory=2Gi 2>&1) &&
  grep -q -- '--validator-requests=cpu=10m,memory=64Mi' <<<"$out" &&
  grep -q -- '--validator-limits=cpu=1,memory=2Gi' <<<"$out"; then
  pass "validatorResources: --validator-requests=cpu=10m,memory=64Mi --validator-limits=cpu=1,memory=2Gi"
else
  fail "validatorResources not rendered as flags: $(grep -- '--validator-' <<<"$out" | tr -s ' \n' ' ')"
fi

# render_json ARGS...: helm template rollgate-render (namespace render-ns) as one JSON List.
render_json() {
  "$helm" template rollgate-render "$chart" -n render-ns "$@" |
    "$kubectl" create --dry-run=client -o json -f - | jq -s '{items: [.[] | (.items? // [.])[]]}'
}
# Tenant roles (default on): <release>-edit aggregated into edit and admin with the write verbs,
# <release>-view aggregated into view with the read verbs, neither with containerrollouts/status.
tenant_json=$(render_json 2>&1 || true)
# shellcheck disable=SC2016 # jq program
tenant_roles_ok='[.items[] | select(.kind == "ClusterRole" and (.metadata.name | test("-(edit|view)$")))
  | {n: .metadata.name,
     l: ([.metadata.labels | to_entries[] | select(.key | startswith("rbac.authorization.k8s.io/aggregate-to-")) | "\(.key)=\(.value)"] | sort),
     r: [.rules[] | {g: .apiGroups, r: .resources, v: (.verbs | sort)}]}] | sort_by(.n)'
want_tenant='[{"n":"rollgate-render-edit","l":["rbac.authorization.k8s.io/aggregate-to-admin=true","rbac.authorization.k8s.io/aggregate-to-edit=true"],"r":[{"g":["rollgate.io"],"r":["containerrollouts"],"v":["create","delete","get","list","patch","update","watch"]}]},{"n":"rollgate-render-view","l":["rbac.authorization.k8s.io/aggregate-to-view=true"],"r":[{"g":["rollgate.io"],"r":["containerrollouts"],"v":["get","list","watch"]}]}]'
got_tenant=$(jq -c "$tenant_roles_ok" <<<"$tenant_json" 2>&1 || true)
if [[ "$got_tenant" == "$want_tenant" ]]; then
  pass "tenant roles: rollgate-render-edit (aggregate-to-edit, -admin; create/update/patch/delete/get/list/watch) and rollgate-render-view (aggregate-to-view; get/list/watch), no /status"
else
  fail "tenant roles rendered as $(one_line "$got_tenant"), want $want_tenant"
fi
# tenantRoles.create=false: only the controller's own ClusterRole and the metrics reader, nothing
# aggregated.
if out=$(render_json --set tenantRoles.create=false 2>&1) &&
  [[ $(jq -c '[.items[] | select(.kind == "ClusterRole") | .metadata.name]' <<<"$out") == '["rollgate-render","rollgate-render-metrics-reader"]' ]] &&
  [[ $(jq '[.items[] | select(.metadata.labels // {} | keys | any(startswith("rbac.authorization.k8s.io/aggregate-to-")))] | length' <<<"$out") == 0 ]]; then
  pass "tenantRoles.create=false: no tenant ClusterRoles (only the controller's rollgate-render and its metrics reader)"
else
  fail "tenantRoles.create=false still renders: $(one_line "$(jq -c '[.items[] | select(.kind == "ClusterRole") | .metadata.name]' <<<"$out" 2>&1 || echo "$out")")"
fi
# metrics.secure=false: plain /metrics, no reviews granted, no reader role, a plain ServiceMonitor.
if out=$(render_json --set metrics.secure=false 2>&1) &&
  [[ $(jq '[.items[] | select(.kind == "ClusterRole") | .metadata.name | select(endswith("-metrics-reader"))] | length' <<<"$out") == 0 ]] &&
  [[ $(jq '[.items[] | select(.kind == "ClusterRole") | .rules[]? | .resources[]? | select(. == "tokenreviews" or . == "subjectaccessreviews")] | length' <<<"$out") == 0 ]] &&
  [[ $(jq '[.items[] | select(.kind == "Deployment") | .spec.template.spec.containers[0].args[] | select(startswith("--metrics-secure"))] | length' <<<"$out") == 0 ]] &&
  ! "$helm" template rollgate-render "$chart" --set metrics.secure=false \
    --set metrics.serviceMonitor.enabled=true | grep -qE '^ *(scheme: https|bearerTokenFile:)' &&
  "$helm" template rollgate-render "$chart" --set metrics.serviceMonitor.enabled=true |
  grep -qE '^ *scheme: https'; then
  pass "metrics.secure=false: plain /metrics, no token reviews granted, no metrics-reader role, a plain ServiceMonitor (https by default)"
else
  fail "metrics.secure=false renders secure pieces: $(one_line "${out:0:300}")"
fi
# metrics.certSecret: the Secret is mounted and named by --metrics-cert-dir.
if out=$(render_json --set metrics.certSecret=rollgate-metrics-tls 2>&1) &&
  [[ $(jq -r '.items[] | select(.kind == "Deployment") | .spec.template.spec.volumes[] | select(.name == "metrics-tls") | .secret.secretName' <<<"$out") == rollgate-metrics-tls ]] &&
  [[ $(jq '[.items[] | select(.kind == "Deployment") | .spec.template.spec.containers[0].args[] | select(. == "--metrics-cert-dir=/etc/rollgate/metrics-tls")] | length' <<<"$out") == 1 ]]; then
  pass "metrics.certSecret: mounted at /etc/rollgate/metrics-tls and passed as --metrics-cert-dir"
else
  fail "metrics.certSecret: $(one_line "${out:0:300}")"
fi
# No NetworkPolicy unless networkPolicy.enabled.
np_default=""
for v in "${values_files[@]}"; do
  if grep -q '^kind: NetworkPolicy' "$work/template-$v"; then np_default+=" $v"; fi
done
if [[ -z "$np_default" ]]; then
  pass "no NetworkPolicy rendered by default (${values_files[*]})"
else
  fail "a NetworkPolicy is rendered without networkPolicy.enabled by:$np_default"
fi
refused --set-json 'networkPolicy.metricsFrom=[{"podSelektor":{}}]' "networkPolicy/metricsFrom/0"
refused --set-json 'networkPolicy.metricsFrom=[{}]' "networkPolicy/metricsFrom/0"
refused --set-json 'networkPolicy.egress=[{"too":[]}]' "networkPolicy/egress/0"
refused --set tenantRoles.create=maybe "tenantRoles"

# --- CRDs the chart needs on the cluster ---------------------------------------------------------
if kc get crd "$crd_name" >/dev/null 2>&1; then
  crd_preexisting=1
else
  crd_preexisting=0
fi
# prometheus-operator stand-ins (only when the real ones are missing).
for kind in ServiceMonitor:servicemonitors PrometheusRule:prometheusrules; do
  k=${kind%%:*} plural=${kind##*:}
  if ! kc get crd "$plural.monitoring.coreos.com" >/dev/null 2>&1; then
    kc apply -f - >/dev/null <<EOF
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: $plural.monitoring.coreos.com
  labels: {rollgate.io/test-stand-in: "true"}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: $k, plural: $plural, listKind: ${k}List, singular: $(tr '[:upper:]' '[:lower:]' <<<"$k")}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
EOF
    created_crds+=("$plural.monitoring.coreos.com")
    kc wait --for=condition=Established --timeout=60s "crd/$plural.monitoring.coreos.com" >/dev/null
  fi
done
((${#created_crds[@]} == 0)) || echo "info: installed stand-in CRDs for ${created_crds[*]} (removed at the end)"

# --- 3. Server-side dry runs ---------------------------------------------------------------------
install_ns=rollgate-system
made_install_ns=0
if ! kc get namespace "$install_ns" >/dev/null 2>&1; then
  kc create namespace "$install_ns" >/dev/null
  made_install_ns=1
  created_ns+=("$install_ns")
fi
check "manifests/install/rollgate.yaml accepted by the API server (apply --server-side --dry-run=server)" \
  kc apply --server-side --force-conflicts --field-manager=rollgate-helm-e2e --dry-run=server \
  -f "$repo/manifests/install/rollgate.yaml"
if ((made_install_ns)); then
  kc delete namespace "$install_ns" --wait=false >/dev/null 2>&1 || true
fi

new_ns "$staging_ns" restricted
if out=$("$helm" install "$staging_rel" "$chart" -n "$staging_ns" -f "$chart/values-staging.yaml" \
  --dry-run=server 2>&1); then
  pass "helm install --dry-run=server -f values-staging.yaml accepted by the API server"
else
  fail "helm install --dry-run=server -f values-staging.yaml: $(one_line "$out")"
fi

# networkPolicy.enabled: one NetworkPolicy selecting exactly the Deployment's pods; ingress on the
# health port from anywhere and on the metrics port only from metricsFrom; egress restricted only
# when networkPolicy.egress is given. The API server must accept it.
np_from='[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}},"podSelector":{"matchLabels":{"app.kubernetes.io/name":"prometheus"}}},{"ipBlock":{"cidr":"10.0.0.0/8","except":["10.1.0.0/16"]}}]'
np_egress='[{"to":[{"ipBlock":{"cidr":"10.96.0.1/32"}}],"ports":[{"port":443,"protocol":"TCP"},{"port":6443,"protocol":"TCP"}]},{"ports":[{"port":53,"protocol":"UDP"},{"port":53,"protocol":"TCP"}]}]'
# np_case DESCRIPTION WANT_JQ ARGS...: render with networkPolicy.enabled=true and ARGS; exactly one
# NetworkPolicy whose podSelector is the Deployment's selector, WANT_JQ true of its spec, and
# `kubectl apply --dry-run=server` accepts it in $staging_ns.
np_case() {
  local what=$1 want=$2 json np sel out
  shift 2
  if ! json=$(render_json -n "$staging_ns" --set networkPolicy.enabled=true "$@" 2>&1); then
    fail "networkPolicy ($what): helm template: $(one_line "$json")"
    return
  fi
  np=$(jq -c '[.items[] | select(.kind == "NetworkPolicy")]' <<<"$json")
  sel=$(jq -c '.items[] | select(.kind == "Deployment") | .spec.selector.matchLabels' <<<"$json")
  if [[ $(jq length <<<"$np") != 1 ]]; then
    fail "networkPolicy ($what): $(jq length <<<"$np") NetworkPolicies rendered, want 1"
    return
  fi
  np=$(jq -c '.[0]' <<<"$np")
  if [[ $(jq -c .spec.podSelector.matchLabels <<<"$np") != "$sel" || -z "$sel" ]]; then
    fail "networkPolicy ($what): podSelector $(jq -c .spec.podSelector <<<"$np") is not the Deployment's selector $sel"
  elif ! jq -e "$want" <<<"$np" >/dev/null; then
    fail "networkPolicy ($what): spec $(one_line "$(jq -c .spec <<<"$np")") does not satisfy $want"
  else
    pass "networkPolicy ($what): one NetworkPolicy on the Deployment's pods: $(jq -c '.spec | {policyTypes, ingress: [.ingress[] | {ports: [.ports[].port], from: (.from | length)}], egress: (.egress | length)}' <<<"$np")"
  fi
  if out=$(jq '.' <<<"$np" | kc -n "$staging_ns" apply --dry-run=server -f - 2>&1); then
    pass "networkPolicy ($what): accepted by the API server (apply --dry-run=server): $(one_line "$out")"
  else
    fail "networkPolicy ($what): refused by the API server: $(one_line "$out")"
  fi
}
# shellcheck disable=SC2016 # jq programs
{
  np_health='(.spec.ingress | map(select(.ports == [{"port": "health", "protocol": "TCP"}] and .from == null)) | length) == 1'
  np_case "enabled, no metricsFrom: health port only, metrics from nobody, egress open" \
    "$np_health and .spec.policyTypes == [\"Ingress\"] and (.spec.ingress | length) == 1 and .spec.egress == null"
  np_case "metricsFrom and egress" \
    "$np_health and .spec.policyTypes == [\"Ingress\", \"Egress\"] and (.spec.ingress | length) == 2
     and (.spec.ingress | map(select(.ports == [{\"port\": \"metrics\", \"protocol\": \"TCP\"}])) | .[0].from) == $np_from
     and .spec.egress == $np_egress" \
    --set-json "networkPolicy.metricsFrom=$np_from" --set-json "networkPolicy.egress=$np_egress"
}

# --- 4. Real installs ----------------------------------------------------------------------------
new_ns "$dev_ns" restricted
new_ns "$app_ns"
new_ns "$prod_ns" restricted

# install RELEASE NS VALUES [helm args...]
install() {
  local rel=$1 ns=$2 v=$3 out
  shift 3
  installed+=("$rel $ns")
  if out=$("$helm" install "$rel" "$chart" -n "$ns" -f "$chart/$v" "$@" --wait --timeout 120s 2>&1); then
    pass "helm install $rel -f $v --wait: Deployment ready in namespace $ns (restricted PSS)"
    if grep -qi 'warning' <<<"$out"; then
      fail "helm install $rel printed warnings: $(one_line "$(grep -i warning <<<"$out")")"
    fi
  else
    fail "helm install $rel -f $v: $(one_line "$out")"
    kc -n "$ns" get deploy,rs,pods -o wide 2>&1 | sed 's/^/  /'
    kc -n "$ns" get events --sort-by=.lastTimestamp 2>&1 | tail -n 10 | sed 's/^/  /'
  fi
}
install "$dev_rel" "$dev_ns" values-dev.yaml --set "watchNamespace=$app_ns"
install "$prod_rel" "$prod_ns" values-prod.yaml

if kc wait --for=condition=Established --timeout=30s "crd/$crd_name" >/dev/null 2>&1; then
  if ((crd_preexisting)); then
    pass "CRD $crd_name is installed and Established (it existed before; helm leaves existing CRDs alone)"
  else
    pass "CRD $crd_name created by helm install from the chart's crds/ and Established"
  fi
else
  fail "CRD $crd_name is not installed/Established after helm install"
fi

# pods_ok RELEASE NS REPLICAS: the release's pods exist, are scheduled, Running and Ready, and
# carry the restricted security settings.
pods_ok() {
  local rel=$1 ns=$2 want=$3 json n bad
  json=$(kc -n "$ns" get pods -l "app.kubernetes.io/instance=$rel" -o json)
  n=$(jq '.items | length' <<<"$json")
  bad=$(jq -r '[.items[] | select(.status.phase != "Running" or (.spec.nodeName // "") == ""
      or ([.status.conditions[]? | select(.type == "Ready" and .status == "True")] | length) == 0)
      | .metadata.name] | join(" ")' <<<"$json")
  if [[ "$n" == "$want" && -z "$bad" ]]; then
    pass "$rel: $n pod(s) admitted under enforce=restricted, scheduled ($(jq -r '[.items[].spec.nodeName] | join(",")' <<<"$json")), Running and Ready"
  else
    fail "$rel: $n pod(s), want $want Running+Ready; not ready: [$bad]"
  fi
  if jq -e 'all(.items[]; .spec.securityContext.runAsNonRoot == true
      and .spec.securityContext.seccompProfile.type == "RuntimeDefault"
      and all(.spec.containers[]; .securityContext.allowPrivilegeEscalation == false
        and .securityContext.readOnlyRootFilesystem == true
        and .securityContext.runAsUser == 65532
        and .securityContext.capabilities.drop == ["ALL"]
        and .livenessProbe.httpGet.path == "/healthz" and .readinessProbe.httpGet.path == "/readyz"
        and .resources.limits.memory != null and .resources.requests.cpu != null))' \
    <<<"$json" >/dev/null && [[ "$n" -gt 0 ]]; then
    pass "$rel: pods run non-root (65532), read-only root fs, no privilege escalation, drop ALL, RuntimeDefault seccomp, probes /healthz /readyz, resources set"
  else
    fail "$rel: pod security settings/probes/resources not as expected: $(one_line "$(jq -c '[.items[] | {sc: .spec.securityContext, c: [.spec.containers[] | .securityContext]}]' <<<"$json")")"
  fi
}
pods_ok "$dev_rel" "$dev_ns" 1
pods_ok "$prod_rel" "$prod_ns" 2

# The namespace really enforces: a pod without the restricted settings is refused at creation.
if out=$(kc -n "$dev_ns" run pss-probe --image=registry.example.com/pss-probe:1 --restart=Never 2>&1); then
  fail "a non-compliant pod was admitted in $dev_ns; the restricted PSS is not enforced"
elif grep -q 'violates PodSecurity "restricted' <<<"$out"; then
  pass "a pod without the restricted settings is refused in $dev_ns ($(one_line "$out" | cut -c1-120)...)"
else
  fail "non-compliant pod refused for another reason: $(one_line "$out")"
fi

# exists DESCRIPTION ARGS...: kubectl get ARGS succeeds.
exists() {
  local what=$1
  shift
  if kc get "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what: kubectl get $* failed"; fi
}
absent() {
  local what=$1
  shift
  if kc get "$@" >/dev/null 2>&1; then fail "$what: kubectl get $* found it"; else pass "$what"; fi
}
exists "dev: ServiceAccount, Deployment, metrics Service" -n "$dev_ns" "serviceaccount/$dev_rel" "deployment/$dev_rel" "service/$dev_rel-metrics"
exists "dev: Role + RoleBinding in the watched namespace $app_ns" -n "$app_ns" "role/$dev_rel" "rolebinding/$dev_rel"
exists "dev: ClusterRole + ClusterRoleBinding (namespaces, reviews)" "clusterrole/$dev_rel" "clusterrolebinding/$dev_rel"
if [[ $(kc get "clusterrole/$dev_rel" -o json | jq -c '[.rules[] | {g: .apiGroups, r: .resources, v: .verbs}]') == \
  '[{"g":[""],"r":["namespaces"],"v":["get","list","watch"]},{"g":["authentication.k8s.io"],"r":["tokenreviews"],"v":["create"]},{"g":["authorization.k8s.io"],"r":["subjectaccessreviews"],"v":["create"]}]' ]]; then
  pass "dev: the ClusterRole grants only get/list/watch on namespaces and the scrapers' token and access reviews"
else
  fail "dev ClusterRole rules: $(kc get "clusterrole/$dev_rel" -o json | jq -c .rules)"
fi
absent "dev: no PodDisruptionBudget with one replica" -n "$dev_ns" "poddisruptionbudget/$dev_rel"
absent "dev: no leader-election Role" -n "$dev_ns" "role/$dev_rel-leader-election"
exists "prod: ServiceAccount, Deployment, metrics Service, PDB" -n "$prod_ns" "serviceaccount/$prod_rel" "deployment/$prod_rel" "service/$prod_rel-metrics" "poddisruptionbudget/$prod_rel"
exists "prod: ClusterRole + ClusterRoleBinding" "clusterrole/$prod_rel" "clusterrolebinding/$prod_rel"
exists "prod: leader-election Role + RoleBinding" -n "$prod_ns" "role/$prod_rel-leader-election" "rolebinding/$prod_rel-leader-election"
exists "prod: ServiceMonitor" -n "$prod_ns" "servicemonitors.monitoring.coreos.com/$prod_rel"
exists "prod: PrometheusRule" -n "$prod_ns" "prometheusrules.monitoring.coreos.com/$prod_rel"
# Every rule of the source made it, alerts carry the prod label, {{ $labels.x }} is untouched.
rule_json=$(kc -n "$prod_ns" get "prometheusrules.monitoring.coreos.com/$prod_rel" -o json 2>/dev/null || echo '{}')
src_rules=$(grep -cE '^[[:space:]]*(-[[:space:]]+)?(alert|record):' "$alerts_copy" || true)
live_rules=$(jq '[.spec.groups[]?.rules[]?] | length' <<<"$rule_json")
unlabelled=$(jq -r '[.spec.groups[]?.rules[]? | select(.alert != null and .labels.environment != "prod") | .alert] | join(" ")' <<<"$rule_json")
if [[ "$live_rules" == "$src_rules" && "$src_rules" -gt 0 && -z "$unlabelled" ]]; then
  pass "prod: the PrometheusRule holds all $src_rules rules of manifests/alerts/rollgate-alerts.yaml, every alert labelled environment=prod"
else
  fail "prod PrometheusRule: $live_rules rules (source: $src_rules); alerts without environment=prod: [$unlabelled]"
fi
# shellcheck disable=SC2016 # a literal $labels
if ! grep -q '{{ *\$labels' "$alerts_copy" || jq -e '[.. | strings | select(test("[{][{] *[$]labels"))] | length > 0' <<<"$rule_json" >/dev/null; then
  pass "prod: alert templates ({{ \$labels.x }}) reach the PrometheusRule untouched by helm"
else
  fail "prod: the alerts' {{ \$labels.x }} templates were lost in the PrometheusRule"
fi
pdb_allowed=$(kc -n "$prod_ns" get "poddisruptionbudget/$prod_rel" -o jsonpath='{.status.disruptionsAllowed}' 2>/dev/null || true)
for _ in $(seq 1 50); do
  [[ "$pdb_allowed" == 1 ]] && break
  sleep 0.2
  pdb_allowed=$(kc -n "$prod_ns" get "poddisruptionbudget/$prod_rel" -o jsonpath='{.status.disruptionsAllowed}' 2>/dev/null || true)
done
if [[ "$pdb_allowed" == 1 ]]; then
  pass "prod: the PDB selects the 2 pods and allows 1 disruption"
else
  fail "prod: PDB disruptionsAllowed=$pdb_allowed, want 1"
fi
endpoints=$(kc -n "$prod_ns" get endpointslices -l "kubernetes.io/service-name=$prod_rel-metrics" -o json |
  jq '[.items[].endpoints[]?] | length')
if [[ "$endpoints" == 2 ]]; then
  pass "prod: the metrics Service selects both controller pods (2 endpoints)"
else
  fail "prod: the metrics Service has $endpoints endpoints, want 2"
fi

# --- 5. Least privilege --------------------------------------------------------------------------
# user WHO yes|no VERB RESOURCE [args]: kubectl auth can-i as WHO (a user or a ServiceAccount).
user() {
  local who=$1 want=$2 got
  shift 2
  got=$(kc auth can-i "$@" --as="$who" 2>/dev/null || true)
  if [[ "$got" == "$want" ]]; then
    pass "$who can-i $* = $got"
  else
    fail "$who can-i $* = ${got:-error}, want $want"
  fi
}
# can SA_NS SA yes|no VERB RESOURCE [args]: kubectl auth can-i as the ServiceAccount.
can() {
  local sa_ns=$1 sa=$2
  shift 2
  user "system:serviceaccount:$sa_ns:$sa" "$@"
}
prod_sa=(can "$prod_ns" "$prod_rel")
"${prod_sa[@]}" yes get containerrollouts.rollgate.io -n default
"${prod_sa[@]}" yes watch containerrollouts.rollgate.io --all-namespaces
"${prod_sa[@]}" yes update containerrollouts.rollgate.io --subresource=status -n default
"${prod_sa[@]}" no update containerrollouts.rollgate.io -n default
"${prod_sa[@]}" no patch containerrollouts.rollgate.io -n default
"${prod_sa[@]}" no delete containerrollouts.rollgate.io -n default
"${prod_sa[@]}" no create containerrollouts.rollgate.io -n default
"${prod_sa[@]}" yes list deployments.apps --all-namespaces
"${prod_sa[@]}" yes patch deployments.apps -n default
"${prod_sa[@]}" no update deployments.apps -n default
"${prod_sa[@]}" no delete deployments.apps -n default
"${prod_sa[@]}" no create deployments.apps -n default
"${prod_sa[@]}" no patch deployments.apps --subresource=scale -n default
"${prod_sa[@]}" yes watch pods --all-namespaces
"${prod_sa[@]}" no create pods -n default
"${prod_sa[@]}" no delete pods -n default
"${prod_sa[@]}" no create pods --subresource=exec -n default
"${prod_sa[@]}" yes create jobs.batch -n default
"${prod_sa[@]}" yes get jobs.batch -n default
"${prod_sa[@]}" yes delete jobs.batch -n default
"${prod_sa[@]}" no update jobs.batch -n default
"${prod_sa[@]}" no list jobs.batch --all-namespaces
"${prod_sa[@]}" no get pods --subresource=log -n default
"${prod_sa[@]}" yes list namespaces
"${prod_sa[@]}" no patch namespaces
"${prod_sa[@]}" yes create events -n default
"${prod_sa[@]}" no delete events -n default
"${prod_sa[@]}" no get secrets -n default
"${prod_sa[@]}" no list secrets --all-namespaces
"${prod_sa[@]}" no get secrets -n "$prod_ns"
"${prod_sa[@]}" no get configmaps -n "$prod_ns"
"${prod_sa[@]}" no list nodes
"${prod_sa[@]}" no create serviceaccounts --subresource=token -n "$prod_ns"
"${prod_sa[@]}" no create clusterrolebindings.rbac.authorization.k8s.io
"${prod_sa[@]}" no escalate clusterroles.rbac.authorization.k8s.io
"${prod_sa[@]}" no impersonate serviceaccounts
"${prod_sa[@]}" no create customresourcedefinitions.apiextensions.k8s.io
"${prod_sa[@]}" yes create leases.coordination.k8s.io -n "$prod_ns"
"${prod_sa[@]}" yes get "leases.coordination.k8s.io/$prod_rel-leader" -n "$prod_ns"
"${prod_sa[@]}" yes update "leases.coordination.k8s.io/$prod_rel-leader" -n "$prod_ns"
"${prod_sa[@]}" no update leases.coordination.k8s.io/someone-elses-lease -n "$prod_ns"
"${prod_sa[@]}" no delete "leases.coordination.k8s.io/$prod_rel-leader" -n "$prod_ns"
"${prod_sa[@]}" no create leases.coordination.k8s.io -n default

dev_sa=(can "$dev_ns" "$dev_rel")
"${dev_sa[@]}" yes patch deployments.apps -n "$app_ns"
"${dev_sa[@]}" no patch deployments.apps -n default
"${dev_sa[@]}" no list deployments.apps --all-namespaces
"${dev_sa[@]}" no delete deployments.apps -n "$app_ns"
"${dev_sa[@]}" yes update containerrollouts.rollgate.io --subresource=status -n "$app_ns"
"${dev_sa[@]}" no update containerrollouts.rollgate.io -n "$app_ns"
"${dev_sa[@]}" no update containerrollouts.rollgate.io --subresource=status -n default
"${dev_sa[@]}" yes list namespaces
"${dev_sa[@]}" no get secrets -n "$app_ns"
"${dev_sa[@]}" no get secrets -n "$dev_ns"
"${dev_sa[@]}" no create leases.coordination.k8s.io -n "$dev_ns"

# --- 5b. Tenants: the aggregated ClusterRoles through the built-in edit/admin/view ---------------
# Both releases installed side by side in this cluster: their tenant roles do not clash.
exists "dev and prod: tenant ClusterRoles side by side" \
  "clusterrole/$dev_rel-edit" "clusterrole/$dev_rel-view" "clusterrole/$prod_rel-edit" "clusterrole/$prod_rel-view"
tenant_ns=rg-helm-tenant-$suffix
new_ns "$tenant_ns"
edit_user=rg-tenant-edit-$suffix admin_user=rg-tenant-admin-$suffix view_user=rg-tenant-view-$suffix
kc -n "$tenant_ns" create rolebinding tenant-edit --clusterrole=edit --user="$edit_user" >/dev/null
kc -n "$tenant_ns" create rolebinding tenant-admin --clusterrole=admin --user="$admin_user" >/dev/null
kc -n "$tenant_ns" create rolebinding tenant-view --clusterrole=view --user="$view_user" >/dev/null
cr=containerrollouts.rollgate.io
# The controller-manager's clusterrole-aggregation controller copies the rules into edit, admin
# and view; wait for it (and for the authorizer to see the change).
aggregated=0
for _ in $(seq 1 150); do
  if [[ $(kc auth can-i create "$cr" -n "$tenant_ns" --as="$edit_user" 2>/dev/null) == yes &&
    $(kc auth can-i create "$cr" -n "$tenant_ns" --as="$admin_user" 2>/dev/null) == yes &&
    $(kc auth can-i list "$cr" -n "$tenant_ns" --as="$view_user" 2>/dev/null) == yes ]]; then
    aggregated=1
    break
  fi
  sleep 0.2
done
builtin_rules=$(kc get clusterrole edit admin view -o json | jq -c '[.items[] | {n: .metadata.name,
  r: ([.rules[]? | select(any(.apiGroups[]?; . == "rollgate.io")) | {r: .resources, v: (.verbs | sort)}] | unique)}]')
if ((aggregated)); then
  pass "the controller-manager aggregated the tenant roles into edit, admin, view: $builtin_rules"
else
  fail "the built-in edit/admin/view ClusterRoles never granted ContainerRollouts (30 s): $builtin_rules"
fi
if [[ $(jq '[.[].r[] | select(any(.r[]; contains("/") or . == "*"))] | length' <<<"$builtin_rules") == 0 ]]; then
  pass "edit, admin and view grant no rollgate.io subresource (containerrollouts/status stays the controller's)"
else
  fail "a built-in role grants a rollgate.io subresource: $builtin_rules"
fi
for u in "$edit_user" "$admin_user"; do
  for verb in get list watch create update patch delete; do user "$u" yes "$verb" "$cr" -n "$tenant_ns"; done
  user "$u" no patch "$cr" --subresource=status -n "$tenant_ns"
  user "$u" no update "$cr" --subresource=status -n "$tenant_ns"
  user "$u" no create "$cr" -n default
  user "$u" no list "$cr" --all-namespaces
done
for verb in get list watch; do user "$view_user" yes "$verb" "$cr" -n "$tenant_ns"; done
for verb in create update patch delete; do user "$view_user" no "$verb" "$cr" -n "$tenant_ns"; done
user "$view_user" no patch "$cr" --subresource=status -n "$tenant_ns"
user "$view_user" no get "$cr" -n default
# And for real: the edit user creates a rollout and promotes it (the CLI's merge patch of an
# annotation); edit's and admin's /status patches are Forbidden. The view user reads it and cannot
# create one.
tenant_rollout() {
  cat <<EOF
apiVersion: rollgate.io/v1alpha1
kind: ContainerRollout
metadata:
  name: $1
spec:
  images:
    backend: registry.example.com/app/backend:1.0.0
  environments:
  - name: dev
    targets:
    - deployment: api
      containers: {api: backend}
EOF
}
if out=$(tenant_rollout tenant-made | kc -n "$tenant_ns" create -f - --as="$edit_user" 2>&1); then
  pass "$edit_user (edit) created a ContainerRollout in $tenant_ns: $(one_line "$out")"
else
  fail "$edit_user (edit) could not create a ContainerRollout: $(one_line "$out")"
fi
check "$edit_user (edit) patches the rollgate.io/promote annotation (rollgate promote)" \
  kc -n "$tenant_ns" patch "$cr/tenant-made" --type=merge --as="$edit_user" \
  -p '{"metadata":{"annotations":{"rollgate.io/promote":"1"}}}'
# forbidden WHAT OUTPUT RC: the command that printed OUTPUT and exited RC failed with Forbidden (a
# success or any other error is a failure).
forbidden() {
  local what=$1 out=$2 rc=$3
  if ((rc == 0)); then
    fail "$what was allowed: $(one_line "$out")"
  elif grep -qi forbidden <<<"$out"; then
    pass "$what: Forbidden"
  else
    fail "$what failed, but not with Forbidden: $(one_line "$out")"
  fi
}
for u in "$edit_user" "$admin_user"; do
  rc=0
  out=$(kc -n "$tenant_ns" patch "$cr/tenant-made" --subresource=status --type=merge --as="$u" \
    -p '{"status":{"phase":"Succeeded"}}' 2>&1) || rc=$?
  forbidden "$u patching $cr/tenant-made --subresource=status" "$out" "$rc"
done
if out=$(kc -n "$tenant_ns" get "$cr/tenant-made" --as="$view_user" 2>&1) &&
  out=$(kc -n "$tenant_ns" get "$cr" --as="$view_user" 2>&1); then
  pass "$view_user (view) gets and lists ContainerRollouts in $tenant_ns"
else
  fail "$view_user (view) cannot read ContainerRollouts: $(one_line "$out")"
fi
rc=0
out=$(tenant_rollout view-made | kc -n "$tenant_ns" create -f - --as="$view_user" 2>&1) || rc=$?
forbidden "$view_user (view) creating a ContainerRollout" "$out" "$rc"

# expect_code WANT GOT WHAT: pass when the HTTP status GOT is WANT.
expect_code() {
  if [[ "$2" == "$1" ]]; then
    pass "$3: $2"
  else
    fail "$3: answered '$2', expected $1"
  fi
}

# check_secure_metrics RELEASE NS PORT: the controller on 127.0.0.1:PORT serves /metrics only over
# HTTPS, only to a token allowed to get /metrics (RELEASE's metrics-reader ClusterRole).
check_secure_metrics() {
  local rel=$1 ns=$2 port=$3 reader allowed_token denied_token code body
  reader=$(kc get clusterrole -l "app.kubernetes.io/instance=$rel" -o name | grep -- '-metrics-reader$' || true)
  if [[ -z "$reader" ]]; then
    fail "$rel: no <release>-metrics-reader ClusterRole with metrics.secure"
    return
  fi
  kc -n "$ns" create serviceaccount "$rel-scraper" >/dev/null
  kc -n "$ns" create serviceaccount "$rel-stranger" >/dev/null
  kc create clusterrolebinding "$rel-scraper" --clusterrole="${reader#clusterrole.rbac.authorization.k8s.io/}" \
    --serviceaccount="$ns:$rel-scraper" >/dev/null
  allowed_token=$(kc -n "$ns" create token "$rel-scraper" --duration=10m)
  denied_token=$(kc -n "$ns" create token "$rel-stranger" --duration=10m)
  code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 10 "https://127.0.0.1:$port/metrics" || true)
  expect_code 401 "$code" "$rel: /metrics without a token"
  code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 10 -H "Authorization: Bearer not-a-token" \
    "https://127.0.0.1:$port/metrics" || true)
  expect_code 401 "$code" "$rel: /metrics with a token the API server rejects"
  code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 10 -H "Authorization: Bearer $denied_token" \
    "https://127.0.0.1:$port/metrics" || true)
  expect_code 403 "$code" "$rel: /metrics for a ServiceAccount without the reader role"
  body=$(curl -sk --max-time 10 -H "Authorization: Bearer $allowed_token" "https://127.0.0.1:$port/metrics" || true)
  if grep -q '^rollgate_build_info' <<<"$body"; then
    pass "$rel: /metrics over HTTPS for the ServiceAccount bound to ${reader##*/}"
  else
    fail "$rel: /metrics for $rel-scraper: $(one_line "${body:0:300}")"
  fi
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/metrics" || true)
  if [[ "$code" != 200 ]]; then
    pass "$rel: plain HTTP gets no metrics ($code)"
  else
    fail "$rel: plain HTTP got the metrics"
  fi
  kc delete clusterrolebinding "$rel-scraper" >/dev/null
}

# --- 6. The real controller with the chart's identity completes a rollout ------------------------
# run_controller RELEASE NS ROLLOUT TAG [EXTRA_ARGS...]: run rollgate-controller as a local process
# with a bound token of RELEASE's ServiceAccount and the release Deployment's own arguments (plus
# EXTRA_ARGS), roll Deployment api in $app_ns to backend:TAG with ContainerRollout ROLLOUT, and
# check that it succeeds without any Forbidden.
run_controller() {
  local rel=$1 ns=$2 rollout=$3 tag=$4 token server ca kcfg log a name help phase image
  shift 4
  local extra=("$@") chart_args=() run_args=() metrics_port health_port
  token=$(kc -n "$ns" create token "$rel" --duration=1h)
  server=$(kc config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
  ca=$(kc config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
  kcfg=$work/$rel.kubeconfig
  log=$work/$rel-controller.log
  (
    umask 077
    printf '%s\n' "apiVersion: v1" "kind: Config" \
      "clusters: [{name: c, cluster: {server: '$server', certificate-authority-data: '$ca'}}]" \
      "users: [{name: sa, user: {token: '$token'}}]" \
      "contexts: [{name: c, context: {cluster: c, user: sa}}]" "current-context: c" >"$kcfg"
  )
  # Every flag the chart passes must be one the binary accepts.
  help=$("$controller_bin" --help 2>&1 || true)
  mapfile -t chart_args < <(kc -n "$ns" get "deployment/$rel" -o json |
    jq -r '.spec.template.spec.containers[0].args[]')
  read -r metrics_port health_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s:
    x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
  for a in "${chart_args[@]}"; do
    name=${a#--}
    name=${name%%=*}
    if ! grep -qE -- "^ *--$name( |\$)" <<<"$help"; then
      fail "the chart passes $a, which rollgate-controller does not accept"
      continue
    fi
    case $name in
      # Loopback ports of its own instead of the pod's :8080/:8081.
      metrics-bind-address) a=--metrics-bind-address=127.0.0.1:$metrics_port ;;
      health-probe-bind-address) a=--health-probe-bind-address=127.0.0.1:$health_port ;;
    esac
    run_args+=("$a")
  done
  run_args+=("${extra[@]}")
  echo "info: rollgate-controller as system:serviceaccount:$ns:$rel: ${run_args[*]}"

  kc -n "$app_ns" apply -f - >/dev/null <<EOF
apiVersion: rollgate.io/v1alpha1
kind: ContainerRollout
metadata:
  name: $rollout
spec:
  images:
    backend: registry.example.com/app/backend:$tag
  environments:
  - name: dev
    targets:
    - deployment: api
      containers: {api: backend}
EOF
  env -u KUBECONFIG "$controller_bin" --kubeconfig="$kcfg" "${run_args[@]}" >"$log" 2>&1 &
  controller_pid=$!
  phase=""
  for _ in $(seq 1 450); do
    phase=$(kc -n "$app_ns" get "containerrollout/$rollout" -o jsonpath='{.status.phase}' 2>/dev/null || true)
    [[ "$phase" == Succeeded || "$phase" == Failed || "$phase" == RolledBack ]] && break
    kill -0 "$controller_pid" 2>/dev/null || break
    sleep 0.2
  done
  image=$(kc -n "$app_ns" get deployment/api -o jsonpath='{.spec.template.spec.containers[0].image}')
  if [[ "$phase" == Succeeded && "$image" == "registry.example.com/app/backend:$tag" ]]; then
    pass "$rel: rollgate-controller with the ServiceAccount's token completed rollout $rollout (Succeeded, image $tag)"
  else
    fail "$rel: rollout $rollout with the ServiceAccount's token: phase '$phase', image '$image'; log: $(one_line "$(tail -n 15 "$log")")"
  fi
  # Proof that this process (not another controller in a shared cluster) did the work.
  if grep -q -- "$rollout" "$log"; then
    pass "$rel: the controller's own log shows it reconciled $rollout"
  else
    fail "$rel: the controller's log never mentions $rollout: $(one_line "$(tail -n 15 "$log")")"
  fi
  if [[ $(kc -n "$app_ns" get events -o json | jq --arg r "$rollout" '[.items[] |
      select(.source.component == "rollgate-controller" and .involvedObject.name == $r)] | length') -gt 0 ]]; then
    pass "$rel: the controller recorded events on $rollout"
  else
    fail "$rel: no events from rollgate-controller on $rollout"
  fi
  # --metrics-secure (the chart's default): /metrics over HTTPS, decided by the real API server's
  # TokenReview and SubjectAccessReview, made with the chart's RBAC.
  if printf '%s\n' "${run_args[@]}" | grep -qx -- '--metrics-secure'; then
    check_secure_metrics "$rel" "$ns" "$metrics_port"
  fi
  # With leader election: the Lease named by the arguments is held by this process.
  local lease_ns="" lease_id=""
  for a in "${run_args[@]}"; do
    case $a in
      --leader-election-namespace=*) lease_ns=${a#*=} ;;
      --leader-election-id=*) lease_id=${a#*=} ;;
    esac
  done
  if printf '%s\n' "${run_args[@]}" | grep -qx -- '--leader-elect=true'; then
    local holder
    holder=$(kc -n "$lease_ns" get "lease/$lease_id" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true)
    if [[ -n "$holder" ]]; then
      pass "$rel: the controller holds Lease $lease_ns/$lease_id (holder $holder) under the leader-election Role"
    else
      fail "$rel: Lease $lease_ns/$lease_id is missing or has no holder while the leader runs"
    fi
  fi
  if kill -0 "$controller_pid" 2>/dev/null; then
    kill -TERM "$controller_pid" 2>/dev/null || true
    wait "$controller_pid" 2>/dev/null || true
  else
    wait "$controller_pid" 2>/dev/null || true
    fail "$rel: rollgate-controller exited early; log: $(one_line "$(tail -n 15 "$log")")"
  fi
  controller_pid=""
  if grep -qiE 'forbidden|\b403\b' "$log"; then
    fail "$rel: the controller hit Forbidden with the chart's RBAC: $(one_line "$(grep -iE 'forbidden|\b403\b' "$log" | head -n 3)")"
  else
    pass "$rel: no Forbidden/403 in the controller's log ($(wc -l <"$log") lines)"
  fi
}

if [[ -z "$controller_bin" ]]; then
  skip "controller runs with the ServiceAccount tokens (set ROLLGATE_CONTROLLER_BIN to the rollgate-controller binary)"
elif [[ ! -x "$controller_bin" ]]; then
  fail "ROLLGATE_CONTROLLER_BIN=$controller_bin is not executable"
else
  kc -n "$app_ns" apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: api
        image: registry.example.com/app/backend:1.0.0
EOF
  kc -n "$app_ns" rollout status deployment/api --timeout=60s >/dev/null
  # dev: scoped to the watched namespace by its own --namespace argument (Role there).
  run_controller "$dev_rel" "$dev_ns" helm-rbac-dev 2.0.0
  # prod: cluster-wide ClusterRole and leader election. --namespace keeps it off the other tests'
  # rollouts in a shared cluster; the Lease proves the leader-election Role.
  run_controller "$prod_rel" "$prod_ns" helm-rbac-prod 3.0.0 "--namespace=$app_ns"
fi

# --- 7. helm uninstall leaves nothing cluster-scoped behind --------------------------------------
for pair in "$dev_rel $dev_ns" "$prod_rel $prod_ns"; do
  rel=${pair% *} ns=${pair#* }
  if out=$("$helm" uninstall "$rel" -n "$ns" --wait --timeout 60s 2>&1); then
    left=$(kc get clusterrole,clusterrolebinding -l "app.kubernetes.io/instance=$rel" -o name 2>&1)
    if [[ -z "$left" ]]; then
      pass "helm uninstall $rel removed its ClusterRoles (controller, tenant edit/view) and ClusterRoleBinding"
    else
      fail "after helm uninstall $rel: $(one_line "$left")"
    fi
  else
    fail "helm uninstall $rel: $(one_line "$out")"
  fi
  remaining=()
  for p in "${installed[@]}"; do [[ "$p" == "$pair" ]] || remaining+=("$p"); done
  installed=("${remaining[@]}")
done

echo "helm test: $((SECONDS - start))s, $failures failure(s)"
if ((failures)); then
  echo "helm test: FAIL"
  exit 1
fi
echo "helm test: PASS"
