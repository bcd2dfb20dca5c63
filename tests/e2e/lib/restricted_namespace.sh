# shellcheck shell=bash
# Sourced by the real-node e2e tests (real_node_validation_test.sh, real_node_smoke_test.sh), after
# lib/checks.sh and with `kubectl` and ROLLGATE_REGISTRY set:
#
#   new_namespace NS [LABEL=VALUE...]
#
# A namespace enforcing the restricted Pod Security Standard, created with its labels (so that
# admission never sees it without them) and the extra labels given; a check that a non-compliant
# pod (testapp:1.0 without a securityContext) is refused there by the API server (a server-side
# dry run); then a wait (up to 30 s) for its default ServiceAccount.
new_namespace() {
  local ns=$1 out l
  local labels="pod-security.kubernetes.io/enforce: restricted, pod-security.kubernetes.io/enforce-version: latest"
  shift
  for l in "$@"; do labels+=", ${l%%=*}: \"${l#*=}\""; done
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
  labels: {$labels}
EOF
  if out=$(kubectl -n "$ns" run psa-probe --image="$ROLLGATE_REGISTRY/testapp:1.0" --restart=Never \
    --dry-run=server -o name 2>&1); then
    fail "namespace $ns: a pod without a securityContext was admitted: $out"
  elif [[ "$out" == *"violates PodSecurity \"restricted:latest\""* ]]; then
    pass "namespace $ns enforces restricted (a non-compliant pod is refused)"
  else
    fail "namespace $ns: unexpected answer to a non-compliant pod: $(one_line "$out")"
  fi
  local sa_deadline=$((SECONDS + 30))
  until kubectl -n "$ns" get serviceaccount default >/dev/null 2>&1 || ((SECONDS > sa_deadline)); do
    sleep 0.2
  done
}
