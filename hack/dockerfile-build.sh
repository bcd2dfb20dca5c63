#!/usr/bin/env bash
# Builds the repository's Dockerfile, unmodified, with buildah (no Docker daemon, no registry), and
# exports the two runtime images as OCI archives. tests/e2e/dockerfile_test.sh runs it.
#
#   hack/dockerfile-build.sh [--out DIR] [--jobs N] [--rev REV] [--refresh-bases] [--bases-only]
#
#   --out DIR         where the archives go (default: the repository's build/dockerfile-images)
#   --rev REV         build the committed tree REV (git archive) instead of the working tree
#   --jobs N          compile parallelism inside the build stage (build arg
#                     CMAKE_BUILD_PARALLEL_LEVEL; default: this machine's cores, at most 2)
#   --refresh-bases   make the debian:12 stand-ins again even when cached
#   --bases-only      stop after the stand-ins (their digests are logged)
#
# The Dockerfile starts FROM debian:12 and debian:12-slim. With no registry at hand, their
# stand-ins are made here as Debian's official images are (mmdebstrap --variant=minbase of
# bookworm, merged /usr, the docker-* apt configuration of the official images: no apt caches,
# gzipped lists, no translations; the slim one also drops documentation, manuals and locales through
# dpkg path-excludes), packed with umoci into OCI archives and tagged docker.io/library/debian:12
# and :12-slim in a private buildah storage. Their apt sources are this machine's Debian ones (apt
# configuration with a proxy comes along too) so that `apt-get update` inside the build works from
# here; ROLLGATE_IMAGE_SOURCES names another sources.list (e.g. snapshot.debian.org).
# The build context is a snapshot of what .dockerignore lets in (its `!` lines: CMakeLists.txt,
# controller/), taken once, so that both targets share the build stage even while the working tree
# changes. Then `buildah bud --isolation chroot --pull=never --layers` builds the targets
# controller and validate (nice -n 10), and `buildah push` writes, in DIR:
#   rollgate-controller-<tag>.tar, rollgate-validate-<tag>.tar  (oci-archive, reference <tag>;
#   <tag>: the project version from CMakeLists.txt)
# and one line per image on stdout: name, tag, compressed size, manifest digest, archive.
#
# Cache (ROLLGATE_CACHE_DIR, default ~/.cache/rollgate): dockerfile-bases/ holds the stand-ins
# (keyed by their recipe, sources and SOURCE_DATE_EPOCH when set), buildah/ the buildah storage
# with the layer cache, so a second run rebuilds only what changed (the compile stage when
# controller/ or CMakeLists.txt changed). Nothing outside the cache and DIR is touched (the
# storage's run-time state lives in /run/rollgate-buildah/).
# Environment: SOURCE_DATE_EPOCH (the stand-ins' timestamps, which makes them reproducible for the
# same packages; unset: the time they are made, and the cached ones are kept whatever their time,
# so that the layer cache stays warm), ROLLGATE_CACHE_DIR, ROLLGATE_IMAGE_SOURCES.
# Needs root (buildah's chroot isolation; mmdebstrap's root mode) and the Debian mirror. Installs
# buildah, mmdebstrap and umoci when missing (hack/bootstrap.sh).
set -euo pipefail
umask 022
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/reproducible-tar.sh
source "$here/lib/reproducible-tar.sh"
root=$(cd "$here/.." && pwd)

readonly SUITE=bookworm # Debian 12: what the Dockerfile's FROM lines name
readonly BASE_RECIPE=1  # bump when the stand-ins' recipe changes (invalidates their cache)

log() { printf '[dockerfile] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
usage() {
  sed -n '5,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# bah ARG...: buildah on the private storage.
bah() {
  buildah --root "$storage" --runroot "$runroot" --storage-driver overlay "$@"
}

# host_sources: this machine's enabled Debian apt sources files (one-line .list or deb822
# .sources), those whose every URI is a Debian archive; other vendors' repositories stay out (their
# keys are not in the stand-ins).
host_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -s "$f" ]] || continue
    local uris
    uris=$(sed -n -e 's/^deb\(-src\)\{0,1\} \(\[[^]]*\] \)\{0,1\}\([^ ]*\).*/\3/p' \
      -e 's/^URIs: *//p' "$f" | tr ' ' '\n' | sed '/^$/d')
    [[ -n "$uris" ]] || continue
    if ! grep -qvE '^(https?|mirror\+https?|file)://[^ ]*debian' <<<"$uris"; then
      echo "$f"
    fi
  done
}

