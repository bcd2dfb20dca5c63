#!/usr/bin/env bash
# `make bench`: Rollgate against a `kubectl set image` + `kubectl rollout status` script on one
# throwaway local control plane; reaction latency; controller RSS, CPU and API requests.
#
#   hack/bench.sh [--preset small|medium|large|xlarge|burst|settled] [--build-dir DIR] [bench.py options]
#
# Needs build/controller/rollgate-controller (make build) and the control plane's binaries
# (make control-plane). Prints a table; writes tests/bench/results/<preset>-<timestamp>.json and
# tests/bench/results/latest.json. Options: tests/bench/bench.py --help; details:
# tests/bench/README.md. Not part of `make test`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=control-plane-versions.sh
source "$here/control-plane-versions.sh"

for tool in python3 xargs pgrep curl jq openssl; do
  command -v "$tool" >/dev/null || {
    echo "bench: $tool is required" >&2
    exit 1
  }
done
[[ -x "$CONTROL_PLANE_BIN/kubectl" ]] || {
  echo "bench: $CONTROL_PLANE_BIN/kubectl is missing; run: make control-plane" >&2
  exit 1
}
exec python3 "$root/tests/bench/bench.py" "$@"
