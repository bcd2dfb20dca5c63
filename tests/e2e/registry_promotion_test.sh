#!/usr/bin/env bash
# End-to-end test of registry-aware promotion (issue 16): the real rollgate-controller, as a local
# process, against the shared local control plane and a REAL registry (Debian's docker-registry on
# 127.0.0.1 with TLS and htpasswd, hack/registry.sh through lib/registry.sh) holding the images of
# hack/multiarch-image.sh (testapp:2.0-multiarch, an OCI index linux/amd64 + linux/arm64;
# testapp:2.0-large, linux/amd64 with a 20 MiB layer). kwok nodes pull nothing, so the checks are on
# the Deployments' image strings, the rollouts' status, Events and the controller's metrics.
#
#  1. Pinned promotion while the tag moves: testapp:2.0 = the index; staging (automatic) succeeds
#     with REG/testapp:2.0@<index digest>, status.resolvedImages records the digest, media type,
#     platforms and sizes hack/multiarch-image.sh printed, resolvedSummary shows in -o wide;
#     production (Manual) waits; testapp:2.0 is re-pushed as the 20 MiB image; after the approval
#     production gets the ORIGINAL digest (and its size passes maxSize 10Mi: the pinned bytes are
#     what is deployed), and a Warning Event TagMoved names both digests.
#  2. ImageNotFound: a tag never pushed.
#  3. ImageTooLarge: testapp:2.0-large with maxSize 1Mi.
#  4. PlatformMissing: (a) the single-platform amd64 image for a Deployment whose pod template has
#     nodeSelector kubernetes.io/arch: s390x; (b) the index with imagePolicy.platforms [linux/s390x].
#  5. RegistryAuthFailed: a second controller (its own namespace) with an auth file holding a wrong
#     password; progressDeadlineSeconds 30 (the CRD's minimum): Pending while it retries, Failed at
#     the deadline.
#  6. The registry stopped for 20 s: the rollout (imagePolicy: {}, so pinning by default) waits
#     Pending with a message about the registry and patches nothing; started again, it succeeds
#     with the pinned image.
#  7. Metrics: rollgate_image_resolutions_total by result (resolved, not_found, unreachable; and
#     auth_failed on the second controller), rollgate_image_resolve_seconds; prints
#     `FIGURE: image pre-flight per image p50=...s`: the histogram as it stood before the registry
#     went down (scenarios 1-4, every observation a real answer of the registry; the retries
#     against the stopped registry are fast refusals that would skew it), the p50 interpolated in
#     its buckets as Prometheus' histogram_quantile does, with the _sum/_count mean beside it.
# Each failure: environment and rollout Failed with the reason, a message naming the image, a
# Warning Event, and nothing patched (image, generation, no rollgate.io/revision, no previous
# images recorded). The password (and its base64 auth strings) never appears in the controllers'
# logs, any rollout's status or any Event.
#
# Needs KUBECONFIG, CONTROL_PLANE_BIN, ROLLGATE_CONTROLLER_BIN, ROLLGATE_CRD (ctest sets them:
# rollgate_add_e2e_test) and skopeo, umoci, jq, python3, openssl, htpasswd, curl and
# docker-registry (hack/bootstrap.sh installs them). Does not need root. Runs two controllers, each
# restricted to a namespace of its own (--namespace), both deleted at the end. About 2 minutes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
for v in KUBECONFIG CONTROL_PLANE_BIN ROLLGATE_CONTROLLER_BIN ROLLGATE_CRD; do
  [[ -n "${!v:-}" ]] || { echo "FAIL: $v is not set (run it through ctest: e2e_registry_promotion)" >&2; exit 1; }
done
kubectl=$CONTROL_PLANE_BIN/kubectl
controller_bin=$ROLLGATE_CONTROLLER_BIN
[[ -x "$kubectl" ]] || { echo "FAIL: no kubectl at $kubectl" >&2; exit 1; }
[[ -x "$controller_bin" ]] || { echo "FAIL: $controller_bin is missing (build rollgate-controller)" >&2; exit 1; }
for tool in skopeo umoci jq python3 openssl htpasswd curl; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed (hack/bootstrap.sh installs it)" >&2; exit 1; }
done
export KUBECONFIG

start=$SECONDS
check_name="registry promotion test"
# shellcheck source-path=SCRIPTDIR source=lib/checks.sh
source "$here/lib/checks.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-registry-promotion-test.XXXXXX")
chmod 0700 "$work"
basic_dir=$work/basic token_dir=$work/token
export KUBECACHEDIR=$work/kube-cache # a shared discovery cache may predate the CRD's new fields

