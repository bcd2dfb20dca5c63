#!/usr/bin/env bash
# A test-only rollgate-validate image that finds a CUDA driver: the validator image of
# hack/image.sh plus the fake libcuda of the tests (tests/fakes/fake_libcuda, built as
# <build>/tests/fake_libcuda/libcuda.so.1), for the end-to-end tests on machines without a GPU
# (tests/e2e/real_node_validation_test.sh). Never for production: the fake runs its kernels on the
# CPU and claims a "Fake CUDA Device".
#
#   hack/test-validator-image.sh [--out DIR] [--tag TAG] [--env NAME=VALUE]... VALIDATE_ARCHIVE LIBCUDA
#
#   VALIDATE_ARCHIVE  the oci-archive of rollgate-validate (hack/image.sh:
#                     <build>/images/rollgate-validate-<version>.tar)
#   LIBCUDA           the fake driver library (<build>/tests/fake_libcuda/libcuda.so.1)
#   --out DIR         where the archive goes (default: the directory of VALIDATE_ARCHIVE)
#   --tag TAG         the new image's tag (default: <the archive's tag>-fake-cuda)
#   --env NAME=VALUE  added to the image config's Env (repeatable), e.g. FAKE_CUDA_MODE=init_fail
#                     to make the fake fail a given check (see fake_libcuda.cc)
#
# One layer is added on top of the validator image's: the fake, stripped of its debug symbols, as
# libcuda.so.1 in the directory that holds the image's libc.so.6 (usr/lib/<multiarch>: where the
# NVIDIA Container Toolkit mounts the real driver library, and in the dynamic loader's default
# search path, so rollgate-validate's dlopen("libcuda.so.1") finds it without LD_LIBRARY_PATH).
# The shared libraries the fake needs are checked to be in the image. The config keeps the user
# (65532), the entrypoint and the labels; the description says it is a test image.
#
# Output: DIR/rollgate-validate-<TAG>.tar (an oci-archive whose index names only TAG, so
# `hack/registry.sh push DIR` pushes it as <registry>/rollgate-validate:<TAG>) and a line on
# stdout: name:tag, compressed size, manifest digest, archive.
# Reproducible: the new layer's and config's times are SOURCE_DATE_EPOCH (default: the base
# image's creation time), layers and archive are normalised (hack/lib/reproducible-tar.sh), so the
# same inputs give a byte-identical archive. Needs umoci, jq, objcopy, readelf (hack/bootstrap.sh);
# not root.
set -euo pipefail
umask 022
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/reproducible-tar.sh
source "$here/lib/reproducible-tar.sh"

readonly NAME=rollgate-validate
readonly SONAME=libcuda.so.1

