# Pinned versions of the local control plane's binaries. Sourced by hack/build-control-plane.sh
# and hack/cluster.sh; changing a version changes the cache key, so the next run rebuilds.
K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.20.2
ROLLGATE_CACHE=${ROLLGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rollgate}
# BUILD_RECIPE changes when the way the binaries are built changes (flags, stamping).
BUILD_RECIPE=2
CONTROL_PLANE_KEY="r${BUILD_RECIPE}_k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
CONTROL_PLANE_BIN="${ROLLGATE_CACHE}/control-plane/${CONTROL_PLANE_KEY}/bin"