suffix=$$-$RANDOM
ns=rg-regpromo-$suffix          # the rollouts of the controller with the right credentials
auth_ns=rg-regpromo-auth-$suffix # the rollout of the controller with a wrong password
main_pid="" auth_pid="" sampler_pid="" main_log=$work/controller.log auth_log=$work/controller-auth.log

kc() { "$kubectl" "$@"; }

# shellcheck source-path=SCRIPTDIR source=lib/registry.sh
source "$here/lib/registry.sh"

# stop_controller PID: SIGTERM and reap it.
stop_controller() {
  [[ -n "$1" ]] || return 0
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  [[ -z "$sampler_pid" ]] || kill "$sampler_pid" 2>/dev/null || true
  stop_controller "$main_pid"
  stop_controller "$auth_pid"
  if ((failures)); then
    for l in "$main_log" "$auth_log"; do
      [[ -s "$l" ]] || continue
      echo "--- last lines of $(basename "$l") ---"
      tail -n 25 "$l"
    done
  fi
  kc delete namespace "$ns" "$auth_ns" --wait=false >/dev/null 2>&1 || true
  registry_cleanup
}
trap cleanup EXIT

user=promoter
password=$(openssl rand -hex 16)

# --- helpers -----------------------------------------------------------------------------------

# rollout NS NAME: the rollout's JSON ({} when it cannot be read).
rollout() { kc -n "$1" get "containerrollout/$2" -o json 2>/dev/null || echo '{}'; }
# env_field JSON ENV FIELD: status.environments[name == ENV].FIELD, "" when absent.
env_field() {
  jq -r --arg e "$2" --arg f "$3" '[.status.environments // [] | .[] | select(.name == $e)][0][$f] // ""' <<<"$1"
}
# alive: both controllers that were started still run (a dead one ends the test: nothing to wait for).
alive() {
  local p
  for p in "$main_pid" "$auth_pid"; do
    if [[ -n "$p" ]] && ! kill -0 "$p" 2>/dev/null; then
      fail "a rollgate-controller (pid $p) exited; its log: $(one_line "$(tail -n 12 "$main_log" "$auth_log" 2>/dev/null)")"
      finish
    fi
  done
}
# wait_rollout NS NAME SECONDS JQ: poll the rollout until the jq expression is true; r holds the
# last JSON; returns 1 at the timeout.
wait_rollout() {
  local until=$((SECONDS + $3))
  while :; do
    r=$(rollout "$1" "$2")
    jq -e "$4" <<<"$r" >/dev/null 2>&1 && return 0
    ((SECONDS < until)) || return 1
    alive
    sleep 1
  done
}
ended='.status.phase | IN("Succeeded", "Failed", "RolledBack", "Aborted")'
# describe JSON: the rollout's phase and its environments' phases, reasons and messages.
describe() {
  jq -c '{phase: .status.phase, message: .status.message, environments: [.status.environments // [] | .[]
    | {name, phase, reason, message}]}' <<<"$1" | cut -c1-700
}

# deployment NS NAME IMAGE [ARCH]: a Deployment of one container `app` running IMAGE (an image
# string only: kwok pulls nothing), with nodeSelector kubernetes.io/arch: ARCH when given (then its
# pods stay Pending: no such node; nothing waits for them).
deployment() {
  local selector=""
  [[ -z "${4:-}" ]] || selector="nodeSelector: {kubernetes.io/arch: $4}"
  kc -n "$1" apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $2, labels: {app: $2}}
spec:
  replicas: 1
  selector: {matchLabels: {app: $2}}
  template:
    metadata: {labels: {app: $2}}
    spec:
      terminationGracePeriodSeconds: 0
      $selector
      containers: [{name: app, image: "$3"}]