# host_apt_proxy_files: /etc/apt/apt.conf.d files that set a proxy (copied into the stand-ins).
host_apt_proxy_files() {
  local f
  for f in /etc/apt/apt.conf /etc/apt/apt.conf.d/*; do
    [[ -f "$f" ]] || continue
    if grep -qiE '^[^#/]*Acquire[^#]*::proxy' "$f"; then echo "$f"; fi
  done
}

# The official images' apt configuration (debuerreotype), written into both stand-ins.
docker_apt_config() {
  local etc=$1/etc/apt/apt.conf.d
  mkdir -p "$etc"
  cat >"$etc/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::GzipIndexes "true";' >"$etc/docker-gzip-indexes"
  echo 'Acquire::Languages "none";' >"$etc/docker-no-languages"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$etc/docker-autoremove-suggests"
}

# make_base NAME ARCHIVE [SLIM]: the stand-in NAME (debian:12 or debian:12-slim) as an OCI archive.
make_base() {
  local name=$1 archive=$2 slim=${3:-}
  local work=$tmp/$name
  mkdir -p "$work"
  export SOURCE_DATE_EPOCH=${base_epoch:-$(date +%s)} # mmdebstrap, umoci, reproducible_tar
  local -a opts=(--variant=minbase --format=tar --skip=output/dev
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
    --customize-hook="bash '$here/dockerfile-build.sh' --customize-hook \"\$1\"")
  if [[ -n "$slim" ]]; then
    # debuerreotype's slimify: what dpkg leaves out of every package, here and in later layers.
    local p
    for p in doc info linda lintian/overrides locale man groff; do
      opts+=("--dpkgopt=path-exclude=/usr/share/$p/*")
    done
    opts+=(--dpkgopt='path-include=/usr/share/doc/*/copyright'
      --dpkgopt='path-include=/usr/share/locale/locale.alias')
  fi
  log "$name: mmdebstrap --variant=minbase $SUITE${slim:+ (slim)}"
  if ! ROLLGATE_PROXY_FILES="${proxy_files[*]}" mmdebstrap "${opts[@]}" \
    "$SUITE" "$work/rootfs.tar" "${sources[@]}" >"$work/mmdebstrap.log" 2>&1; then
    tail -n 15 "$work/mmdebstrap.log" >&2
    die "mmdebstrap failed for $name (log above; is the Debian mirror reachable?)"
  fi
  local layout=$work/layout image=$work/layout:12 created
  created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
  umoci init --layout "$layout"
  umoci new --image "$image"
  umoci raw add-layer --image "$image" --history.created "$created" \
    --history.created_by "mmdebstrap --variant=minbase $SUITE${slim:+ (slim)} (hack/dockerfile-build.sh)" \
    "$work/rootfs.tar"
  umoci config --image "$image" --no-history --created "$created" --architecture "$arch" \
    --os linux --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.cmd bash
  umoci gc --layout "$layout"
  chmod -R u=rwX,go=rX "$layout"
  reproducible_tar "$work/archive.tar" "$layout" oci-layout index.json blobs
  mv "$work/archive.tar" "$archive"
}

