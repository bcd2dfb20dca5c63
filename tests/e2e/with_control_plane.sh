#!/usr/bin/env bash
# Runs an end-to-end test (or the cluster fixture) with CONTROL_PLANE_BIN set to the binaries of
# the Kubernetes version selected when the test runs: ROLLGATE_K8S_VERSION from the environment,
# else the default in hack/control-plane-versions.sh. Computed here, at test time, rather than
# baked into the CMake configuration, so that a changed versions file or a selected version takes
# effect without reconfiguring (make test-k8s-previous runs the e2e suite against the previous
# minor version from the same build).
#   with_control_plane.sh COMMAND [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../hack/control-plane-versions.sh
source "$here/../../hack/control-plane-versions.sh"
export CONTROL_PLANE_BIN K8S_VERSION
if [[ ! -x "$CONTROL_PLANE_BIN/kube-apiserver" ]]; then
  echo "with_control_plane: no binaries for Kubernetes $K8S_VERSION in $CONTROL_PLANE_BIN" >&2
  echo "with_control_plane: build them with: ROLLGATE_K8S_VERSION=$K8S_VERSION make control-plane" >&2
  exit 1
fi
exec "$@"
