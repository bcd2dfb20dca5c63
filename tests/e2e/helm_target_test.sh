#!/usr/bin/env bash
# End-to-end test of the target-cluster side of remote environments (issue 17) against the shared
# local control plane: the chart's mode=target and `rollgate cluster kubeconfig`.
#
#  1. `helm install --skip-crds --set mode=target --set target.namespaces={A}`: the release holds
#     only a ServiceAccount, ClusterRole(Binding) and a Role(Binding) in A: no Deployment,
#     Service, PDB, tenant roles, leases; the NOTES say how to make the hub's Secret.
#  2. `rollgate cluster kubeconfig -n <release namespace>`: exit 0, a kubeconfig on stdout, the
#     expiry on stderr and never the token; an unknown ServiceAccount (exit 1, the hint) and a
#     usage error (exit 2) print no token either.
#  3. With that kubeconfig (kubectl --kubeconfig, the hub's view of this cluster): get, list and
#     patch a Deployment in A; list namespaces; create and delete a Job in A (smoke checks); but
#     NOT: read Secrets (A, the release namespace), patch a Deployment in B (not listed), create or
#     delete Deployments, list Jobs, read ContainerRollouts. `kubectl auth can-i` for pods and
#     events.
#  4. `helm upgrade` to target.namespaces=[] (cluster-wide): the same token may now patch the
#     Deployment in B; Secrets stay forbidden.
#  5. `--secret prod-eu --server https://127.0.0.1:PORT --tls-server-name localhost`: the Secret
#     applies with kubectl (in a "hub" namespace), its `value` decodes to the kubeconfig that was
#     printed, which works; the same with a wrong --tls-server-name is refused by kubectl (the
#     name is what the certificate is checked against).
#  6. A kubeconfig without a CA (insecure-skip-tls-verify): the CA comes from the namespace's
#     kube-root-ca.crt, and the printed kubeconfig verifies the server with it.
#
# Needs KUBECONFIG, CONTROL_PLANE_BIN, ROLLGATE_CLI_BIN (ctest sets them: rollgate_add_e2e_test),
# jq, python3 (with yaml), base64. Everything in namespaces of its own, deleted at the end; helm
# uninstall removes the cluster-scoped RBAC. About 15 s.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
for v in KUBECONFIG CONTROL_PLANE_BIN ROLLGATE_CLI_BIN; do
  [[ -n "${!v:-}" ]] || { echo "FAIL: $v is not set (run it through ctest: e2e_helm_target)" >&2; exit 1; }
done
kubectl=$CONTROL_PLANE_BIN/kubectl
helm=$CONTROL_PLANE_BIN/helm
cli=$ROLLGATE_CLI_BIN
for b in "$kubectl" "$helm" "$cli"; do
  [[ -x "$b" ]] || { echo "FAIL: no executable $b" >&2; exit 1; }
done
for tool in jq python3 base64; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed" >&2; exit 1; }
done
export KUBECONFIG

start=$SECONDS
check_name="helm target test"
# shellcheck source-path=SCRIPTDIR source=lib/checks.sh
source "$here/lib/checks.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-helm-target.XXXXXX")
chmod 0700 "$work"
export KUBECACHEDIR=$work/kube-cache
export HELM_CACHE_HOME=$work/helm-cache HELM_CONFIG_HOME=$work/helm-config
export HELM_DATA_HOME=$work/helm-data
id=$$-$RANDOM
sys=rg-tgt-$id  # the release namespace (the hub's ServiceAccount lives here)
ns_a=$sys-a     # listed in target.namespaces
ns_b=$sys-b     # not listed
hub=$sys-hub    # stands in for the hub's rollout namespace (the Secret is applied here)
release=rg-tgt-$id
chart=$repo/charts/rollgate

kc() { "$kubectl" "$@"; }

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  "$helm" uninstall "$release" -n "$sys" >/dev/null 2>&1 || true
  kc delete namespace "$sys" "$ns_a" "$ns_b" "$hub" --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

