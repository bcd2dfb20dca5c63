#!/usr/bin/env bash
# Builds the local control plane's binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, kwok, helm) from Go modules at pinned versions, once per machine,
# into a cache outside the repository keyed by those versions. Later runs find the cache and
# return at once. Nothing but Go modules is downloaded, through the Go toolchain.
#
#   hack/build-control-plane.sh [--with-kubelet]
#
# --with-kubelet (or ROLLGATE_WITH_KUBELET=1) also builds the kubelet (k8s.io/kubernetes/cmd/kubelet,
# same module set and stamping) into the same bin directory, for hack/real-node.sh. It is not part of
# the default list, so the normal build neither needs nor waits for it, and nobody's cache key moves.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=control-plane-versions.sh
source "$here/control-plane-versions.sh"

with_kubelet=${ROLLGATE_WITH_KUBELET:-0}
for arg in "$@"; do
  case $arg in
    --with-kubelet) with_kubelet=1 ;;
    *) echo "usage: $0 [--with-kubelet]" >&2; exit 2 ;;
  esac
done

bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok helm)
k8s_cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
if [[ "$with_kubelet" == 1 ]]; then
  bins+=(kubelet)
  k8s_cmds+=(kubelet)
fi
missing=()
for b in "${bins[@]}"; do [[ -x "$CONTROL_PLANE_BIN/$b" ]] || missing+=("$b"); done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "control plane binaries: cached in $CONTROL_PLANE_BIN"
  exit 0
fi
command -v go >/dev/null || { echo "build-control-plane: go is not installed" >&2; exit 1; }

# One builder at a time per cache (make test and make demo may start together).
mkdir -p "$ROLLGATE_CACHE/control-plane"
exec 9>"$ROLLGATE_CACHE/control-plane/.build.lock"
flock 9

work="$ROLLGATE_CACHE/control-plane/${CONTROL_PLANE_KEY}/src"
mkdir -p "$work" "$CONTROL_PLANE_BIN"
export GOFLAGS="-mod=mod -buildvcs=false -trimpath"
export CGO_ENABLED=0
ldflags="-s -w"
start=$(date +%s)

build_k8s() {
  local m="$work/kubernetes"
  mkdir -p "$m"
  if [[ ! -f "$m/go.mod" ]]; then
    (cd "$m" && go mod init rollgate.local/kubernetes-tools >/dev/null 2>&1)
    # k8s.io/kubernetes requires every staging module at v0.0.0: pin each to the matching v0.X.Y.
    local gomod minor
    gomod=$(cd "$m" && go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" |
      sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    minor="v0.${K8S_VERSION#v1.}"
    {
      echo "require k8s.io/kubernetes ${K8S_VERSION}"
      echo "replace ("
      grep -E '^\s+k8s.io/[a-z0-9-]+ v0\.0\.0\s*$' "$gomod" | awk -v v="$minor" '{print "\t" $1 " => " $1 " " v}'
      echo ")"
    } >>"$m/go.mod"
  fi
  local pkgs=()
  for b in "${k8s_cmds[@]}"; do
    [[ -x "$CONTROL_PLANE_BIN/$b" ]] || pkgs+=("k8s.io/kubernetes/cmd/$b")
  done
  [[ ${#pkgs[@]} -eq 0 ]] && return
  echo "building ${pkgs[*]} (${K8S_VERSION}) ..."
  # Stamp the version as the Kubernetes release build does: kubectl, helm and clients parse it.
  local major minor v k8s_ldflags=""
  major=${K8S_VERSION#v}; major=${major%%.*}
  minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
  for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    k8s_ldflags+=" -X $v.gitVersion=${K8S_VERSION} -X $v.gitMajor=${major} -X $v.gitMinor=${minor}"
    k8s_ldflags+=" -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$m" && go build -ldflags "$ldflags $k8s_ldflags" -o "$CONTROL_PLANE_BIN/" "${pkgs[@]}")
}

build_etcd() {
  [[ -x "$CONTROL_PLANE_BIN/etcd" ]] && return
  local m="$work/etcd"
  mkdir -p "$m"
  # etcd's own main module carries replace directives; a three-line main avoids them.
  cat >"$m/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  if [[ ! -f "$m/go.mod" ]]; then
    (cd "$m" && go mod init rollgate.local/etcd >/dev/null 2>&1 &&
      go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >/dev/null)
  fi
  echo "building etcd (${ETCD_VERSION}) ..."
  (cd "$m" && go build -ldflags "$ldflags" -o "$CONTROL_PLANE_BIN/etcd" .)
}

build_install() { # name module-path@version
  [[ -x "$CONTROL_PLANE_BIN/$1" ]] && return
  echo "building $1 ($2) ..."
  GOBIN="$CONTROL_PLANE_BIN" GOFLAGS="-buildvcs=false -trimpath" go install -ldflags "$ldflags" "$2"
}

build_k8s
build_etcd
build_install kwok "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
build_install helm "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"

echo "control plane binaries built in $(( $(date +%s) - start ))s into $CONTROL_PLANE_BIN ($(du -sh "$CONTROL_PLANE_BIN" | cut -f1))"
