#!/usr/bin/env bash
# End-to-end test of the ContainerRollout CRD (crds/rollgate.io_containerrollouts.yaml) against the
# real kube-apiserver: the API server accepts the CRD (including the estimated cost of its CEL
# rules), every schema field has a description, every object in tests/testdata/crd/valid (and
# manifests/examples/split-images.yaml) is accepted, every object in tests/testdata/crd/invalid is
# refused with the message named on its first line (`# expect: <substring>`), a rollout at every
# list/map maximum is accepted (runtime CEL cost), defaults are applied, updates are validated too,
# the printer columns, short name, category and `kubectl explain` work, and status is written
# only through the status subresource.
#
# Runs in its own namespace, deleted at the end. The CRD stays installed (other e2e tests share the
# cluster and need it; applying it is idempotent). Prints PASS/FAIL per check and exits non-zero
# when any check fails.
#
# Needs KUBECONFIG (the cluster's admin kubeconfig) and jq; kubectl comes from $CONTROL_PLANE_BIN
# (default: computed from hack/control-plane-versions.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
if [[ -z "${CONTROL_PLANE_BIN:-}" ]]; then
  # shellcheck source-path=SCRIPTDIR source=../../hack/control-plane-versions.sh
  source "$repo/hack/control-plane-versions.sh"
fi
kubectl=$CONTROL_PLANE_BIN/kubectl
[[ -x "$kubectl" ]] || { echo "FAIL: no kubectl at $kubectl (run hack/build-control-plane.sh)"; exit 1; }
[[ -n "${KUBECONFIG:-}" && -f "$KUBECONFIG" ]] || { echo "FAIL: KUBECONFIG is not set to a file"; exit 1; }
command -v jq >/dev/null || { echo "FAIL: jq is not installed (hack/bootstrap.sh installs it)"; exit 1; }
export KUBECONFIG

crd_file=$repo/crds/rollgate.io_containerrollouts.yaml
crd_name=containerrollouts.rollgate.io
data=$repo/tests/testdata/crd
example=$repo/manifests/examples/split-images.yaml

ns=rollgate-crd-$$-$RANDOM
work=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-crd-test.XXXXXX")
failures=0
# A private discovery cache: a cache shared with other runs may predate the CRD.
kc() { "$kubectl" --cache-dir "$work/kube-cache" "$@"; }
k() { kc -n "$ns" "$@"; }
pass() { echo "PASS: $*"; }
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
# one_line TEXT: TEXT on one line (for FAIL messages).
one_line() { tr '\n' ' ' <<<"$1" | sed 's/  */ /g'; }

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  "$kubectl" delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

start=$SECONDS

# --- 1. The API server accepts the CRD (schema, CEL cost) and establishes it ---------------------
if out=$(kc apply --server-side --force-conflicts --field-manager=rollgate-e2e -f "$crd_file" 2>&1); then
  pass "CRD accepted by the API server (structural schema, CEL rules within the cost budget)"
else
  fail "CRD refused: $(one_line "$out")"
  echo "crd test: FAIL, cannot go on without the CRD"
  exit 1
fi
if kc wait --for=condition=Established --timeout=60s "crd/$crd_name" >/dev/null &&
  kc wait --for=condition=NamesAccepted --timeout=60s "crd/$crd_name" >/dev/null; then
  pass "CRD Established and NamesAccepted"
else
  fail "CRD not Established: $(kc get "crd/$crd_name" -o jsonpath='{.status.conditions}')"
fi

kc create namespace "$ns" >/dev/null
# Discovery can trail the Established condition by a moment.
for _ in $(seq 1 100); do
  k get crol >/dev/null 2>&1 && break
  sleep 0.2
done