# customize_hook DIR (mmdebstrap's customize hook, this script again): the docker-* apt
# configuration, this machine's apt proxy settings, and no host files (resolver, host name).
customize_hook() {
  local dir=$1 f
  [[ -d "$dir/etc/apt" ]] || die "customize hook: $dir is not a root file system"
  docker_apt_config "$dir"
  for f in ${ROLLGATE_PROXY_FILES:-}; do
    cp "$f" "$dir/etc/apt/apt.conf.d/$(basename "$f")"
  done
  rm -f "$dir/etc/resolv.conf" "$dir/etc/hostname"
  rm -rf "${dir:?}"/var/lib/apt/lists/* "${dir:?}"/var/cache/apt/*.bin "${dir:?}"/var/cache/apt/archives/*.deb
}

# bases: the two stand-ins (cached) tagged in the buildah storage.
bases() {
  local -a src_content=()
  local f
  for f in "${sources[@]}" "${proxy_files[@]}"; do
    src_content+=("$f" "$(cat "$f")")
  done
  local key
  key=$(printf '%s\n' "$BASE_RECIPE" "$SUITE" "$arch" "${base_epoch:-unset}" "${src_content[@]}" |
    sha256sum | cut -c1-16)
  local dir=$cache/dockerfile-bases/$SUITE-$key
  mkdir -p "$dir"
  local name archive id
  for name in 12 12-slim; do
    archive=$dir/debian-$name.tar
    if [[ -n "$refresh" || ! -s "$archive" ]]; then
      make_base "debian-$name" "$archive" "$([[ $name == *slim ]] && echo slim)"
    else
      log "debian:$name: cached stand-in $archive"
    fi
    id=$(bah pull --quiet "oci-archive:$archive:12" 2>"$tmp/pull.err" | tail -n 1) ||
      die "buildah pull oci-archive:$archive: $(tail -n 1 "$tmp/pull.err")"
    bah tag "$id" "docker.io/library/debian:$name" >/dev/null
    log "debian:$name: $(tar -xOf "$archive" index.json | jq -r '.manifests[0].digest') (image ${id:0:12})"
  done
}

# context_snapshot: $context, a copy of the Dockerfile, .dockerignore and what .dockerignore allows
# (the working tree's, or those of the commit $rev), modification times kept.
context_snapshot() {
  context=$tmp/context
  mkdir -p "$context"
  local ignore
  if [[ -n "$rev" ]]; then
    ignore=$(git -C "$root" show "$rev:.dockerignore") || die "no .dockerignore in $rev (not a revision of $root?)"
  else
    ignore=$(<"$root/.dockerignore")
  fi
  local -a members=()
  mapfile -t members < <(sed -n 's|^!\(.*[^/]\)/*$|\1|p' <<<"$ignore")
  [[ $(grep -c '^\*$' <<<"$ignore") -eq 1 && ${#members[@]} -gt 0 ]] ||
    die ".dockerignore is not an allow-list ('*' then '!path' lines); cannot snapshot the context"
  if [[ -n "$rev" ]]; then
    git -C "$root" archive --format=tar "$rev" -- Dockerfile .dockerignore "${members[@]}" |
      tar -x -C "$context" || die "git archive $rev failed"
  else
    (cd "$root" && cp -a --parents Dockerfile .dockerignore "${members[@]}" "$context/") ||
      die "cannot copy the build context (${members[*]}) from $root"
  fi
}

# build TARGET NAME: buildah bud of the Dockerfile's TARGET, pushed to $out/NAME-$tag.tar; prints
# the summary line.
build() {
  local target=$1 name=$2
  local image=localhost/$name:$tag archive=$out/$name-$tag.tar
  local t0=$SECONDS
  log "$target: buildah bud --target $target (CMAKE_BUILD_PARALLEL_LEVEL=$jobs)"
  if ! nice -n 10 buildah --root "$storage" --runroot "$runroot" --storage-driver overlay \
    bud --isolation chroot --pull=never --layers --target "$target" \
    --build-arg "CMAKE_BUILD_PARALLEL_LEVEL=$jobs" \
    --file "$context/Dockerfile" --tag "$image" "$context" >"$out/$name-$tag.log" 2>&1; then
    tail -n 20 "$out/$name-$tag.log" >&2
    die "buildah bud --target $target failed (log above; whole log: $out/$name-$tag.log)"
  fi
  log "$target: built in $((SECONDS - t0)) s"
  rm -f "$archive"
  bah push --quiet "$image" "oci-archive:$archive:$tag" >/dev/null 2>"$tmp/push.err" ||
    die "buildah push $image: $(tail -n 1 "$tmp/push.err")"
  local index digest manifest size
  index=$(tar -xOf "$archive" index.json)
  digest=$(jq -r '.manifests[0].digest' <<<"$index")
  manifest=$(tar -xOf "$archive" "blobs/${digest/://}")
  size=$(jq '[.config.size, (.layers[].size)] | add' <<<"$manifest")
  printf '%-20s %-8s %6s MiB  %s  %s\n' "$name" "$tag" \
    "$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }')" "$digest" "$archive"
}

main() {
  out="" jobs="" refresh="" rev="" bases_only=""
  while (($#)); do
    case $1 in
      --out)
        [[ $# -ge 2 ]] || usage
        out=$2
        shift 2
        ;;
      --jobs)
        [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || usage
        jobs=$2
        shift 2
        ;;
      --rev)
        [[ $# -ge 2 ]] || usage
        rev=$2
        shift 2
        ;;
      --refresh-bases)
        refresh=1
        shift
        ;;
      --bases-only)
        bases_only=1
        shift
        ;;
      *) usage ;;
    esac
  done
  [[ $(id -u) -eq 0 ]] || die "needs root (buildah --isolation chroot, mmdebstrap's root mode)"
  bash "$here/bootstrap.sh"
  local tool
  for tool in buildah mmdebstrap umoci jq sha256sum nice; do
    command -v "$tool" >/dev/null || die "$tool is not installed (hack/bootstrap.sh installs it)"
  done
  if [[ -z "$jobs" ]]; then
    jobs=$(nproc)
    ((jobs <= 2)) || jobs=2
  fi
  out=${out:-$root/build/dockerfile-images}
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  cache=${ROLLGATE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rollgate}
  storage=$cache/buildah/storage
  # The storage's run-time state (mounts, locks): one directory per storage.
  runroot=/run/rollgate-buildah/$(printf '%s' "$storage" | sha256sum | cut -c1-12)
  mkdir -p "$storage" "$runroot"

  tag=$(sed -n 's/^project(rollgate VERSION \([0-9][0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
  [[ -n "$tag" ]] || die "no project(rollgate VERSION ...) in CMakeLists.txt"
  arch=$(dpkg --print-architecture)
  base_epoch=${SOURCE_DATE_EPOCH:-}
  [[ -z "$base_epoch" || "$base_epoch" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH is not a number: $base_epoch"

  sources=() proxy_files=()
  if [[ -n "${ROLLGATE_IMAGE_SOURCES:-}" ]]; then
    [[ -f "$ROLLGATE_IMAGE_SOURCES" ]] || die "ROLLGATE_IMAGE_SOURCES: no file $ROLLGATE_IMAGE_SOURCES"
    sources=("$(cd "$(dirname "$ROLLGATE_IMAGE_SOURCES")" && pwd)/$(basename "$ROLLGATE_IMAGE_SOURCES")")
  else
    mapfile -t sources < <(host_sources)
    # None of this machine's sources is a Debian archive: mmdebstrap's default (deb.debian.org).
  fi
  mapfile -t proxy_files < <(host_apt_proxy_files)

  tmp=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-dockerfile.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  context_snapshot
  log "${rev:+$rev ($(git -C "$root" rev-parse --short "$rev")), }tag $tag, into $out"
  log "Debian $SUITE/$arch stand-ins: SOURCE_DATE_EPOCH ${base_epoch:-unset}," \
    "sources ${sources[*]:-mmdebstrap default}${proxy_files[*]:+, proxy ${proxy_files[*]}}; storage $storage"
  bases
  [[ -z "$bases_only" ]] || return 0
  build controller rollgate-controller
  build validate rollgate-validate
}

if [[ "${1:-}" == --customize-hook ]]; then
  [[ $# -eq 2 ]] || die "usage: $0 --customize-hook DIR"
  customize_hook "$2"
  exit 0
fi
out="" jobs="" refresh="" rev="" bases_only="" context="" cache="" storage="" runroot="" tag="" arch="" base_epoch="" tmp=""
sources=() proxy_files=()
main "$@"
