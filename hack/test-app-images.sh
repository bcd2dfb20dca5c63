#!/usr/bin/env bash
# The test application images of the end-to-end tests (issue 15) as reproducible OCI archives, built
# the way hack/image.sh builds the product's images (umoci, normalised layers, SOURCE_DATE_EPOCH),
# without a registry, a container engine or Debian packages.
#
#   hack/test-app-images.sh [--out DIR]
#
#   --out DIR   where the archives go (default: the repository's build/test-images)
#
# The application is tests/e2e/testapp/testapp.c, compiled here with gcc -static -O2 and stripped:
# a tiny HTTP server on $PORT (default 8080): GET /healthz -> 200 "ok", GET / -> 200 "<version>".
# Every image is that binary (/usr/local/bin/testapp, the entrypoint) plus /etc/passwd and
# /etc/group naming the nonroot user; it runs as 65532:65532, exposes 8080/tcp, and its config's
# Env picks the behaviour (TESTAPP_VERSION, TESTAPP_MODE; see testapp.c):
#   testapp:1.0              serves, ready (/ answers "1.0")
#   testapp:2.0              serves, ready (/ answers "2.0")
#   testapp:2.0-never-ready  serves, but /healthz answers 503 forever (a readiness probe never passes)
#   testapp:2.0-crash        prints a line to stderr and exits 1 after about 1 s (CrashLoopBackOff)
#   testapp:2.0-missing      never built and never pushed: a tag that no registry has (ErrImagePull)
# All four share one layer; only their configs differ.
# Smoke checks (issue 20) need no image of their own: a check's command replaces the entrypoint and
# picks a mode by arguments, in any of these images (see testapp.c):
#   /usr/local/bin/testapp --mode check --exit N [--sleep S]  prints "smoke: testapp <version>: ..."
#                            lines to stdout and stderr ("... FAILED: ..." when N > 0), exits N
#   /usr/local/bin/testapp --mode sleep                       sleeps until stopped (a timeout)
#
# Output per image, in DIR: testapp-<tag>.tar (an oci-archive whose index names the tag) and a line
# on stdout: name:tag, compressed size, manifest digest, archive. Push them all to the local
# registry with `hack/registry.sh push DIR`, or one with skopeo:
#   skopeo copy --dest-tls-verify=false oci-archive:DIR/testapp-2.0.tar docker://127.0.0.1:5000/testapp:2.0
#
# Reproducible: every timestamp is SOURCE_DATE_EPOCH (default: a fixed 2024-01-01T00:00:00Z, so the
# digests change only when testapp.c, the compiler or glibc do, not with every commit), the layer
# is sorted with numeric owners, and the archive too: two builds give byte-identical archives.
# Needs gcc with the static glibc (libc6-dev), umoci and jq; installs what is missing
# (hack/bootstrap.sh). Does not need root once those are installed.
set -euo pipefail
umask 022
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/reproducible-tar.sh
source "$here/lib/reproducible-tar.sh"
root=$(cd "$here/.." && pwd)

readonly NAME=testapp
readonly USER_ID=65532
readonly APP_PORT=8080
readonly BIN=/usr/local/bin/testapp
readonly SOURCE=tests/e2e/testapp/testapp.c
readonly DEFAULT_EPOCH=1704067200 # 2024-01-01T00:00:00Z
# tag, TESTAPP_VERSION, TESTAPP_MODE, description.
readonly IMAGES=(
  "1.0|1.0|serve|Rollgate test application 1.0: serves, ready"
  "2.0|2.0|serve|Rollgate test application 2.0: serves, ready"
  "2.0-never-ready|2.0|never-ready|Rollgate test application 2.0: serves, /healthz answers 503 forever"
  "2.0-crash|2.0|crash|Rollgate test application 2.0: exits 1 after about 1 s"
)

