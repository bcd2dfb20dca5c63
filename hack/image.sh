#!/usr/bin/env bash
# `make image`: Rollgate's two container images as reproducible OCI archives, built without a
# registry or a container engine (mmdebstrap for the Debian root file system, umoci for the image).
#
#   hack/image.sh [--out DIR] [BUILD_DIR]
#
#   BUILD_DIR   CMake build directory holding controller/rollgate-controller, controller/rollgate
#               and controller/rollgate-validate (default: the repository's build/; `make image`
#               builds the three and passes $(BUILD)). They are copied stripped (objcopy
#               --strip-all), never rebuilt.
#   --out DIR   where the archives go (default: BUILD_DIR/images)
#
# The images are what the Dockerfile's targets describe, without a shell, apt or dpkg:
#   rollgate-controller  rollgate-controller (entrypoint), rollgate (CLI) and rollgate-validate in
#                        /usr/local/bin; the runtime libraries and ca-certificates (chart: image)
#   rollgate-validate    rollgate-validate (entrypoint); glibc and libstdc++ (chart: validatorImage)
# Both run as 65532:65532 (nonroot in /etc/passwd), carry the Dockerfile's labels and work with a
# read-only root file system. Two layers each: the Debian packages (mmdebstrap --variant=extract
# of this machine's Debian release, merged /usr, with the packages' records in
# /var/lib/dpkg/status.d for image scanners), then the binaries. Every shared library the binaries
# need is checked to be in the image.
#
# Output per image, in DIR: <name>-<tag>.tar (an oci-archive; tag: the project version from
# CMakeLists.txt, the chart's appVersion), <name>-<tag>.packages (its Debian packages and
# versions), and a line on stdout: name, tag, compressed size, manifest digest, archive.
# Push with skopeo: skopeo copy oci-archive:DIR/<name>-<tag>.tar docker://<registry>/<name>:<tag>
#
# Reproducible: every timestamp is SOURCE_DATE_EPOCH (default: the last commit's time), layers are
# sorted with numeric owners, and the archive too, so the same binaries and the same Debian
# packages give the same digests (and byte-identical archives). The packages are the release's
# newest at build time (deb.debian.org with -updates and -security); to pin them, point
# ROLLGATE_IMAGE_SOURCES at a sources.list (one-line or deb822) naming snapshot.debian.org.
# Environment: SOURCE_DATE_EPOCH, ROLLGATE_IMAGE_SUITE (default: this machine's Debian codename),
# ROLLGATE_IMAGE_SOURCES. Installs mmdebstrap, umoci and skopeo (for pushing) when missing
# (hack/bootstrap.sh). Run as root (mmdebstrap's root mode; its unshare mode is untested).
set -euo pipefail
umask 022
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/reproducible-tar.sh
source "$here/lib/reproducible-tar.sh"
root=$(cd "$here/.." && pwd)

readonly USER_ID=65532
readonly BIN_DIR=/usr/local/bin
readonly MERGED_USR_HOOK=/usr/share/mmdebstrap/hooks/merged-usr/setup00.sh
# Debian packages per image (their dependencies come along); the Dockerfile's runtime packages.
# base-files: /etc/os-release (scanners identify the distribution); netbase: /etc/services.
readonly CONTROLLER_PACKAGES=(base-files netbase ca-certificates libcpprest2.10 libyaml-cpp0.7
  libssl3 zlib1g libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0)
readonly VALIDATE_PACKAGES=(base-files libstdc++6)

