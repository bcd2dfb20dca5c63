#!/usr/bin/env bash
# Installs exactly the Debian packages Rollgate needs to build, test and run its demo, and to
# build its container images (make image). Idempotent: apt-get runs only when a package is missing.
# Needs root (or sudo) the first time only.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates openssl curl jq
  libcpprest-dev libboost-dev libyaml-cpp-dev prometheus-cpp-dev libssl-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-format clang-tidy clang-14 libclang-rt-14-dev llvm-14
  prometheus
  mmdebstrap umoci skopeo runc   # make image (hack/image.sh) and its test
  buildah                        # the Dockerfile built without a daemon (hack/dockerfile-build.sh)
  docker-registry                # the local registry (hack/registry.sh runs its own process)
  apache2-utils                  # htpasswd (bcrypt) for hack/registry.sh --htpasswd
  containerd catatonit containernetworking-plugins iptables iproute2  # the real node (hack/real-node.sh)
  chromium chromium-driver fonts-dejavu-core  # the web dashboard's browser test (e2e_web_dashboard)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
echo "bootstrap: installing ${missing[*]}"
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packaged Prometheus server is only used by tests and the demo, never as a system service.
if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
  $sudo systemctl stop prometheus || true
fi
# Nor the packaged containerd: hack/real-node.sh runs its own, with a private config and socket.
if command -v systemctl >/dev/null && systemctl is-active --quiet containerd 2>/dev/null; then
  $sudo systemctl stop containerd || true
fi
# Nor the packaged registry (it would listen on every address, port 5000): hack/registry.sh runs
# its own docker-registry process on 127.0.0.1 with its own configuration and storage.
if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
  $sudo systemctl stop docker-registry || true
fi
command -v go >/dev/null || echo "bootstrap: warning: no Go toolchain; the local control plane cannot be built" >&2