log() { printf '[test-app-images] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
usage() {
  sed -n '6,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# app_layer TAR: the static binary and the users, as a layer tar.
app_layer() {
  local tar=$1 stage=$tmp/stage
  mkdir -p "$stage/etc" "$stage${BIN%/*}"
  # -ffile-prefix-map: no build path in the binary (it is stripped anyway).
  gcc -static -O2 -std=gnu11 -Wall -Wextra -Werror -ffile-prefix-map="$root/=" \
    -o "$tmp/testapp" "$root/$SOURCE" || die "gcc -static failed on $SOURCE (is libc6-dev installed?)"
  objcopy --strip-all "$tmp/testapp" "$stage$BIN"
  chmod 0755 "$stage$BIN"
  if readelf --program-headers "$stage$BIN" | grep -q 'Requesting program interpreter'; then
    die "$SOURCE did not link statically"
  fi
  printf '%s\n' 'root:x:0:0:root:/root:/usr/sbin/nologin' \
    "nonroot:x:$USER_ID:$USER_ID::/nonexistent:/usr/sbin/nologin" \
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' >"$stage/etc/passwd"
  printf '%s\n' 'root:x:0:' "nonroot:x:$USER_ID:" 'nogroup:x:65534:' >"$stage/etc/group"
  chmod 0644 "$stage/etc/passwd" "$stage/etc/group"
  chmod 0755 "$stage/etc" "$stage/usr" "$stage/usr/local" "$stage${BIN%/*}"
  reproducible_tar "$tar" "$stage" ./etc ./usr
}

# build_image TAG VERSION MODE DESCRIPTION: the archive in $out and its summary line on stdout.
build_image() {
  local tag=$1 version=$2 mode=$3 description=$4
  local layout=$tmp/layout-$tag archive=$out/$NAME-$tag.tar
  local image=$layout:$tag
  umoci init --layout "$layout"
  umoci new --image "$image"
  umoci raw add-layer --image "$image" --history.created "$created" \
    --history.created_by "hack/test-app-images.sh: $BIN ($SOURCE, gcc -static), /etc/passwd, /etc/group" \
    "$tmp/layer.tar"
  umoci config --image "$image" --no-history --created "$created" --architecture "$arch" --os linux \
    --config.user "$USER_ID:$USER_ID" --config.entrypoint "$BIN" \
    --config.env PATH=/usr/local/bin:/usr/bin:/bin \
    --config.env "TESTAPP_VERSION=$version" --config.env "TESTAPP_MODE=$mode" \
    --config.exposedports "$APP_PORT/tcp" \
    --config.label "org.opencontainers.image.title=$NAME" \
    --config.label "org.opencontainers.image.description=$description" \
    --config.label "org.opencontainers.image.version=$tag" \
    --config.label "org.opencontainers.image.created=$created"
  umoci gc --layout "$layout"

  chmod -R u=rwX,go=rX "$layout"
  reproducible_tar "$tmp/archive.tar" "$layout" oci-layout index.json blobs
  mv "$tmp/archive.tar" "$archive"

  local manifest digest size
  digest=$(jq -r '.manifests[0].digest' "$layout/index.json")
  manifest=$layout/blobs/${digest/://}
  size=$(jq '[.config.size, (.layers[].size)] | add' "$manifest")
  printf '%-24s %5s KiB  %s  %s\n' "$NAME:$tag" "$(((size + 1023) / 1024))" "$digest" "$archive"
}

main() {
  out=""
  while (($#)); do
    case $1 in
      --out)
        [[ $# -ge 2 ]] || usage
        out=$2
        shift 2
        ;;
      *) usage ;;
    esac
  done
  out=${out:-$root/build/test-images}

  # The tools (apt-get, only when one is missing).
  bash "$here/bootstrap.sh"
  local tool
  for tool in gcc objcopy readelf umoci jq tar; do
    command -v "$tool" >/dev/null || die "$tool is not installed (hack/bootstrap.sh installs it)"
  done
  [[ -f "$root/$SOURCE" ]] || die "no $root/$SOURCE"

  SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$DEFAULT_EPOCH}
  [[ "$SOURCE_DATE_EPOCH" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH is not a number: $SOURCE_DATE_EPOCH"
  export SOURCE_DATE_EPOCH
  created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
  arch=$(dpkg --print-architecture 2>/dev/null) || arch=amd64

  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-test-app-images.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT

  log "SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH ($created), linux/$arch, into $out"
  app_layer "$tmp/layer.tar"
  local entry tag version mode description
  for entry in "${IMAGES[@]}"; do
    IFS='|' read -r tag version mode description <<<"$entry"
    build_image "$tag" "$version" "$mode" "$description"
  done
  log "not built, never pushed: $NAME:2.0-missing (the tag no registry has)"
}

out="" tmp="" created="" arch=""
main "$@"