# --- 2. Names, scope, subresources and every field described, as served ------------------------
served=$(kc get "crd/$crd_name" -o json)
got=$(jq -r '[.spec.group, .spec.scope, .spec.names.kind, .spec.names.plural,
  .spec.names.singular, (.spec.names.shortNames | join(",")), (.spec.names.categories | join(",")),
  (.spec.versions | map(select(.served and .storage)) | map(.name) | join(",")),
  (.spec.versions[0].subresources.status != null)] | join(" ")' <<<"$served")
want="rollgate.io Namespaced ContainerRollout containerrollouts containerrollout crol rollgate v1alpha1 true"
if [[ "$got" == "$want" ]]; then
  pass "group, scope, names, short name, category, served+storage version, status subresource"
else
  fail "CRD names: got '$got', want '$want'"
fi
# Every schema node (properties, items, additionalProperties) but metadata has a description.
undescribed=$(jq -r '
  def nodes($p):
    [$p, .],
    ((.properties // {}) | to_entries[] as $e | $e.value | nodes($p + "." + $e.key)),
    (.items // empty | nodes($p + "[]")),
    (.additionalProperties // empty | if type == "object" then nodes($p + "{}") else empty end);
  .spec.versions[] | select(.name == "v1alpha1") | .schema.openAPIV3Schema
  | [nodes("<root>") | select(.[0] != "<root>.metadata")
     | select((.[1].description // "") == "") | .[0]] | join(" ")' <<<"$served")
nodes=$(jq '[.spec.versions[0].schema.openAPIV3Schema | .. | objects | select(has("type"))] | length' <<<"$served")
if [[ -z "$undescribed" ]]; then
  pass "every schema field has a description ($nodes typed schema nodes)"
else
  fail "schema fields without a description: $undescribed"
fi

# --- 3. Valid objects are accepted ---------------------------------------------------------------
# The example names its namespace (app); here it goes into the test namespace instead.
sed '/^metadata:/,/^spec:/{/^  namespace:/d}' "$example" >"$work/split-images.yaml"
for f in "$data"/valid/*.yaml "$work/split-images.yaml"; do
  name=${f#"$repo"/}
  [[ "$f" == "$work/split-images.yaml" ]] && name=${example#"$repo"/}
  if out=$(k create --dry-run=server -f "$f" 2>&1); then
    pass "valid: $name accepted"
  else
    fail "valid: $name refused: $(one_line "$out")"
  fi
done

# A rollout at every maximum: 32 images, 16 environments (each in a remote cluster whose Secret's
# name has the longest length) x 32 targets x 16 containers, 16 smoke checks per environment and
# 8 per target. Proves the bounds are allowed and the CEL rules' actual
# cost stays within the per-request budget.
{
  printf 'apiVersion: rollgate.io/v1alpha1\nkind: ContainerRollout\nmetadata: {name: maximal}\n'
  printf 'spec:\n  images:\n'
  for i in $(seq 0 31); do printf '    image-%02d: registry.example.com/app/image-%02d:1.0.0\n' "$i" "$i"; done
  printf '  environments:\n'
  for e in $(seq 0 15); do
    printf '  - name: environment-%02d\n' "$e"
    printf '    cluster: {secretRef: {name: %s}}\n' "$(printf 'c%.0s' $(seq 1 253))"
    printf '    smokeChecks:\n'
    for s in $(seq 0 15); do
      printf '    - {name: environment-check-%02d, image: image-%02d, command: ["true"]}\n' "$s" "$s"
    done
    printf '    targets:\n'
    for t in $(seq 0 31); do
      printf '    - deployment: deployment-%02d\n      containers: {' "$t"
      for c in $(seq 0 15); do printf 'container-%02d: image-%02d, ' "$c" $(((c + t) % 32)); done
      printf '}\n      smokeChecks:\n'
      for s in $(seq 0 7); do
        printf '      - {name: target-%02d-check-%02d, image: image-%02d, command: ["true"]}\n' \
          "$t" "$s" $(((s + t) % 32))
      done
    done
  done
} >"$work/maximal.yaml"
if out=$(k create --dry-run=server -f "$work/maximal.yaml" 2>&1); then
  pass "valid: rollout at every maximum (32 images, 16 environments x 32 targets x 16 containers," \
    "16 smoke checks per environment and 8 per target) accepted"
else
  fail "valid: rollout at every maximum refused: $(one_line "${out:0:600}")"
fi

# --- 4. Invalid objects are refused with a readable message --------------------------------------
for f in "$data"/invalid/*.yaml; do
  name=${f#"$repo"/}
  first=$(head -n 1 "$f")
  expect=${first#"# expect: "}
  if [[ "$first" != "# expect: "* || -z "$expect" ]]; then
    fail "invalid: $name has no '# expect: <message>' first line"
    continue
  fi
  if out=$(k create --dry-run=server -f "$f" 2>&1); then
    fail "invalid: $name was accepted (expected: $expect)"
  elif [[ "$out" == *"$expect"* ]]; then
    pass "invalid: $name refused: $expect"
  else
    fail "invalid: $name refused, but without '$expect': $(one_line "$out")"
  fi
done
# One over each maximum that the invalid files do not cover.
sed -e 's/^metadata: {name: maximal}/metadata: {name: too-many-images}/' \
  -e 's/^  images:$/  images:\n    image-32: registry.example.com\/app\/image-32:1.0.0/' \
  "$work/maximal.yaml" >"$work/too-many-images.yaml"
if out=$(k create --dry-run=server -f "$work/too-many-images.yaml" 2>&1); then
  fail "invalid: 33 images accepted"
elif [[ "$out" == *"spec.images: Too many: 33: must have at most 32 items"* ]]; then
  pass "invalid: 33 images refused: spec.images: Too many"
else
  fail "invalid: 33 images refused, but with: $(one_line "${out:0:600}")"
fi

# --- 5. A real create gets the defaults ----------------------------------------------------------
if out=$(k create -f "$data/valid/minimal.yaml" 2>&1); then
  got=$(k get crol minimal -o json | jq -c '[.spec.progressDeadlineSeconds, .spec.rollback,
    .spec.paused, .spec.environments[0].approval, .spec.environments[0].bakeSeconds]')
  if [[ "$got" == '[600,"Automatic",false,"Automatic",0]' ]]; then
    pass "defaults: progressDeadlineSeconds 600, rollback Automatic, paused false, approval Automatic, bakeSeconds 0"
  else
    fail "defaults on minimal: got $got"
  fi
else
  fail "create minimal: $(one_line "$out")"
fi
if out=$(k create -f "$data/valid/analysis-defaults.yaml" 2>&1); then
  got=$(k get crol analysis-defaults -o json | jq -c '.spec.environments[0] |
    [.analysis.intervalSeconds, .analysis.samples, .targets[0].workerValidation.cuda]')
  if [[ "$got" == '[30,4,"Required"]' ]]; then
    pass "defaults: analysis intervalSeconds 30, samples 4, workerValidation.cuda Required"
  else
    fail "defaults on analysis-defaults: got $got"
  fi
else
  fail "create analysis-defaults: $(one_line "$out")"
fi

if out=$(k create -f "$data/valid/smoke-checks.yaml" 2>&1); then
  got=$(k get crol smoke-checks -o json | jq -c '.spec.environments |
    [.[0].smokeChecks[0].timeoutSeconds, .[0].smokeChecks[0].when,
     .[1].targets[0].smokeChecks[0].timeoutSeconds, .[1].targets[0].smokeChecks[0].when]')
  if [[ "$got" == '[300,"BeforePatch",300,"AfterHealthy"]' ]]; then
    pass "defaults: smokeChecks[].timeoutSeconds 300, when BeforePatch (environments and targets)"
  else
    fail "defaults on smoke-checks: got $got"
  fi
else
  fail "create smoke-checks: $(one_line "$out")"
fi

# --- 6. Updates are validated too ----------------------------------------------------------------
if out=$(k patch crol minimal --type=json -p \
  '[{"op":"add","path":"/spec/environments/-","value":{"name":"dev","targets":[{"deployment":"api","containers":{"api":"backend"}}]}}]' 2>&1); then
  fail "update adding a duplicate environment was accepted"
elif [[ "$out" == *"environment names must be unique"* ]]; then
  pass "update adding a duplicate environment refused: environment names must be unique"
else
  fail "update adding a duplicate environment refused, but with: $(one_line "$out")"
fi
if out=$(k patch crol minimal --type=merge -p '{"spec":{"images":{"backend":"registry.example.com/app/backend:2.0.1"}}}' 2>&1); then
  pass "valid update (new image) accepted"
else
  fail "valid update refused: $(one_line "$out")"
fi

# --- 7. Status only through the status subresource -----------------------------------------------
gen=$(k get crol minimal -o jsonpath='{.metadata.generation}')
k patch crol minimal --type=merge -p '{"status":{"phase":"Failed","revision":9}}' >/dev/null 2>&1 || true
got=$(k get crol minimal -o jsonpath='{.status.phase}|{.status.revision}')
if [[ "$got" == "|" ]]; then
  pass "status written through the main resource is ignored"
else
  fail "status written through the main resource was stored: phase|revision = $got"
fi
status='{"status":{"observedGeneration":'$gen',"revision":2,"phase":"Progressing","currentEnvironment":"dev",
  "message":"rolling out dev","environments":[{"name":"dev","phase":"Updating","startedAt":"2026-01-01T00:00:00Z",
  "finishedAt":"2026-01-01T00:05:00Z","reason":"Updating","message":"patched 1 of 1","attempts":1,
  "approvedAt":"2026-01-01T00:00:00Z","targets":[{"deployment":"api","namespace":"'$ns'",
  "previousImages":{"api":"registry.example.com/app/backend:1.9.0"},"replicas":3,"updatedReplicas":1,
  "readyReplicas":3,"availableReplicas":3}],"validation":{"gpuPods":0,"passed":0,"failed":0,"message":""},
  "analysis":{"samples":1,"passed":1,"failed":0,"lastValue":"NaN","message":"ok"},
  "smokeChecks":[{"name":"imports","target":"api","job":"minimal-imports-0123456789","phase":"Passed",
  "startedAt":"2026-01-01T00:00:00Z","finishedAt":"2026-01-01T00:00:30Z","exitCode":0},
  {"name":"db-migrations","target":"api","job":"minimal-db-migrations-abcdef0123","phase":"Running",
  "startedAt":"2026-01-01T00:01:00Z"}]}],
  "conditions":[{"type":"Progressing","status":"True","reason":"EnvironmentUpdating","message":"dev",
  "observedGeneration":'$gen',"lastTransitionTime":"2026-01-01T00:00:00Z"}],
  "resolvedImages":[{"name":"backend","reference":"registry.example.com/app/backend:2.0.0",
  "digest":"sha256:'$(printf 'a%.0s' {1..64})'","mediaType":"application/vnd.oci.image.index.v1+json",
  "size":9663676416,"platforms":[{"platform":"linux/amd64","digest":"sha256:'$(printf 'b%.0s' {1..64})'",
  "size":9663676416}]}],"resolvedSummary":"backend@sha256:aaaaaaaaaaaa 9.0 GiB",
  "bookkeeping":{"specHash":"abc","handledAnnotations":{"rollgate.io/promote":"1"}}},
  "spec":{"paused":true}}'
if out=$(k patch crol minimal --subresource=status --type=merge -p "$status" 2>&1); then
  stored=$(k get crol minimal -o json)
  # Every field sent is kept: the schema prunes nothing the controller writes.
  got=$(jq -cS '.status' <<<"$stored")
  want=$(jq -cS '.status' <<<"$status")
  if [[ "$got" == "$want" ]]; then
    pass "status written through the status subresource is stored, every field kept (none pruned)"
  else
    fail "status subresource: stored $got, sent $want"
  fi
  got=$(jq -c '[.spec.paused, .metadata.generation]' <<<"$stored")
  if [[ "$got" == "[false,$gen]" ]]; then
    pass "spec changes sent through the status subresource are ignored (generation unchanged)"
  else
    fail "status subresource changed spec.paused/generation: $got (want [false,$gen])"
  fi
else
  fail "status subresource patch refused: $(one_line "$out")"
fi
if out=$(k patch crol minimal --subresource=status --type=merge -p '{"status":{"phase":"Exploded"}}' 2>&1); then
  fail "status with an unknown phase accepted"
elif [[ "$out" == *'status.phase: Unsupported value: "Exploded"'* ]]; then
  pass "status validated too: unknown phase refused"
else
  fail "status with an unknown phase refused, but with: $(one_line "$out")"
fi
if out=$(k patch crol minimal --subresource=status --type=merge \
  -p '{"status":{"conditions":[{"type":"Ready","status":"Maybe","reason":"X","message":"","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}' 2>&1); then
  fail "condition with status Maybe accepted"
elif [[ "$out" == *'Unsupported value: "Maybe"'* ]]; then
  pass "status validated too: condition status must be True, False or Unknown"
else
  fail "condition with status Maybe refused, but with: $(one_line "$out")"
fi

# --- 8. Printer columns, short name, category ----------------------------------------------------
out=$(k get crol 2>&1) || true
header=$(head -n 1 <<<"$out" | tr -s ' ')
row=$(grep '^minimal ' <<<"$out" | tr -s ' ' || true)
if [[ "$header" == "NAME PHASE ENVIRONMENT REVISION AGE" && "$row" == "minimal Progressing dev 2 "* ]]; then
  pass "kubectl get crol: columns NAME PHASE ENVIRONMENT REVISION AGE ($row)"
else
  fail "kubectl get crol: $(one_line "$out")"
fi
out=$(k get crol -o wide 2>&1) || true
if [[ "$(head -n 1 <<<"$out" | tr -s ' ')" == "NAME PHASE ENVIRONMENT REVISION MESSAGE IMAGES AGE" &&
  "$out" == *"rolling out dev"* && "$out" == *"backend@sha256:aaaaaaaaaaaa 9.0 GiB"* ]]; then
  pass "kubectl get crol -o wide adds MESSAGE and IMAGES (status.resolvedSummary)"
else
  fail "kubectl get crol -o wide: $(one_line "$out")"
fi
out=$(k get rollgate -o name 2>&1) || true
if [[ "$out" == *"containerrollout.rollgate.io/minimal"* ]]; then
  pass "category: kubectl get rollgate lists ContainerRollouts"
else
  fail "kubectl get rollgate: $(one_line "$out")"
fi

# --- 9. kubectl explain ---------------------------------------------------------------------------
out=$(kc explain containerrollout.spec.environments 2>&1) || true
if [[ "$out" == *"promoted strictly in this order"* && "$out" == *"targets"*"<[]Object> -required-"* &&
  "$out" == *"approval"* && "$out" == *"analysis"* ]]; then
  pass "kubectl explain containerrollout.spec.environments describes the environments and their fields"
else
  fail "kubectl explain containerrollout.spec.environments: $(one_line "${out:0:600}")"
fi
out=$(kc explain containerrollout.spec --recursive 2>&1) || true
if [[ "$out" == *"progressDeadlineSeconds"* && "$out" == *"workerValidation"* && "$out" == *"intervalSeconds"* ]]; then
  pass "kubectl explain containerrollout.spec --recursive lists the fields"
else
  fail "kubectl explain containerrollout.spec --recursive: $(one_line "${out:0:600}")"
fi

if ((failures == 0)); then
  echo "crd test: PASS, all checks in $((SECONDS - start))s"
  exit 0
fi
echo "crd test: FAIL, $failures failed check(s) in $((SECONDS - start))s"
exit 1