EOF
}
# dep_state NS NAME: "IMAGE GENERATION REVISION-ANNOTATION" of a Deployment.
dep_state() {
  kc -n "$1" get "deployment/$2" -o json |
    jq -r '"\(.spec.template.spec.containers[0].image) \(.metadata.generation) \(.metadata.annotations["rollgate.io/revision"] // "-")"'
}
# untouched NS NAME OLD_STATE WHAT: PASS/FAIL that the Deployment is as it was created.
untouched() {
  local now
  now=$(dep_state "$1" "$2")
  if [[ "$now" == "$3" ]]; then
    pass "$4: deployment/$2 untouched (image, generation, no rollgate.io/revision: $now)"
  else
    fail "$4: deployment/$2 was changed: now '$now', created as '$3'"
  fi
}
# warning_event NS ROLLOUT REASON: the messages of the Warning Events REASON on ROLLOUT, waiting up
# to 15 s for one (Events are sent off the reconcile path).
warning_event() {
  local until=$((SECONDS + 15)) out
  while :; do
    out=$(kc -n "$1" get events -o json | jq -r --arg n "$2" --arg r "$3" '.items[]
      | select(.involvedObject.name == $n and .involvedObject.kind == "ContainerRollout"
               and .reason == $r and .type == "Warning") | .message')
    [[ -z "$out" && $SECONDS -lt $until ]] || break
    sleep 1
  done
  printf '%s' "$out"
}

# one_env_rollout NS NAME IMAGE IMAGE_POLICY DEADLINE DEPLOYMENT: a rollout of one environment,
# staging (the rollout's own namespace), with spec.imagePolicy IMAGE_POLICY (YAML flow style).
one_env_rollout() {
  kc -n "$1" apply -f - >"$work/apply.out" 2>&1 <<EOF || { fail "apply rollout $2: $(one_line "$(cat "$work/apply.out")")"; finish; }
apiVersion: rollgate.io/v1alpha1
kind: ContainerRollout
metadata: {name: $2}
spec:
  images: {app: "$3"}
  imagePolicy: $4
  progressDeadlineSeconds: $5
  environments:
  - name: staging
    targets: [{deployment: $6, containers: {app: app}}]
EOF
}

# expect_failed NS ROLLOUT REASON DEPLOYMENT OLD_STATE WANT...: the rollout ends Failed with REASON
# in its environment, a message holding each WANT, a Warning Event REASON, nothing recorded, the
# Deployment untouched.
expect_failed() {
  local n=$1 name=$2 reason=$3 dep=$4 old=$5 msg w ok=1 events
  shift 5
  if ! wait_rollout "$n" "$name" 60 "$ended"; then
    fail "$name: not ended after 60 s, want Failed/$reason: $(describe "$r")"
    return
  fi
  msg=$(env_field "$r" staging message)
  for w in "$@"; do [[ "$msg" == *"$w"* ]] || ok=0; done
  if [[ $(jq -r .status.phase <<<"$r") == Failed && $(env_field "$r" staging phase) == Failed &&
    $(env_field "$r" staging reason) == "$reason" ]] && ((ok)); then
    pass "$name: rollout and environment Failed, reason $reason, message naming $*: \"$msg\""
  else
    fail "$name: want Failed/$reason with a message naming $*: $(describe "$r")"
  fi
  if [[ $(jq '[.status.environments // [] | .[].targets // [] | .[].previousImages // {} | length] | add // 0' <<<"$r") == 0 ]]; then
    pass "$name: no previous images recorded (the environment never reached its patch)"
  else
    fail "$name: previous images recorded: $(jq -c '[.status.environments[].targets]' <<<"$r")"
  fi
  untouched "$n" "$dep" "$old" "$name"
  events=$(warning_event "$n" "$name" "$reason")
  if [[ -n "$events" ]]; then
    pass "$name: Warning Event $reason: $(one_line "$events")"
  else
    fail "$name: no Warning Event $reason on the rollout"
  fi
}

# start_controller NS AUTH_FILE LOG: a rollgate-controller for NS only, trusting the registry's CA,
# with the credentials of AUTH_FILE; sets pid, metrics (its /metrics URL). Waits for /readyz.
start_controller() {
  local mport hport until=$((SECONDS + 30))
  read -r mport hport < <(python3 "$repo/hack/lib/free-ports.py" 2)
  "$controller_bin" --kubeconfig "$KUBECONFIG" --namespace "$1" --allowed-registries "$reg" \
    --registry-ca-file "$ca" --registry-auth-file "$2" --log-level debug \
    --metrics-bind-address "127.0.0.1:$mport" --health-probe-bind-address "127.0.0.1:$hport" \
    >"$3" 2>&1 &
  pid=$!
  metrics=http://127.0.0.1:$mport/metrics
  until curl -fsS -o /dev/null "http://127.0.0.1:$hport/readyz" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= until)); then
      fail "rollgate-controller for $1 did not become ready: $(one_line "$(tail -n 12 "$3")")"
      finish
    fi
    sleep 0.5
  done
}

