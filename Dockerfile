# syntax=docker/dockerfile:1
# Rollgate's container images, built from this repository with Debian 12's packages (the same
# toolchain and libraries as the development machines; see shared/DESIGN.md "Dependencies").
#
#   docker build --target controller -t ghcr.io/rollgate/rollgate-controller:0.1.0 .
#   docker build --target validate   -t ghcr.io/rollgate/rollgate-validate:0.1.0 .
#
# Targets:
#   build       compiles rollgate-controller, rollgate (CLI) and rollgate-validate (Release, no
#               tests) and installs them stripped into /out/bin.
#   validate    rollgate-validate alone: the init container the controller injects into GPU worker
#               pods (chart value validatorImage). Needs only glibc and libstdc++; libcuda is
#               dlopen'ed from what the NVIDIA container runtime mounts.
#   controller  (default) rollgate-controller, plus the rollgate CLI and rollgate-validate, on
#               debian:12-slim with only the runtime libraries (chart value image).
#
# Both runtime images run as the non-root user 65532:65532 (the chart's securityContext; the
# restricted Pod Security Standard) and work with a read-only root filesystem.
# For reproducible releases pin the base images by digest (debian:12@sha256:...).

ARG DEBIAN_IMAGE=debian:12
ARG DEBIAN_SLIM_IMAGE=debian:12-slim

# --- build ---------------------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config ca-certificates \
      libcpprest-dev libboost-dev libyaml-cpp-dev prometheus-cpp-dev libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
# Compile parallelism: unset, the build tool's default (all cores); e.g.
# --build-arg CMAKE_BUILD_PARALLEL_LEVEL=2 on a small machine (cmake --build reads it).
ARG CMAKE_BUILD_PARALLEL_LEVEL
WORKDIR /src
# Only what the build needs (.dockerignore keeps the rest out of the context).
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY controller/ controller/
RUN cmake -S . -B /build -G Ninja \
      -DCMAKE_BUILD_TYPE=Release \
      -DROLLGATE_BUILD_TESTS=OFF \
      -DROLLGATE_WERROR=OFF \
 && cmake --build /build \
      --target rollgate-controller rollgate rollgate-validate \
 && cmake --install /build --prefix /out --strip

# --- validate: the CUDA startup validator ---------------------------------------------------------
FROM ${DEBIAN_SLIM_IMAGE} AS validate
LABEL org.opencontainers.image.title="rollgate-validate" \
      org.opencontainers.image.description="Rollgate worker startup validation: proves CUDA works on a GPU node"
COPY --from=build /out/bin/rollgate-validate /usr/local/bin/rollgate-validate
# Fail the image build, not the pod, when a shared library is missing.
RUN if ldd /usr/local/bin/rollgate-validate | grep 'not found'; then exit 1; fi
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/rollgate-validate"]

# --- controller (default target) ------------------------------------------------------------------
FROM ${DEBIAN_SLIM_IMAGE} AS controller
ARG DEBIAN_FRONTEND=noninteractive
# Runtime libraries only (the -dev packages' shared-library counterparts) and CA certificates.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates libcpprest2.10 libyaml-cpp0.7 libssl3 zlib1g \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin nonroot
COPY --from=build /out/bin/rollgate-controller /out/bin/rollgate /out/bin/rollgate-validate \
     /usr/local/bin/
# Fail the image build, not the pod, when a shared library is missing.
RUN set -e; for b in rollgate-controller rollgate rollgate-validate; do \
      if ldd "/usr/local/bin/$b" | grep 'not found'; then echo "missing libraries for $b" >&2; exit 1; fi; \
    done; \
    /usr/local/bin/rollgate-controller --help >/dev/null
LABEL org.opencontainers.image.title="rollgate-controller" \
      org.opencontainers.image.description="Rollgate: rolls container images out environment by environment"
USER 65532:65532
# /metrics and /healthz, /readyz (chart: metrics.port, health.port).
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/rollgate-controller"]