run_timeout=60  # run (lib/checks.sh): helm and TokenRequests can be slow
# allowed WHAT CMD...: PASS when CMD succeeds.
allowed() {
  local what=$1
  shift
  run step "$@"
  if ((rc == 0)); then
    pass "allowed: $what"
  else
    fail "allowed: $what: exit $rc: $(one_line "$err")"
  fi
}
# denied WHAT CMD...: PASS when CMD fails with Forbidden.
denied() {
  local what=$1
  shift
  run step "$@"
  if ((rc != 0)) && grep -q 'Forbidden\|forbidden' <<<"$err"; then
    pass "denied: $what"
  else
    fail "denied: $what: want Forbidden, got exit $rc: $(one_line "$err$out")"
  fi
}
# The token inside a kubeconfig file.
token_of() { python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["users"][0]["user"]["token"])' "$1"; }
# no_token_in TOKEN FILE...: FAIL when any FILE contains TOKEN.
no_token_in() {
  local token=$1 f
  shift
  for f in "$@"; do
    if [[ -n "$token" ]] && grep -qF -- "$token" "$f"; then
      fail "the token appears in $(basename "$f")"
      return
    fi
  done
  pass "the token is in none of: $(for f in "$@"; do basename "$f"; done | tr '\n' ' ')"
}

for n in "$sys" "$ns_a" "$ns_b" "$hub"; do kc create namespace "$n" >/dev/null; done
for n in "$ns_a" "$ns_b"; do
  kc -n "$n" create deployment web --image=registry.example.com/web:1.0 >/dev/null
done

# --- 1. helm install in target mode -------------------------------------------------------------
run install "$helm" install "$release" "$chart" -n "$sys" --skip-crds --set mode=target \
  --set "target.namespaces={$ns_a}" --wait --timeout 60s
if ((rc == 0)); then
  pass "helm install --skip-crds --set mode=target --set target.namespaces={$ns_a}"
else
  fail "helm install in target mode: exit $rc: $(one_line "$err")"
  finish
fi
if grep -q "rollgate cluster kubeconfig -n $sys --service-account rollgate-target" "$work/install.out"; then
  pass "the NOTES say how to make the hub's Secret"
else
  fail "the NOTES do not show rollgate cluster kubeconfig: $(one_line "$out")"
fi
kinds=$("$helm" get manifest "$release" -n "$sys" |
  python3 -c 'import sys, yaml; print(" ".join(sorted(d["kind"] + ("/" + d["metadata"].get("namespace", "-") if d["kind"] in ("Role", "RoleBinding") else "") for d in yaml.safe_load_all(sys.stdin) if d)))')
want="ClusterRole ClusterRoleBinding Role/$ns_a RoleBinding/$ns_a ServiceAccount"
if [[ "$kinds" == "$want" ]]; then
  pass "the release holds only: $kinds"
else
  fail "the release holds \"$kinds\", want \"$want\""
fi
if kc -n "$sys" get serviceaccount rollgate-target >/dev/null 2>&1 &&
  [[ -z "$(kc -n "$sys" get deployments,services,poddisruptionbudgets -o name 2>/dev/null)" ]]; then
  pass "ServiceAccount $sys/rollgate-target exists; no Deployment, Service or PDB in $sys"
else
  fail "want ServiceAccount $sys/rollgate-target and no Deployment/Service/PDB in $sys"
fi

# --- 2. rollgate cluster kubeconfig ----------------------------------------------------------------
target_kc=$work/target.kubeconfig
run kubeconfig "$cli" cluster kubeconfig -n "$sys" --duration 2h
cp "$work/kubeconfig.out" "$target_kc"
token=$(token_of "$target_kc" 2>/dev/null || true)
if ((rc == 0)) && [[ -n "$token" ]] &&
  grep -Eq "^token of ServiceAccount $sys/rollgate-target for https://127\.0\.0\.1:[0-9]+: expires 20[0-9-]+T" <<<"$err"; then
  pass "cluster kubeconfig: exit 0, a kubeconfig with a token; stderr \"$(one_line "$err")\""
else
  fail "cluster kubeconfig: exit $rc, stderr \"$(one_line "$err")\""
  finish
fi
run missing "$cli" cluster kubeconfig -n "$sys" --service-account nobody
if ((rc == 1)) && [[ -z "$out" ]] &&
  grep -q "^error: cannot get a token for ServiceAccount $sys/nobody: .*not found (is the chart installed with mode=target" <<<"$err"; then
  pass "an unknown ServiceAccount: exit 1, \"$(one_line "$err")\""
else
  fail "an unknown ServiceAccount: exit $rc, stderr \"$(one_line "$err")\", stdout \"$(one_line "$out")\""
fi
run usage "$cli" cluster kubeconfig --duration 1m
if ((rc == 2)) && grep -q "^error: --duration 1m is shorter than 10m" <<<"$err"; then
  pass "a usage error: exit 2"