# metrics_of URL: JSON {results: {RESULT: count}, count, sum, p50, scope} of
# rollgate_image_resolutions_total and rollgate_image_resolve_seconds (its result="resolved"
# series when it has a result label; the controller observes successful lookups only), p50
# interpolated within the buckets.
metrics_of() {
  curl -fsS "$1" >"$work/metrics.txt" || { echo '{}'; return; }
  python3 - "$work/metrics.txt" <<'PY'
import json, math, re, sys
series = re.compile(r'^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
labels = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')
results, buckets, total = {}, {}, {"sum": 0.0, "count": 0.0}
rows = []
for line in open(sys.argv[1]):
    m = series.match(line)
    if not m or line.startswith("#"):
        continue
    rows.append((m.group(1), dict(labels.findall(m.group(2) or "")), float(m.group(3))))
h = "rollgate_image_resolve_seconds"
by_result = any("result" in l for n, l, _ in rows if n.startswith(h + "_"))
for name, l, v in rows:
    if name == "rollgate_image_resolutions_total":
        results[l.get("result", "")] = results.get(l.get("result", ""), 0) + v
    elif name.startswith(h + "_") and (not by_result or l.get("result") == "resolved"):
        if name == h + "_bucket":
            le = math.inf if l["le"] == "+Inf" else float(l["le"])
            buckets[le] = buckets.get(le, 0) + v
        elif name in (h + "_sum", h + "_count"):
            total[name[len(h) + 1:]] += v
p50, prev_le, prev_c = None, 0.0, 0.0
count = buckets.get(math.inf, 0)
for le in sorted(buckets):
    c = buckets[le]
    if count and c >= count / 2:
        p50 = prev_le if math.isinf(le) else prev_le + (le - prev_le) * (count / 2 - prev_c) / max(c - prev_c, 1e-12)
        break
    prev_le, prev_c = le, c
print(json.dumps({"results": results, "count": total["count"], "sum": total["sum"], "p50": p50,
                  "buckets": len(buckets), "scope": 'result="resolved"' if by_result else "successful lookups only"}))
PY
}

# --- the registry, the images, the CRD, the namespaces, the controllers -------------------------
read -r port < <(python3 "$repo/hack/lib/free-ports.py" 1)
up "$basic_dir" "$port" --tls --htpasswd "$user"
if ! ROLLGATE_REGISTRY_CERT_DIR=$cert_dir ROLLGATE_REGISTRY_AUTHFILE=$authfile \
  bash "$repo/hack/multiarch-image.sh" --out "$work/images" --push "$reg" >"$work/pushed" 2>"$work/push.err"; then
  fail "hack/multiarch-image.sh --push: $(one_line "$(tail -n 3 "$work/push.err")")"
  finish
fi
index_digest=$(awk -v r="$reg/testapp:2.0-multiarch" '$1 == r { print $2 }' "$work/pushed")
read -r amd_digest amd_size < <(awk '$1 == "linux/amd64" { print $2, $4 }' "$work/pushed")
read -r arm_digest arm_size < <(awk '$1 == "linux/arm64" { print $2, $4 }' "$work/pushed")
read -r large_digest large_size < <(awk -v r="$reg/testapp:2.0-large" '$1 == r { print $2, $4 }' "$work/pushed")
echo "info: pushed to $reg: 2.0-multiarch $index_digest (amd64 $amd_digest $amd_size B, arm64 $arm_digest $arm_size B), 2.0-large $large_digest $large_size B"

echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$work/policy.json"
# push_as FROM_TAG TAG: the archive hack/multiarch-image.sh wrote for FROM_TAG pushed as
# REG/testapp:TAG, its digest preserved; prints the digest.
push_as() {
  skopeo --policy "$work/policy.json" copy --quiet --all --preserve-digests --dest-cert-dir "$cert_dir" \
    --dest-authfile "$authfile" --digestfile "$work/digest" \
    "oci-archive:$work/images/testapp-$1.tar:$1" "docker://$reg/testapp:$2" >"$work/skopeo.out" 2>&1 ||
    { fail "skopeo copy $1 -> $reg/testapp:$2: $(one_line "$(cat "$work/skopeo.out")")"; finish; }
  cat "$work/digest"
}
if [[ $(push_as 2.0-multiarch 2.0) == "$index_digest" ]]; then
  pass "testapp:2.0 pushed as a copy of the index ($index_digest)"
else
  fail "testapp:2.0 was not pushed with the index digest $index_digest"
fi

# The controller with a wrong password: the same registry, the same user, another password.
jq -n --arg reg "$reg" --arg a "$(printf '%s:wrong-%s' "$user" "$password" | base64 -w0)" \
  '{auths: {($reg): {auth: $a}}}' >"$work/wrong-auth.json"
chmod 0600 "$work/wrong-auth.json"
good_auth=$(jq -r --arg reg "$reg" '.auths[$reg].auth // ""' "$authfile")
wrong_auth=$(jq -r --arg reg "$reg" '.auths[$reg].auth // ""' "$work/wrong-auth.json")
if [[ ${#good_auth} -lt 16 || ${#wrong_auth} -lt 16 ]]; then
  fail "no auth string for $reg in $authfile or $work/wrong-auth.json"
  finish
fi

# explained: the API server publishes the CRD's new schema a moment after the apply.
explained() {
  for _ in $(seq 1 20); do
    kc explain containerrollout.spec.imagePolicy >/dev/null 2>&1 && return 0
    sleep 1
  done
  return 1
}
if out=$(kc apply --server-side --force-conflicts --field-manager=rollgate-e2e -f "$ROLLGATE_CRD" 2>&1) &&
  kc wait --for=condition=Established --timeout=60s crd/containerrollouts.rollgate.io >/dev/null 2>&1 && explained; then
  pass "the CRD ($ROLLGATE_CRD) is applied and has spec.imagePolicy"
else
  fail "the CRD does not apply or lacks spec.imagePolicy: $(one_line "$out")"
  finish
fi
for n in "$ns" "$auth_ns"; do
  kc create namespace "$n" >/dev/null
  kc label namespace "$n" rollgate.io/e2e=registry-promotion >/dev/null
done
for _ in $(seq 1 100); do
  kc -n "$ns" get serviceaccount default >/dev/null 2>&1 && kc -n "$auth_ns" get serviceaccount default >/dev/null 2>&1 && break
  sleep 0.1
done

old=$reg/testapp:1.0 # what every Deployment runs before (never pushed; kwok pulls nothing)
deployment "$ns" staging-app "$old"
deployment "$ns" production-app "$old"
deployment "$ns" missing-app "$old"
deployment "$ns" large-app "$old"
deployment "$ns" s390x-app "$old" s390x
deployment "$ns" platforms-app "$old"
deployment "$ns" unreachable-app "$old"
deployment "$auth_ns" auth-app "$old"
for d in "$ns staging-app" "$ns production-app" "$ns missing-app" "$ns large-app" "$ns platforms-app" \
  "$ns unreachable-app" "$auth_ns auth-app"; do
  if ! out=$(kc -n "${d% *}" rollout status "deployment/${d#* }" --timeout=90s 2>&1); then
    fail "deployment ${d/ //} did not become available: $(one_line "$out")"
    finish
  fi
done
declare -A created
for d in staging-app production-app missing-app large-app s390x-app platforms-app unreachable-app; do
  created[$d]=$(dep_state "$ns" "$d")
done
created[auth-app]=$(dep_state "$auth_ns" auth-app)

start_controller "$ns" "$authfile" "$main_log"
main_pid=$pid main_metrics=$metrics
start_controller "$auth_ns" "$work/wrong-auth.json" "$auth_log"
auth_pid=$pid auth_metrics=$metrics
echo "info: controllers ready (pids $main_pid for $ns, $auth_pid for $auth_ns), $((SECONDS - start)) s in"

# --- 5 (started first: it takes the deadline) ----------------------------------------------------
one_env_rollout "$auth_ns" wrong-password "$reg/testapp:2.0-multiarch" '{}' 30 auth-app
auth_applied=$(date +%s)
# Its environment's phase every second ("EPOCH PHASE" lines) while scenarios 1-4 run.
while :; do
  printf '%s %s\n' "$(date +%s)" \
    "$(kc -n "$auth_ns" get crol/wrong-password -o jsonpath='{.status.environments[0].phase}' 2>/dev/null || true)"
  sleep 1
done >"$work/auth-phases" 2>/dev/null &
sampler_pid=$!

# --- 1. pinned promotion while the tag moves -----------------------------------------------------
t1=$SECONDS
kc -n "$ns" apply -f - >"$work/apply.out" 2>&1 <<EOF || { fail "apply rollout pinned: $(one_line "$(cat "$work/apply.out")")"; finish; }
apiVersion: rollgate.io/v1alpha1
kind: ContainerRollout
metadata: {name: pinned}
spec:
  images: {app: "$reg/testapp:2.0"}
  imagePolicy: {pinDigests: true, maxSize: {app: 10Mi}}
  progressDeadlineSeconds: 120
  environments:
  - name: staging
    targets: [{deployment: staging-app, containers: {app: app}}]
  - name: production
    approval: Manual
    targets: [{deployment: production-app, containers: {app: app}}]
EOF
# --- 2, 3, 4: the failures of the same controller, at the same time ------------------------------
one_env_rollout "$ns" not-found "$reg/testapp:2.0-missing" '{}' 120 missing-app
one_env_rollout "$ns" too-large "$reg/testapp:2.0-large" '{maxSize: {app: 1Mi}}' 120 large-app
one_env_rollout "$ns" arch-s390x "$reg/testapp:2.0-large" '{}' 120 s390x-app
one_env_rollout "$ns" platforms-s390x "$reg/testapp:2.0-multiarch" '{platforms: [linux/s390x]}' 120 platforms-app

pinned=$reg/testapp:2.0@$index_digest
if wait_rollout "$ns" pinned 90 '([.status.environments[]? | select(.name == "staging" and .phase == "Succeeded")] | length == 1)
    and ([.status.environments[]? | select(.name == "production" and .phase == "AwaitingApproval")] | length == 1)'; then
  pass "pinned: staging Succeeded and production AwaitingApproval after $((SECONDS - t1)) s"
else
  fail "pinned: want staging Succeeded and production AwaitingApproval: $(describe "$r")"
fi
read -r img _ rev < <(dep_state "$ns" staging-app)
if [[ "$img" == "$pinned" && "$rev" != - ]]; then
  pass "pinned: staging's Deployment runs $img (revision $rev)"
else
  fail "pinned: staging's Deployment runs '$img' (revision $rev), want $pinned"
fi
untouched "$ns" production-app "${created[production-app]}" "pinned, production awaiting approval"
# status.resolvedImages: exactly what the registry holds for testapp:2.0 (the index).
want=$(jq -nc --arg ref "$reg/testapp:2.0" --arg d "$index_digest" --arg ad "$amd_digest" --arg rd "$arm_digest" \
  --argjson asz "$amd_size" --argjson rsz "$arm_size" '[{name: "app", reference: $ref, digest: $d,
    mediaType: "application/vnd.oci.image.index.v1+json", size: ([$asz, $rsz] | max),
    platforms: [{platform: "linux/amd64", digest: $ad, size: $asz}, {platform: "linux/arm64", digest: $rd, size: $rsz}]}]')
resolved_of() {
  jq -c '[.status.resolvedImages // [] | .[] | {name, reference, digest, mediaType, size,
    platforms: (.platforms // [] | map({platform, digest, size}) | sort_by(.platform))}]' <<<"$1"
}
got=$(resolved_of "$r")
if [[ "$got" == "$want" ]]; then
  pass "pinned: status.resolvedImages records the index digest, media type and both platforms with hack/multiarch-image.sh's digests and sizes: $got"
else
  fail "pinned: status.resolvedImages is $got, want $want"
fi
summary=$(jq -r '.status.resolvedSummary // ""' <<<"$r")
wide=$(kc -n "$ns" get crol pinned -o wide 2>&1 || true)
if [[ -n "$summary" && "$summary" != *$'\n'* && "$wide" == *"$summary"* ]]; then
  pass "pinned: resolvedSummary \"$summary\" is shown by kubectl get crol -o wide"
else
  fail "pinned: resolvedSummary \"$summary\" not shown by kubectl get crol -o wide: $(one_line "$wide")"
fi

# The tag moves: testapp:2.0 is now the 20 MiB image (over the 10Mi budget).
if [[ $(push_as 2.0-large 2.0) == "$large_digest" ]]; then
  pass "pinned: testapp:2.0 re-pushed as the large image ($large_digest)"
else
  fail "pinned: testapp:2.0 not re-pushed as $large_digest"
fi
kc -n "$ns" annotate crol/pinned "rollgate.io/promote=$(date +%s%N)" --overwrite >/dev/null
t_approve=$SECONDS
if wait_rollout "$ns" pinned 90 "$ended"; then :; fi
read -r img _ rev < <(dep_state "$ns" production-app)
if [[ $(jq -r .status.phase <<<"$r") == Succeeded && "$img" == "$pinned" ]]; then
  pass "pinned: approved, production Succeeded after $((SECONDS - t_approve)) s with the ORIGINAL digest: $img"
else
  fail "pinned: after the approval want Succeeded with $pinned in production: deployment runs '$img'; $(describe "$r")"
fi
read -r img _ _ < <(dep_state "$ns" staging-app)
if [[ "$img" == "$pinned" ]]; then pass "pinned: staging still runs $pinned"; else fail "pinned: staging now runs $img"; fi
got=$(resolved_of "$r")
if [[ "$got" == "$want" ]]; then
  pass "pinned: status.resolvedImages still records the first environment's resolution"
else
  fail "pinned: status.resolvedImages changed after the tag moved: $got"
fi
events=$(warning_event "$ns" pinned TagMoved)
if [[ -n "$events" && "$events" == *"$index_digest"* && "$events" == *"$large_digest"* && "$events" == *"testapp:2.0"* ]]; then
  pass "pinned: Warning Event TagMoved names the image and both digests: $(one_line "$events")"
else
  fail "pinned: want a Warning Event TagMoved naming testapp:2.0, $index_digest and $large_digest; got: $(one_line "${events:-none}")"
fi

# --- 2, 3, 4 -------------------------------------------------------------------------------------
expect_failed "$ns" not-found ImageNotFound missing-app "${created[missing-app]}" "testapp:2.0-missing"
expect_failed "$ns" too-large ImageTooLarge large-app "${created[large-app]}" "testapp:2.0-large"
expect_failed "$ns" arch-s390x PlatformMissing s390x-app "${created[s390x-app]}" "testapp:2.0-large" s390x
expect_failed "$ns" platforms-s390x PlatformMissing platforms-app "${created[platforms-app]}" "testapp:2.0-multiarch" s390x

# --- 5. a wrong password ------------------------------------------------------------------------
wait_rollout "$auth_ns" wrong-password 90 "$ended" || true
sleep 1 # one more sample of the Failed phase
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=""
failed_at=$(awk '$2 == "Failed" { print $1; exit }' "$work/auth-phases")
elapsed=$((${failed_at:-0} - auth_applied))
seen=$(awk '{ print $2 }' "$work/auth-phases" | sort -u | tr '\n' ' ')
if [[ $(jq -r .status.phase <<<"$r") == Failed && -n "$failed_at" && $elapsed -ge 29 && $elapsed -le 90 ]]; then
  pass "wrong-password: Failed ${elapsed} s after the apply (progressDeadlineSeconds 30), environment phases seen: $seen"
else
  fail "wrong-password: want Failed 30-90 s after the apply (seen Failed at +${elapsed} s): $(describe "$r")"
fi
if [[ "$seen" == *Pending* ]] && ! grep -qvxE 'Pending|Failed|' < <(tr ' ' '\n' <<<"$seen"); then
  pass "wrong-password: the environment stayed Pending while the controller retried"
else
  fail "wrong-password: environment phases seen while retrying: $seen (want only Pending, then Failed)"
fi
msg=$(env_field "$r" staging message)
if [[ $(env_field "$r" staging phase) == Failed && $(env_field "$r" staging reason) == RegistryAuthFailed &&
  "$msg" == *"testapp:2.0-multiarch"* ]]; then
  pass "wrong-password: reason RegistryAuthFailed: \"$msg\""
else
  fail "wrong-password: want RegistryAuthFailed naming testapp:2.0-multiarch: $(describe "$r")"
fi
untouched "$auth_ns" auth-app "${created[auth-app]}" wrong-password
events=$(warning_event "$auth_ns" wrong-password RegistryAuthFailed)
if [[ -n "$events" ]]; then
  pass "wrong-password: Warning Event RegistryAuthFailed: $(one_line "$events")"
else
  fail "wrong-password: no Warning Event RegistryAuthFailed"
fi

# --- 6. the registry down for 20 s ---------------------------------------------------------------
# The pre-flight's cost per image against a live registry: the histogram before the registry goes
# down (scenarios 1-4: every observation a real answer of the registry), for the FIGURE line.
live_m=$(metrics_of "$main_metrics")
bash "$repo/hack/registry.sh" stop --dir "$basic_dir" >/dev/null 2>&1 || fail "hack/registry.sh stop failed"
if curl -fsS --cacert "$ca" -o /dev/null "https://$reg/v2/" 2>/dev/null; then
  fail "the registry still answers after hack/registry.sh stop"
fi
one_env_rollout "$ns" unreachable "$reg/testapp:2.0-multiarch" '{}' 120 unreachable-app
t6=$SECONDS
phases="" waiting_msg="" changed=""
while ((SECONDS - t6 < 20)); do
  r=$(rollout "$ns" unreachable)
  phases+=" $(jq -r .status.phase <<<"$r")/$(env_field "$r" staging phase)"
  m="$(jq -r '.status.message // ""' <<<"$r") | $(env_field "$r" staging reason) | $(env_field "$r" staging message)"
  if [[ "$m" =~ [Rr]egistry ]]; then waiting_msg=$m; fi
  [[ $(dep_state "$ns" unreachable-app) == "${created[unreachable-app]}" ]] || changed=$(dep_state "$ns" unreachable-app)
  alive
  sleep 1
done
seen=$(tr ' ' '\n' <<<"$phases" | grep -v '^$' | sort -u | tr '\n' ' ')
if [[ "$seen" == */Pending* ]] && ! grep -qvxE '(Pending|Progressing|null)/(Pending|)|' < <(tr ' ' '\n' <<<"$seen"); then
  pass "unreachable: for 20 s the rollout waited, environment Pending (rollout/environment phases seen: $seen)"
else
  fail "unreachable: rollout/environment phases seen while the registry was down: $seen (want the environment Pending)"
fi
if [[ -n "$waiting_msg" ]]; then
  pass "unreachable: the status says it waits for the registry: $(one_line "$waiting_msg")"
else
  fail "unreachable: no status message mentions the registry while it is down: $(describe "$r")"
fi
if [[ -z "$changed" ]]; then
  pass "unreachable: nothing patched while the registry was down"
else
  fail "unreachable: deployment/unreachable-app changed while the registry was down: $changed"
fi
if bash "$repo/hack/registry.sh" start --dir "$basic_dir" >/dev/null 2>"$work/start.err"; then
  pass "the registry started again after $((SECONDS - t6)) s down"
else
  fail "hack/registry.sh start: $(one_line "$(cat "$work/start.err")")"
fi
t_back=$SECONDS
wait_rollout "$ns" unreachable 100 "$ended" || true
read -r img _ _ < <(dep_state "$ns" unreachable-app)
if [[ $(jq -r .status.phase <<<"$r") == Succeeded && "$img" == "$reg/testapp:2.0-multiarch@$index_digest" ]]; then
  pass "unreachable: Succeeded $((SECONDS - t_back)) s after the registry came back, pinned (imagePolicy: {}): $img"
else
  fail "unreachable: want Succeeded with $reg/testapp:2.0-multiarch@$index_digest; deployment runs '$img'; $(describe "$r")"
fi

# --- 7. metrics ---------------------------------------------------------------------------------
main_m=$(metrics_of "$main_metrics")
auth_m=$(metrics_of "$auth_metrics")
echo "info: metrics of the controller for $ns: $main_m"
echo "info: metrics of the controller for $auth_ns: $auth_m"
res() { jq -r --arg k "$2" '.results[$k] // 0' <<<"$1"; }
if awk -v r="$(res "$main_m" resolved)" -v n="$(res "$main_m" not_found)" -v u="$(res "$main_m" unreachable)" \
  'BEGIN { exit !(r >= 5 && n >= 1 && u >= 1) }'; then
  pass "metrics: rollgate_image_resolutions_total resolved=$(res "$main_m" resolved) not_found=$(res "$main_m" not_found) unreachable=$(res "$main_m" unreachable) invalid=$(res "$main_m" invalid) (controller for $ns)"
else
  fail "metrics: want resolved >= 5, not_found >= 1, unreachable >= 1 on the controller for $ns: $main_m"
fi
if awk -v a="$(res "$auth_m" auth_failed)" -v r="$(res "$auth_m" resolved)" 'BEGIN { exit !(a >= 1 && r == 0) }'; then
  pass "metrics: rollgate_image_resolutions_total auth_failed=$(res "$auth_m" auth_failed), resolved 0 (controller with the wrong password)"
else
  fail "metrics: want auth_failed >= 1 and resolved 0 on the controller with the wrong password: $auth_m"
fi
echo "info: the controller for $ns before the registry went down: $live_m"
if [[ $(jq -r '.p50 != null and .count >= 1 and .buckets >= 2' <<<"$live_m") == true &&
  $(jq -r '.count' <<<"$main_m") != "$(jq -r '.count' <<<"$live_m")" ]]; then
  p50=$(jq -r '.p50' <<<"$live_m")
  mean=$(jq -r 'if .count > 0 then .sum / .count else 0 end' <<<"$live_m")
  scope=$(jq -r .scope <<<"$live_m")
  pass "metrics: rollgate_image_resolve_seconds observed $(jq -r .count <<<"$live_m") resolutions against the live registry, $(jq -r .count <<<"$main_m") by the end ($scope)"
  printf 'FIGURE: image pre-flight per image p50=%.4fs (rollgate_image_resolve_seconds, %s, the %d resolutions of scenarios 1-4 against the live TLS+htpasswd registry, interpolated in the buckets; mean %.4fs)\n' \
    "$p50" "$scope" "$(jq -r '.count | floor' <<<"$live_m")" "$mean"
else
  fail "metrics: rollgate_image_resolve_seconds has no usable observations: before $live_m, at the end $main_m"
fi

# --- secrets ------------------------------------------------------------------------------------
kc -n "$ns" get crol -o json >"$work/status.json" 2>&1 || true
kc -n "$auth_ns" get crol -o json >>"$work/status.json" 2>&1 || true
kc -n "$ns" get events -o json >"$work/events.json" 2>&1 || true
kc -n "$auth_ns" get events -o json >>"$work/events.json" 2>&1 || true
leaks=""
for f in "$main_log" "$auth_log" "$work/status.json" "$work/events.json"; do
  for s in "$password" "$good_auth" "$wrong_auth"; do
    if grep -qF -- "$s" "$f"; then leaks+=" $(basename "$f")"; fi
  done
done
if [[ -z "$leaks" ]]; then
  pass "the password and its auth strings appear in neither controller log ($(cat "$main_log" "$auth_log" | wc -l) lines), no status, no Event"
else
  fail "a credential appears in:$leaks"
fi

finish
