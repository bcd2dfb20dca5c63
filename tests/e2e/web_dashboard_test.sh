#!/usr/bin/env bash
# End-to-end test of `rollgate dashboard` (issue 18) against the shared local control plane and
# the real rollgate-controller (a child process, --namespace of the test's own namespace; kwok
# makes the Deployments' pods ready), in a real browser: headless Debian chromium driven through
# chromedriver (tests/e2e/web_dashboard_browser.py, standard-library WebDriver client).
#
#  1. `kubectl rollgate dashboard -n NS --port 0` prints its address with a token; over plain
#     HTTP (curl): no token → 401, a wrong token → 401, the token → 303 with an HttpOnly
#     SameSite=Strict cookie; another Host header → 403 (DNS rebinding); a POST without this
#     origin → 403; the page's Content-Security-Policy allows nothing but its own files; a
#     non-loopback --address is a usage error (2); a namespace the user may not list: exit 1.
#  2. In the browser: the console is read (a probe error is seen); rollout `web`, created after
#     the list is on screen, appears and moves live (no reload) to AwaitingApproval with
#     per-environment progress; the detail page shows `rollgate get`'s tree
#     and what it waits for; Promote moves `prod` on and the page reaches Succeeded live; the
#     annotation is the CLI's. Abort (pressed with the keyboard) asks first: Cancel sends nothing,
#     confirming aborts `held`. A 390 px window needs no horizontal scroll; every visible text
#     has WCAG contrast >= 4.5:1; the browser's console has no error. Screenshots are saved in
#     $ROLLGATE_E2E_ARTIFACTS (default: build/test-artifacts/web-dashboard).
#
# Needs KUBECONFIG, CONTROL_PLANE_BIN, ROLLGATE_CONTROLLER_BIN, ROLLGATE_CLI_BIN, ROLLGATE_CRD
# (ctest sets them), chromium and chromedriver (Debian packages chromium, chromium-driver), jq,
# python3 and curl. Cluster-wide controllers of other tests would act on its rollouts:
# RESOURCE_LOCK rollgate_controller. About 40 s.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
for v in KUBECONFIG CONTROL_PLANE_BIN ROLLGATE_CONTROLLER_BIN ROLLGATE_CLI_BIN ROLLGATE_CRD; do
  [[ -n "${!v:-}" ]] || { echo "FAIL: $v is not set (run it through ctest: e2e_web_dashboard)" >&2; exit 1; }
done
kubectl=$CONTROL_PLANE_BIN/kubectl
plugin=$(dirname "$ROLLGATE_CLI_BIN")/kubectl-rollgate
for tool in jq python3 curl chromium chromedriver; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed (bash hack/bootstrap.sh)" >&2; exit 1; }
done
export KUBECONFIG

