# shellcheck shell=bash disable=SC2034  # sourced: the variables are its output
# Pinned versions of the local control plane's binaries. Sourced by hack/build-control-plane.sh,
# hack/cluster.sh, hack/demo.sh, hack/bench.sh and the e2e tests' CMake configuration; changing a
# version changes the cache key, so the next run rebuilds.
#
# The Kubernetes version is selectable: ROLLGATE_K8S_VERSION picks one of K8S_SUPPORTED (the
# current minor first, then the previous one, which operators still run). Anything else is refused.
K8S_SUPPORTED=(v1.36.3 v1.35.4)
K8S_VERSION=${ROLLGATE_K8S_VERSION:-${K8S_SUPPORTED[0]}}
case " ${K8S_SUPPORTED[*]} " in
  *" $K8S_VERSION "*) ;;
  *)
    echo "control-plane-versions: ROLLGATE_K8S_VERSION=$K8S_VERSION is not one of: ${K8S_SUPPORTED[*]}" >&2
    # shellcheck disable=SC2317 # exit: when executed rather than sourced
    return 1 2>/dev/null || exit 1
    ;;
esac
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.20.2
ROLLGATE_CACHE=${ROLLGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rollgate}
# BUILD_RECIPE changes when the way the binaries are built changes (flags, stamping).
BUILD_RECIPE=2
CONTROL_PLANE_KEY="r${BUILD_RECIPE}_k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
CONTROL_PLANE_BIN="${ROLLGATE_CACHE}/control-plane/${CONTROL_PLANE_KEY}/bin"