log() { printf '[test-validator-image] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
usage() {
  sed -n '8,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# blob LAYOUT DIGEST: the path of a blob in an OCI layout.
blob() { echo "$1/blobs/${2/://}"; }

main() {
  local out="" tag="" archive="" lib=""
  local -a envs=()
  while (($#)); do
    case $1 in
      --out | --tag | --env)
        [[ $# -ge 2 ]] || usage
        case $1 in
          --out) out=$2 ;;
          --tag) tag=$2 ;;
          --env)
            [[ "$2" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env wants NAME=VALUE, not $2"
            envs+=("$2")
            ;;
        esac
        shift 2
        ;;
      -h | --help | -*) usage ;;
      *)
        if [[ -z "$archive" ]]; then archive=$1; elif [[ -z "$lib" ]]; then lib=$1; else usage; fi
        shift
        ;;
    esac
  done
  [[ -n "$archive" && -n "$lib" ]] || usage
  [[ -f "$archive" ]] || die "no archive $archive (hack/image.sh builds it)"
  [[ -f "$lib" ]] || die "no $lib (cmake --build BUILD --target fake_libcuda)"
  local tool
  for tool in umoci jq objcopy readelf tar; do
    command -v "$tool" >/dev/null || die "$tool is not installed (hack/bootstrap.sh installs it)"
  done
  readelf --dyn-syms "$lib" | grep -qw cuInit || die "$lib exports no cuInit: not a CUDA driver library"
  out=${out:-$(dirname "$archive")}
  mkdir -p "$out"
  out=$(cd "$out" && pwd)

  tmp=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-test-validator-image.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  local layout=$tmp/layout
  mkdir -p "$layout"
  tar -xf "$archive" -C "$layout" || die "$archive is not a tar"
  local base_tag
  base_tag=$(jq -r '.manifests | if length == 1 then .[0].annotations["org.opencontainers.image.ref.name"] // empty else empty end' \
    "$layout/index.json") || base_tag=""
  [[ -n "$base_tag" ]] || die "$archive: not an oci-archive with exactly one tagged manifest"
  tag=${tag:-$base_tag-fake-cuda}
  [[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ && "$tag" != "$base_tag" ]] || die "bad tag: $tag"

  # The base image: its creation time (the default SOURCE_DATE_EPOCH) and where its libc is.
  local manifest config created_base
  manifest=$(blob "$layout" "$(jq -r '.manifests[0].digest' "$layout/index.json")")
  config=$(blob "$layout" "$(jq -r '.config.digest' "$manifest")")
  created_base=$(jq -r '.created // empty' "$config")
  if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
    [[ -n "$created_base" ]] || die "the base image has no creation time; set SOURCE_DATE_EPOCH"
    SOURCE_DATE_EPOCH=$(date -u -d "$created_base" +%s)
  fi
  [[ "$SOURCE_DATE_EPOCH" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH is not a number: $SOURCE_DATE_EPOCH"
  export SOURCE_DATE_EPOCH
  local created
  created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
  local files="" layer
  for layer in $(jq -r '.layers[].digest' "$manifest"); do
    files+=$(tar -tzf "$(blob "$layout" "$layer")" | sed 's,^\./,,')$'\n'
  done
  local libdir
  libdir=$(grep -m 1 -E '^usr/lib/[^/]+/libc\.so\.6$' <<<"$files" | sed 's,/libc\.so\.6$,,') ||
    die "$archive: no usr/lib/<multiarch>/libc.so.6 in the image"
  # Every library the fake needs (glibc's and libstdc++'s) must be in the image (merged /usr).
  local needed
  for needed in $(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
    grep -qxF -e "$libdir/$needed" -e "usr/lib/$needed" <<<"$files" ||
      die "$lib needs $needed, which the image lacks"
  done

  # The layer: the fake, stripped, as usr/lib/<multiarch>/libcuda.so.1.
  local stage=$tmp/stage
  mkdir -p "$stage/$libdir"
  objcopy --strip-unneeded "$lib" "$stage/$libdir/$SONAME"
  chmod 0644 "$stage/$libdir/$SONAME"
  find "$stage" -type d -exec chmod 0755 {} +
  reproducible_tar "$tmp/layer.tar" "$stage" ./usr

  local image=$layout:$tag
  umoci tag --image "$layout:$base_tag" "$tag"
  umoci rm --image "$layout:$base_tag"
  umoci raw add-layer --image "$image" --history.created "$created" \
    --history.created_by "hack/test-validator-image.sh: the fake CUDA driver (tests/fakes/fake_libcuda) as /$libdir/$SONAME" \
    "$tmp/layer.tar"
  local -a config_args=(--created "$created"
    --config.label "org.opencontainers.image.description=TEST ONLY: rollgate-validate with a fake CUDA driver (tests/fakes/fake_libcuda)"
    --config.label "org.opencontainers.image.version=$tag"
    --config.label "org.opencontainers.image.created=$created")
  local e
  for e in "${envs[@]}"; do config_args+=(--config.env "$e"); done
  umoci config --image "$image" --no-history "${config_args[@]}"
  umoci gc --layout "$layout"

  chmod -R u=rwX,go=rX "$layout"
  local result=$out/$NAME-$tag.tar
  reproducible_tar "$tmp/archive.tar" "$layout" oci-layout index.json blobs
  mv "$tmp/archive.tar" "$result"

  local digest size
  digest=$(jq -r '.manifests[0].digest' "$layout/index.json")
  size=$(jq '[.config.size, (.layers[].size)] | add' "$(blob "$layout" "$digest")")
  printf '%-34s %6s MiB  %s  %s\n' "$NAME:$tag" \
    "$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }')" "$digest" "$result"
}

tmp=""
main "$@"