start=$SECONDS
check_name="web dashboard test"
# shellcheck source-path=SCRIPTDIR source=lib/checks.sh
source "$here/lib/checks.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-web-dashboard.XXXXXX")
chmod 0700 "$work"
artifacts=${ROLLGATE_E2E_ARTIFACTS:-$(dirname "$(dirname "$ROLLGATE_CLI_BIN")")/test-artifacts/web-dashboard}
mkdir -p "$artifacts"
rm -f "$artifacts"/*.png
export KUBECACHEDIR=$work/kube-cache
ns=rg-web-$$-$RANDOM
controller_pid="" controller_log=$work/controller.log
dashboard_pid="" dashboard_out=$work/dashboard.out
driver_pid=""

kc() { "$kubectl" "$@"; }

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  for pid in "$driver_pid" "$dashboard_pid" "$controller_pid"; do
    [[ -n "$pid" ]] || continue
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if ((failures)); then
    for f in "$controller_log" "$dashboard_out" "$work/dashboard.err" "$work/chromedriver.log"; do
      [[ -s "$f" ]] || continue
      echo "--- last lines of $(basename "$f") ---"
      tail -n 20 "$f"
    done
  fi
  kc delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

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

# --- the CRD, the namespace, the Deployments, the controller -----------------------------------
if out=$(kc apply --server-side --force-conflicts --field-manager=rollgate-e2e -f "$ROLLGATE_CRD" 2>&1) &&
  kc wait --for=condition=Established --timeout=60s crd/containerrollouts.rollgate.io >/dev/null 2>&1; then
  pass "the CRD is applied and Established"
else
  fail "the CRD does not apply: $(one_line "$out")"
  finish
fi
kc create namespace "$ns" >/dev/null
for d in web-staging web-prod held-app; do deployment "$d"; done
for d in web-staging web-prod held-app; do
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
pass "rollgate-controller ready (--namespace $ns)"

# --- 1. the dashboard process and its door ------------------------------------------------------
rc=0
"$plugin" dashboard --address 0.0.0.0 >"$work/usage.out" 2>&1 || rc=$?
if [[ $rc == 2 ]] && grep -q "loopback" "$work/usage.out"; then
  pass "--address 0.0.0.0 is refused (exit 2): $(one_line "$(head -n1 "$work/usage.out")")"
else
  fail "--address 0.0.0.0: exit $rc, $(one_line "$(cat "$work/usage.out")")"
fi

"$plugin" dashboard -n "$ns" --port 0 >"$dashboard_out" 2>"$work/dashboard.err" &
dashboard_pid=$!
url=""
for _ in $(seq 1 100); do
  url=$(grep -Eo 'http://127\.0\.0\.1:[0-9]+/\?token=[0-9a-f]{32}' "$dashboard_out" || true)
  [[ -n "$url" ]] && break
  kill -0 "$dashboard_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z "$url" ]]; then
  fail "the dashboard printed no address: $(one_line "$(cat "$dashboard_out" "$work/dashboard.err")")"
  finish
fi
base=${url%%/\?*}
hostport=${base#http://}
token=${url##*token=}
pass "kubectl rollgate dashboard serves $base (token of 32 hex digits)"

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[[ $(code "$base/") == 401 ]] && pass "no token: 401" || fail "no token: $(code "$base/")"
[[ $(code "$base/?token=0000") == 401 ]] && pass "a wrong token: 401" || fail "wrong token: $(code "$base/?token=0000")"
headers=$(curl -s -D - -o /dev/null "$url")
if grep -q '^HTTP/1.1 303' <<<"$headers" &&
  grep -qi "^Set-Cookie: rollgate_dashboard_${hostport#*:}=$token; Path=/; HttpOnly; SameSite=Strict" <<<"$headers"; then
  pass "the token: 303 to / with an HttpOnly, SameSite=Strict cookie"
else
  fail "the token's answer: $(one_line "$headers")"
fi
cookie="rollgate_dashboard_${hostport#*:}=$token"
[[ $(code -H "Cookie: $cookie" "$base/api/rollouts") == 200 ]] && pass "the API with the cookie: 200" ||
  fail "the API with the cookie: $(code -H "Cookie: $cookie" "$base/api/rollouts")"
rebound=$(code -H "Cookie: $cookie" -H "Host: rebound.example:${hostport#*:}" "$base/api/rollouts")
[[ $rebound == 403 ]] && pass "another Host header (DNS rebinding): 403" || fail "another Host: $rebound"
csrf=$(code -X POST -H "Cookie: $cookie" -H 'Content-Type: application/json' -d '{}' \
  -H "Origin: http://evil.example" "$base/api/rollouts/$ns/web/abort")
[[ $csrf == 403 ]] && pass "a POST from another origin: 403" || fail "a cross-origin POST: $csrf"
csp=$(curl -s -D - -o /dev/null -H "Cookie: $cookie" "$base/" | grep -i '^Content-Security-Policy:' || true)
if grep -q "default-src 'none'; script-src 'self'" <<<"$csp"; then
  pass "the page's policy loads nothing but its own files"
else
  fail "Content-Security-Policy: $(one_line "$csp")"
fi
sa=rg-web-nobody
kc -n "$ns" create serviceaccount "$sa" >/dev/null
sa_token=$(kc -n "$ns" create token "$sa" --duration=10m)
server=$(kc config view --minify -o jsonpath='{.clusters[0].cluster.server}')
ca_data=$(kc config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
cat >"$work/nobody.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "$server", certificate-authority-data: "$ca_data"}}]
users: [{name: u, user: {token: "$sa_token"}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: $ns}}]
current-context: c
EOF
rc=0
timeout 20 "$plugin" --kubeconfig "$work/nobody.kubeconfig" dashboard --port 0 >"$work/nobody.out" 2>&1 || rc=$?
if [[ $rc == 1 ]] && grep -q "^error: .*[Ff]orbidden" "$work/nobody.out"; then
  pass "a user who may not list rollouts: exit 1, $(one_line "$(head -n1 "$work/nobody.out")")"
else
  fail "a forbidden user: exit $rc, $(one_line "$(cat "$work/nobody.out")")"
fi

# --- 2. the browser -----------------------------------------------------------------------------
read -r dport < <(python3 "$repo/hack/lib/free-ports.py" 1)
chromedriver --port="$dport" >"$work/chromedriver.log" 2>&1 &
driver_pid=$!
until curl -fsS "http://127.0.0.1:$dport/status" 2>/dev/null | jq -e '.value.ready' >/dev/null; do
  if ! kill -0 "$driver_pid" 2>/dev/null || ((SECONDS - start > 90)); then
    fail "chromedriver did not start: $(one_line "$(cat "$work/chromedriver.log")")"
    finish
  fi
  sleep 0.2
done
pass "chromedriver $(chromedriver --version | awk '{print $2}') with $(chromium --version 2>/dev/null | head -n1)"

# `web` is created by the browser test once the list is on screen.
cat >"$work/web.yaml" <<EOF
apiVersion: rollgate.io/v1alpha1
kind: ContainerRollout
metadata: {name: web}
spec:
  images: {app: "registry.example.com/app:2.0"}
  environments:
  - name: staging
    targets: [{deployment: web-staging, containers: {app: app}}]
  - name: prod
    approval: Manual
    targets: [{deployment: web-prod, containers: {app: app}}]
EOF
rollout held registry.example.com/app:2.0 "  - name: only
    approval: Manual
    targets: [{deployment: held-app, containers: {app: app}}]"

rc=0
(cd "$here" && timeout 240 python3 web_dashboard_browser.py "http://127.0.0.1:$dport" "$url" "$ns" "$artifacts" \
  "$kubectl" "$work/web.yaml") \
  >"$work/browser.out" 2>&1 || rc=$?
cat "$work/browser.out"
browser_fails=$(grep -c '^FAIL' "$work/browser.out" || true)
failures=$((failures + browser_fails))
if [[ $rc != 0 && $browser_fails == 0 ]]; then
  fail "the browser test ended with exit $rc: $(one_line "$(tail -n 5 "$work/browser.out")")"
fi

# What the browser did, as the API server saw it.
web=$(kc -n "$ns" get containerrollout web -o json)
if [[ $(jq -r '.status.phase' <<<"$web") == Succeeded &&
  $(jq -r '.metadata.annotations["rollgate.io/promote"] // ""' <<<"$web") =~ ^[0-9T:-]+Z/[0-9]+$ &&
  $(kc -n "$ns" get deployment web-prod -o jsonpath='{.spec.template.spec.containers[0].image}') == registry.example.com/app:2.0 ]]; then
  pass "web Succeeded through the browser's promote (the CLI's annotation format), web-prod runs app:2.0"
else
  fail "web after the browser: phase $(jq -r '.status.phase' <<<"$web"), annotations $(jq -c '.metadata.annotations' <<<"$web")"
fi
held=$(kc -n "$ns" get containerrollout held -o json)
if [[ $(jq -r '.status.phase' <<<"$held") == Aborted &&
  $(kc -n "$ns" get deployment held-app -o jsonpath='{.spec.template.spec.containers[0].image}') == registry.example.com/app:1.0 ]]; then
  pass "held Aborted before any change: held-app still runs app:1.0"
else
  fail "held after the browser: phase $(jq -r '.status.phase' <<<"$held")"
fi
shots=$(find "$artifacts" -name 'dashboard-*.png' -size +2k | wc -l)
if ((shots >= 5)); then
  pass "$shots screenshots in $artifacts"
else
  fail "only $shots screenshots in $artifacts"
fi

# --- the dashboard ends cleanly on SIGTERM --------------------------------------------------------
kill -TERM "$dashboard_pid"
rc=0
timeout 10 tail --pid="$dashboard_pid" -f /dev/null || rc=$?
wait "$dashboard_pid" 2>/dev/null && drc=0 || drc=$?
dashboard_pid=""
if [[ $rc == 0 && $drc == 0 ]]; then
  pass "SIGTERM ends the dashboard with exit 0"
else
  fail "the dashboard after SIGTERM: wait $rc, exit $drc"
fi
finish