else
  fail "a usage error: exit $rc, stderr \"$(one_line "$err")\""
fi
no_token_in "$token" "$work/kubeconfig.err" "$work/missing.err" "$work/usage.err"

# --- 3. what the token may do ----------------------------------------------------------------------
t=("$kubectl" --kubeconfig "$target_kc")
who=$("${t[@]}" auth whoami -o jsonpath='{.status.userInfo.username}' 2>/dev/null || true)
if [[ "$who" == "system:serviceaccount:$sys:rollgate-target" ]]; then
  pass "the kubeconfig authenticates as $who"
else
  fail "the kubeconfig authenticates as \"$who\""
fi
allowed "get deployment $ns_a/web" "${t[@]}" -n "$ns_a" get deployment web
allowed "list deployments in $ns_a" "${t[@]}" -n "$ns_a" get deployments
allowed "patch deployment $ns_a/web (its image)" "${t[@]}" -n "$ns_a" patch deployment web --type=strategic \
  -p '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"registry.example.com/web:2.0"}]}}}}'
if [[ $(kc -n "$ns_a" get deployment web -o jsonpath='{.spec.template.spec.containers[0].image}') == registry.example.com/web:2.0 ]]; then
  pass "the patch changed $ns_a/web's image"
else
  fail "the patch did not change $ns_a/web's image"
fi
allowed "list namespaces" "${t[@]}" get namespaces
allowed "get namespace $ns_b (the opt-in label)" "${t[@]}" get namespace "$ns_b"
allowed "list pods in $ns_a" "${t[@]}" -n "$ns_a" get pods
allowed "create a Job in $ns_a (smoke check)" "${t[@]}" -n "$ns_a" create job smoke --image=registry.example.com/web:2.0
allowed "get the Job" "${t[@]}" -n "$ns_a" get job smoke
allowed "delete the Job" "${t[@]}" -n "$ns_a" delete job smoke --wait=false
for a in "watch deployments.apps" "watch pods" "watch namespaces" "create events" "patch events"; do
  read -ra words <<<"$a"
  if [[ $("${t[@]}" -n "$ns_a" auth can-i "${words[@]}" 2>/dev/null) == yes ]]; then
    pass "auth can-i $a in $ns_a: yes"
  else
    fail "auth can-i $a in $ns_a: no"
  fi
done
denied "get secrets in $ns_a" "${t[@]}" -n "$ns_a" get secrets
denied "get secrets in $sys" "${t[@]}" -n "$sys" get secrets
denied "patch deployment $ns_b/web (not in target.namespaces)" "${t[@]}" -n "$ns_b" patch deployment web \
  --type=merge -p '{"metadata":{"annotations":{"rollgate-test":"x"}}}'
denied "get deployment $ns_b/web" "${t[@]}" -n "$ns_b" get deployment web
denied "create a deployment in $ns_a" "${t[@]}" -n "$ns_a" create deployment other --image=registry.example.com/web:1.0
denied "delete deployment $ns_a/web" "${t[@]}" -n "$ns_a" delete deployment web --wait=false
denied "update deployment $ns_a/web (PUT)" "${t[@]}" -n "$ns_a" replace -f <(kc -n "$ns_a" get deployment web -o json)
denied "list jobs in $ns_a" "${t[@]}" -n "$ns_a" get jobs
denied "list configmaps in $ns_a" "${t[@]}" -n "$ns_a" get configmaps
denied "create serviceaccount tokens in $sys" "${t[@]}" -n "$sys" create token rollgate-target
for a in "list containerrollouts.rollgate.io" "create pods" "delete pods" "get pods --subresource=log" \
  "update jobs.batch" "create leases.coordination.k8s.io"; do
  read -ra words <<<"$a"
  if [[ $("${t[@]}" -n "$ns_a" auth can-i "${words[@]}" 2>/dev/null) == no ]]; then
    pass "auth can-i $a in $ns_a: no"
  else
    fail "auth can-i $a in $ns_a: yes"
  fi
done

# --- 4. cluster-wide ------------------------------------------------------------------------------
run upgrade "$helm" upgrade "$release" "$chart" -n "$sys" --skip-crds --set mode=target --wait --timeout 60s
if ((rc == 0)); then
  pass "helm upgrade to target.namespaces=[] (cluster-wide)"
else
  fail "helm upgrade: exit $rc: $(one_line "$err")"
