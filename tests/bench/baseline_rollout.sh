#!/usr/bin/env bash
# The benchmark's baseline: what a CI script does without Rollgate. One ordered rollout:
#
#   baseline_rollout.sh ID NAMESPACE:DEPLOY1,DEPLOY2 [NAMESPACE:DEPLOY1,DEPLOY2 ...]
#
# For each environment in order: one `kubectl set image` on all of the environment's Deployments,
# then `kubectl rollout status` on each of them (which returns once the Deployment is fully rolled
# out), then the next environment. bench.py runs one of these per rollout, in parallel through
# `xargs -P`. Environment: KUBECTL, KUBECONFIG, CONTAINER, NEW_IMAGE, ROLLOUT_TIMEOUT (e.g. 30m),
# optional KUBECACHEDIR. Prints "S ID EPOCH" at the start and "E ID EPOCH RC" at the end (one
# write each, so lines from parallel jobs do not mix); kubectl's output goes to stderr only on
# failure.
set -uo pipefail

id=$1
shift
echo "S $id $EPOCHREALTIME"
rc=0
for env in "$@"; do
  ns=${env%%:*}
  IFS=, read -r -a deploys <<<"${env#*:}"
  if ! out=$("$KUBECTL" -n "$ns" set image deployment "${deploys[@]}" \
    "$CONTAINER=$NEW_IMAGE" 2>&1); then
    printf '%s: set image in %s failed: %s\n' "$id" "$ns" "$out" >&2
    rc=1
    break
  fi
  for d in "${deploys[@]}"; do
    if ! out=$("$KUBECTL" -n "$ns" rollout status "deployment/$d" \
      --timeout="${ROLLOUT_TIMEOUT:-30m}" 2>&1); then
      printf '%s: rollout status %s/%s failed: %s\n' "$id" "$ns" "$d" "$out" >&2
      rc=1
      break 2
    fi
  done
done
echo "E $id $EPOCHREALTIME $rc"
exit 0