log() { printf '[image] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
usage() {
  sed -n '4,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# --- the Debian layer ---------------------------------------------------------------------------

# rootfs_hook DIR: mmdebstrap's extract hook (this script again, see debian_layer), run on the
# extracted root file system before mmdebstrap cleans up and packs it. Records the packages, drops
# documentation and host files, adds the users and the CA bundle, and checks the libraries.
# Environment: HOOK_PACKAGES_FILE (written: "package version" lines), HOOK_BINARIES (checked).
rootfs_hook() {
  local dir=$1 deb pkg
  [[ -d "$dir/usr" ]] || die "rootfs hook: $dir is not a root file system"
  # The package records that image scanners read (like distroless: one control file per package
  # in /var/lib/dpkg/status.d), instead of dpkg's database, which extraction does not fill.
  rm -rf "${dir:?}/var/lib/dpkg"
  mkdir -p "$dir/var/lib/dpkg/status.d"
  : >"$HOOK_PACKAGES_FILE"
  for deb in "$dir"/var/cache/apt/archives/*.deb; do
    [[ -f "$deb" ]] || die "rootfs hook: no packages in $dir/var/cache/apt/archives"
    pkg=$(dpkg-deb --field "$deb" Package)
    dpkg-deb --field "$deb" | sed '1a Status: install ok installed' >"$dir/var/lib/dpkg/status.d/$pkg"
    printf '%s %s\n' "$pkg" "$(dpkg-deb --field "$deb" Version)" >>"$HOOK_PACKAGES_FILE"
  done
  sort -o "$HOOK_PACKAGES_FILE" "$HOOK_PACKAGES_FILE"
  # Documentation except the copyright files; manuals; this machine's resolver and host name
  # (the container runtime provides both).
  if [[ -d "$dir/usr/share/doc" ]]; then
    find "$dir/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
  fi
  rm -rf "$dir"/usr/share/{man,info,lintian,doc-base,bug} "$dir"/etc/{resolv.conf,hostname}
  # Users and groups (the Dockerfile's nonroot user; no shell in the image to log in with).
  printf '%s\n' 'root:x:0:0:root:/root:/usr/sbin/nologin' \
    "nonroot:x:$USER_ID:$USER_ID::/nonexistent:/usr/sbin/nologin" \
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' >"$dir/etc/passwd"
  printf '%s\n' 'root:x:0:' "nonroot:x:$USER_ID:" 'nogroup:x:65534:' >"$dir/etc/group"
  chmod 0644 "$dir/etc/passwd" "$dir/etc/group"
  # ca-certificates' maintainer script (update-ca-certificates) does not run on extraction: build
  # the bundle OpenSSL reads (/usr/lib/ssl/cert.pem links to it) from every certificate shipped.
  if [[ -d "$dir/usr/share/ca-certificates" ]]; then
    local bundle=$dir/etc/ssl/certs/ca-certificates.crt
    local -a crts=()
    mapfile -t crts < <(find "$dir/usr/share/ca-certificates" -name '*.crt' -type f | sort)
    ((${#crts[@]})) || die "rootfs hook: no CA certificates in $dir/usr/share/ca-certificates"
    mkdir -p "$dir/etc/ssl/certs"
    awk 1 "${crts[@]}" >"$bundle" # each certificate ends with a newline
    chmod 0644 "$bundle"
  fi
  local bin
  for bin in $HOOK_BINARIES; do
    check_libraries "$dir" "$bin"
  done
}

# check_libraries DIR BINARY: runs the image's own dynamic loader (chroot DIR) on a copy of
# BINARY, the way the Dockerfile runs ldd: dies when a shared library it needs is missing. The
# copy goes to DIR/tmp, which mmdebstrap empties afterwards.
check_libraries() {
  local dir=$1 bin=$2 name interp out
  name=$(basename "$bin")
  interp=$(readelf --program-headers "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)]$/\1/p')
  [[ -n "$interp" ]] || die "$name is not a dynamically linked executable"
  cp "$bin" "$dir/tmp/$name"
  if ! out=$(chroot "$dir" "$interp" --list "/tmp/$name" 2>&1) || grep -q 'not found' <<<"$out"; then
    die "$name cannot run in the image: $(grep -m 1 'not found' <<<"$out" || echo "$out" | tail -n 1)"
  fi
  rm -f "$dir/tmp/$name"
}

# debian_layer TAR PACKAGES_FILE BINARIES PACKAGE...: the Debian root file system as a layer tar.
debian_layer() {
  local tar=$1 packages_file=$2 binaries=$3
  shift 3
  local -a sources=()
  if [[ -n "${ROLLGATE_IMAGE_SOURCES:-}" ]]; then
    [[ -f "$ROLLGATE_IMAGE_SOURCES" ]] || die "ROLLGATE_IMAGE_SOURCES: no file $ROLLGATE_IMAGE_SOURCES"
    sources=("$(cd "$(dirname "$ROLLGATE_IMAGE_SOURCES")" && pwd)/$(basename "$ROLLGATE_IMAGE_SOURCES")")
  fi
  local include
  include=$(IFS=,; echo "$*")
  # The hook is this script again (mmdebstrap runs it under sh with the root directory as $1).
  # shellcheck disable=SC2016 # expanded by that sh
  if ! HOOK_PACKAGES_FILE=$packages_file HOOK_BINARIES=$binaries ROLLGATE_IMAGE_SELF=$here/image.sh \
    mmdebstrap --variant=extract --format=tar --include="$include" \
    --skip=output/dev --setup-hook="$MERGED_USR_HOOK" \
    --extract-hook='bash "$ROLLGATE_IMAGE_SELF" --rootfs-hook "$1"' \
    "$suite" "$tar" "${sources[@]}" >"$tar.log" 2>&1; then
    # The hook's own error line when it failed, otherwise mmdebstrap's last words.
    if grep -q '^\[image\] error:' "$tar.log"; then
      grep '^\[image\] error:' "$tar.log" | tail -n 1 >&2
      exit 1
    fi
    tail -n 15 "$tar.log" >&2
    die "mmdebstrap failed (log above; is the Debian mirror reachable?)"
  fi
  # What only the build needed: apt's configuration, lists and cache (mmdebstrap's cleanup
  # empties them after the hook ran, so they go here).
  local -a drop=()
  local member
  while IFS= read -r member; do
    case $member in
      ./etc/apt/ | ./var/lib/apt/ | ./var/cache/apt/ | ./var/log/apt/) drop+=("$member") ;;
    esac
  done < <(tar --list --file "$tar")
  ((${#drop[@]} == 0)) || tar --delete --file "$tar" "${drop[@]}"
}

# --- the Rollgate layer and the image -----------------------------------------------------------

# binaries_layer TAR STAGE BINARY...: the binaries, stripped, in /usr/local/bin.
binaries_layer() {
  local tar=$1 stage=$2 bin
  shift 2
  mkdir -p "$stage$BIN_DIR"
  for bin in "$@"; do
    objcopy --strip-all "$bin" "$stage$BIN_DIR/$(basename "$bin")"
    chmod 0755 "$stage$BIN_DIR/$(basename "$bin")"
  done
  chmod 0755 "$stage/usr" "$stage/usr/local" "$stage$BIN_DIR"
  reproducible_tar "$tar" "$stage" ./usr
}

# build_image NAME ENTRYPOINT DESCRIPTION PORTS BINARIES -- PACKAGE...: NAME's archive in $out and
# its summary line on stdout. PORTS: space-separated (EXPOSE), may be empty.
build_image() {
  local name=$1 entrypoint=$2 description=$3 ports=$4 binaries=$5
  shift 6
  local work=$tmp/$name layout=$tmp/$name/layout b
  local archive=$out/$name-$tag.tar packages_file=$tmp/$name/packages
  mkdir -p "$work"
  log "$name: binaries layer ($(for b in $binaries; do basename "$b"; done | paste -sd' '))"
  # shellcheck disable=SC2086 # a list of paths without spaces (checked in main)
  binaries_layer "$work/rollgate.tar" "$work/stage" $binaries
  local stripped=""
  for b in $binaries; do
    stripped+=" $work/stage$BIN_DIR/$(basename "$b")"
  done
  log "$name: Debian $suite layer ($*)"
  debian_layer "$work/debian.tar" "$packages_file" "$stripped" "$@"

  local image=$layout:$tag
  local -a config=(--created "$created" --architecture "$arch" --os linux
    --config.user "$USER_ID:$USER_ID" --config.entrypoint "$entrypoint"
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    --config.label "org.opencontainers.image.title=$name"
    --config.label "org.opencontainers.image.description=$description"
    --config.label "org.opencontainers.image.version=$tag"
    --config.label "org.opencontainers.image.revision=$revision"
    --config.label "org.opencontainers.image.created=$created")
  local port
  for port in $ports; do
    config+=(--config.exposedports "$port/tcp")
  done
  umoci init --layout "$layout"
  umoci new --image "$image"
  umoci raw add-layer --image "$image" --history.created "$created" \
    --history.created_by "mmdebstrap --variant=extract $suite: $*" "$work/debian.tar"
  umoci raw add-layer --image "$image" --history.created "$created" \
    --history.created_by "hack/image.sh: $BIN_DIR (stripped)" "$work/rollgate.tar"
  umoci config --image "$image" --no-history "${config[@]}"
  umoci gc --layout "$layout"

  chmod -R u=rwX,go=rX "$layout"
  reproducible_tar "$work/archive.tar" "$layout" oci-layout index.json blobs
  mv "$work/archive.tar" "$archive"
  mv "$packages_file" "$out/$name-$tag.packages"

  local manifest digest size
  digest=$(jq -r '.manifests[0].digest' "$layout/index.json")
  manifest=$layout/blobs/${digest/://}
  size=$(jq '[.config.size, (.layers[].size)] | add' "$manifest")
  printf '%-20s %-8s %6s MiB  %s  %s\n' "$name" "$tag" \
    "$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }')" "$digest" "$archive"
}

main() {
  local build=$root/build
  out=""
  while (($#)); do
    case $1 in
      --out)
        [[ $# -ge 2 ]] || usage
        out=$2
        shift 2
        ;;
      -h | --help) usage ;;
      -*) usage ;;
      *)
        build=$1
        shift
        ;;
    esac
  done
  [[ -d "$build" ]] || die "no build directory $build (run make image, or cmake -S . -B $build first)"
  build=$(cd "$build" && pwd)
  out=${out:-$build/images}

  local -A bins=()
  local b
  for b in rollgate-controller rollgate rollgate-validate; do
    bins[$b]=$build/controller/$b
    [[ -x "${bins[$b]}" ]] ||
      die "${bins[$b]} is not built (make image, or cmake --build $build --target rollgate-controller rollgate rollgate-validate)"
    [[ "${bins[$b]}" != *[[:space:]]* ]] || die "build directory path with spaces: $build"
  done

  # The tools (apt-get, only when one is missing).
  bash "$here/bootstrap.sh"
  local tool
  for tool in mmdebstrap umoci jq objcopy readelf dpkg-deb chroot; do
    command -v "$tool" >/dev/null || die "$tool is not installed (hack/bootstrap.sh installs it)"
  done

  tag=$(sed -n 's/^project(rollgate VERSION \([0-9][0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
  [[ -n "$tag" ]] || die "no project(rollgate VERSION ...) in CMakeLists.txt"
  local app_version
  app_version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$root/charts/rollgate/Chart.yaml")
  [[ "$app_version" == "$tag" ]] ||
    log "warning: charts/rollgate/Chart.yaml appVersion ($app_version) is not the project version ($tag)"

  if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
    SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null) ||
      die "SOURCE_DATE_EPOCH is not set and $root has no git history to take it from"
  fi
  [[ "$SOURCE_DATE_EPOCH" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH is not a number: $SOURCE_DATE_EPOCH"
  export SOURCE_DATE_EPOCH
  created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
  revision=$(git -C "$root" log -1 --format=%H 2>/dev/null || echo unknown)
  arch=$(dpkg --print-architecture)
  if [[ -z "${ROLLGATE_IMAGE_SUITE:-}" ]]; then
    # shellcheck source=/dev/null
    suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [[ -n "$suite" ]] || die "cannot tell this machine's Debian release; set ROLLGATE_IMAGE_SUITE"
  else
    suite=$ROLLGATE_IMAGE_SUITE
  fi

  mkdir -p "$out"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-image.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT

  log "tag $tag, SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH ($created), Debian $suite/$arch, into $out"
  build_image rollgate-controller "$BIN_DIR/rollgate-controller" \
    "Rollgate: rolls container images out environment by environment" "8080 8081" \
    "${bins[rollgate-controller]} ${bins[rollgate]} ${bins[rollgate-validate]}" \
    -- "${CONTROLLER_PACKAGES[@]}"
  build_image rollgate-validate "$BIN_DIR/rollgate-validate" \
    "Rollgate worker startup validation: proves CUDA works on a GPU node" "" \
    "${bins[rollgate-validate]}" \
    -- "${VALIDATE_PACKAGES[@]}"
}

if [[ "${1:-}" == --rootfs-hook ]]; then
  [[ $# -eq 2 ]] || die "usage: $0 --rootfs-hook DIR"
  rootfs_hook "$2"
  exit 0
fi
out="" tag="" suite="" arch="" created="" revision="" tmp=""
main "$@"