fi
allowed "cluster-wide: patch deployment $ns_b/web" "${t[@]}" -n "$ns_b" patch deployment web \
  --type=merge -p '{"metadata":{"annotations":{"rollgate-test":"x"}}}'
allowed "cluster-wide: list deployments in every namespace" "${t[@]}" get deployments -A
denied "cluster-wide: get secrets in $ns_b" "${t[@]}" -n "$ns_b" get secrets
denied "cluster-wide: create a deployment in $ns_b" "${t[@]}" -n "$ns_b" create deployment other --image=registry.example.com/web:1.0

# --- 5. --secret, --server, --tls-server-name --------------------------------------------------
server=$(kc config view --minify -o jsonpath='{.clusters[0].cluster.server}')
run secret "$cli" cluster kubeconfig -n "$sys" --secret prod-eu --server "$server" --tls-server-name localhost
secret_kc=$work/secret.kubeconfig
python3 -c 'import base64, sys, yaml; d = yaml.safe_load(open(sys.argv[1])); sys.stdout.write(base64.b64decode(d["data"]["value"]).decode())' \
  "$work/secret.out" >"$secret_kc" 2>/dev/null || true
if ((rc == 0)) && kc -n "$hub" apply -f "$work/secret.out" >/dev/null 2>"$work/apply.err"; then
  pass "the --secret output applies with kubectl -n $hub apply -f"
else
  fail "--secret: exit $rc ($(one_line "$err")); apply: $(one_line "$(cat "$work/apply.err" 2>/dev/null)")"
fi
kc -n "$hub" get secret prod-eu -o jsonpath='{.data.value}' | base64 -d >"$work/applied.kubeconfig" || true
if [[ -s "$secret_kc" ]] && cmp -s "$work/applied.kubeconfig" "$secret_kc" &&
  [[ $(python3 -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); c = d["clusters"][0]; print(c["name"], c["cluster"]["server"], c["cluster"]["tls-server-name"], d["current-context"])' "$secret_kc") == "prod-eu $server localhost prod-eu" ]]; then
  pass "Secret $hub/prod-eu's value decodes to the printed kubeconfig (cluster prod-eu, tls-server-name localhost)"
else
  fail "Secret $hub/prod-eu's value is not the printed kubeconfig"
fi
allowed "the Secret's kubeconfig (tls-server-name localhost) reads $ns_a/web" \
  "$kubectl" --kubeconfig "$secret_kc" -n "$ns_a" get deployment web
no_token_in "$(token_of "$secret_kc" 2>/dev/null || true)" "$work/secret.err"
run wrongname "$cli" cluster kubeconfig -n "$sys" --tls-server-name wrong.example.com
cp "$work/wrongname.out" "$work/wrongname.kubeconfig"
run wrongname-get "$kubectl" --kubeconfig "$work/wrongname.kubeconfig" -n "$ns_a" get deployment web
if ((rc != 0)) && grep -q 'wrong.example.com' <<<"$err"; then
  pass "a wrong --tls-server-name: the server's certificate is refused (\"$(one_line "$err" | cut -c1-140)\")"
else
  fail "a wrong --tls-server-name was not refused: exit $rc: $(one_line "$err")"
fi

# --- 6. no CA in the kubeconfig: kube-root-ca.crt ------------------------------------------------
noca=$work/noca.kubeconfig
kc config view --minify --flatten -o json |
  jq '.clusters[0].cluster |= (del(."certificate-authority-data") | .["insecure-skip-tls-verify"] = true)' >"$noca"
run noca "$cli" --kubeconfig "$noca" cluster kubeconfig -n "$sys"
cp "$work/noca.out" "$work/noca-target.kubeconfig"
ca_of() { python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["clusters"][0]["cluster"]["certificate-authority-data"])' "$1" | base64 -d; }
if ((rc == 0)) && [[ "$(ca_of "$work/noca-target.kubeconfig")" == "$(kc -n "$sys" get configmap kube-root-ca.crt -o jsonpath='{.data.ca\.crt}')" ]]; then
  pass "a kubeconfig without a CA: the CA comes from $sys/kube-root-ca.crt"
else
  fail "a kubeconfig without a CA: exit $rc, stderr \"$(one_line "$err")\""
fi
allowed "that kubeconfig verifies the server with it" \
  "$kubectl" --kubeconfig "$work/noca-target.kubeconfig" -n "$ns_a" get deployment web
no_token_in "$(token_of "$work/noca-target.kubeconfig" 2>/dev/null || true)" "$work/noca.err"

finish
