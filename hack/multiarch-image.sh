#!/usr/bin/env bash
# The registry-aware promotion fixtures (issue 16): a two-platform image and a large image, made
# reproducibly without a daemon from hack/test-app-images.sh's testapp:2.0, and optionally pushed.
#
#   hack/multiarch-image.sh [--out DIR] [--push REGISTRY] [--cert-dir DIR | --tls-verify=false]
#                           [--authfile FILE]
#
#   --out DIR        where the archives go (default: the repository's build/test-images-multiarch)
#   --push REGISTRY  push them to REGISTRY (host:port) with skopeo (`copy --all --preserve-digests`)
#   --cert-dir DIR   the registry's CA (a directory of *.crt; default $ROLLGATE_REGISTRY_CERT_DIR,
#                    hack/registry.sh up --tls); without one, --tls-verify=false (plain HTTP)
#   --authfile FILE  credentials, containers-auth.json(5) (default $ROLLGATE_REGISTRY_AUTHFILE,
#                    hack/registry.sh up --htpasswd); the password is never on a command line
#
# The images, as oci-archives DIR/testapp-<tag>.tar (hack/registry.sh push DIR pushes them too):
#   testapp:2.0-multiarch  an OCI image index (application/vnd.oci.image.index.v1+json) of two
#                          images, linux/amd64 and linux/arm64, both testapp:2.0's layer (the arm64
#                          one holds the same x86-64 static binary: it is never run; only its
#                          config's architecture and the index's platform entries matter)
#   testapp:2.0-large      linux/amd64, testapp:2.0 plus a layer of 20 MiB of incompressible bytes
#                          (AES-256-CTR of zeros under a fixed key: the same bytes on every run),
#                          for the size budgets
# Output, one line per image (and one per platform of the index) on stdout:
#   REFERENCE  DIGEST  MEDIA_TYPE  SIZE
# SIZE: the compressed size of a platform's image, the sum of its layer sizes in bytes ("-" for the
# index itself). REFERENCE is REGISTRY/testapp:TAG when pushed (its digest read back from skopeo),
# else testapp:TAG.
# Reproducible like hack/test-app-images.sh (SOURCE_DATE_EPOCH, default 2024-01-01T00:00:00Z): two
# runs give the same digests and byte-identical archives. Needs umoci, jq, openssl, skopeo (for
# --push) and what hack/test-app-images.sh needs.
set -euo pipefail
umask 022
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/reproducible-tar.sh
source "$here/lib/reproducible-tar.sh"
root=$(cd "$here/.." && pwd)

readonly NAME=testapp
readonly BASE_TAG=2.0
readonly DEFAULT_EPOCH=1704067200 # 2024-01-01T00:00:00Z
readonly LARGE_BYTES=$((20 * 1024 * 1024))
# A fixed key and IV: the "random" layer is the same on every machine and run.
readonly LARGE_KEY=d1c488a63a104924bdd28baf3856d8f35edcf72e1b125f93fb9e5374a1046814
readonly LARGE_IV=bbf714343a9a66c6be99e3c6d3e1fdd7
readonly INDEX_TYPE=application/vnd.oci.image.index.v1+json

log() { printf '[multiarch-image] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
usage() {
  sed -n '5,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

blob() { echo "$layout/blobs/${1/://}"; }

# descriptor_of TAG: the descriptor (JSON) of TAG in $layout's index.json.
descriptor_of() {
  jq -c --arg t "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t)
    | {mediaType, digest, size}' "$layout/index.json"
}

# config_image FROM_TAG NEW_TAG ARCH DESCRIPTION: NEW_TAG = FROM_TAG with ARCH and the labels.
config_image() {
  umoci config --image "$layout:$1" --tag "$2" --no-history --created "$created" \
    --architecture "$3" --os linux \
    --config.label "org.opencontainers.image.version=$2" \
    --config.label "org.opencontainers.image.description=$4"
}

# write_index TAG DESCRIPTOR...: an OCI image index of the descriptors (each with its config's
# platform) as a blob, tagged TAG in $layout's index.json.
write_index() {
  local tag=$1 d config platform digest size
  shift
  local -a entries=()
  for d in "$@"; do
    config=$(blob "$(jq -r '.config.digest' "$(blob "$(jq -r .digest <<<"$d")")")")
    platform=$(jq -c '{architecture, os}' "$config")
    entries+=("$(jq -c --argjson p "$platform" '. + {platform: $p}' <<<"$d")")
  done
  printf '%s\n' "${entries[@]}" |
    jq -cs --arg t "$INDEX_TYPE" --arg created "$created" '{schemaVersion: 2, mediaType: $t, manifests: .,
      annotations: {"org.opencontainers.image.created": $created}}' | tr -d '\n' >"$tmp/index.blob"
  digest=sha256:$(sha256sum "$tmp/index.blob" | cut -d' ' -f1)
  size=$(stat -c %s "$tmp/index.blob")
  mv "$tmp/index.blob" "$(blob "$digest")"
  chmod 0644 "$(blob "$digest")"
  jq --arg t "$INDEX_TYPE" --arg d "$digest" --argjson s "$size" --arg tag "$tag" \
    '.manifests += [{mediaType: $t, digest: $d, size: $s,
      annotations: {"org.opencontainers.image.ref.name": $tag}}]' "$layout/index.json" >"$tmp/index.json"
  mv "$tmp/index.json" "$layout/index.json"
}

# reachable DIGEST...: every blob reachable from the digests (indexes, manifests, configs, layers).
reachable() {
  local d path
  local -a sub
  for d in "$@"; do
    echo "$d"
    path=$(blob "$d")
    mapfile -t sub < <(jq -r 'if has("manifests") then .manifests[].digest
      elif has("layers") then .config.digest, .layers[].digest else empty end' "$path" 2>/dev/null)
    ((${#sub[@]} == 0)) || reachable "${sub[@]}"
  done
}

# archive TAG: DIR/testapp-TAG.tar, an oci-archive of TAG alone (and only its blobs).
archive() {
  local tag=$1 d one=$tmp/one-$1
  d=$(descriptor_of "$tag")
  mkdir -p "$one/blobs/sha256"
  cp "$layout/oci-layout" "$one/"
  jq -c --arg tag "$tag" --argjson d "$d" \
    '{schemaVersion: 2, manifests: [$d + {annotations: {"org.opencontainers.image.ref.name": $tag}}]}' \
    <<<'{}' >"$one/index.json"
  local b
  while read -r b; do
    cp "$(blob "$b")" "$one/blobs/${b/://}"
  done < <(reachable "$(jq -r .digest <<<"$d")" | sort -u)
  chmod -R u=rwX,go=rX "$one"
  reproducible_tar "$tmp/archive.tar" "$one" oci-layout index.json blobs
  mv "$tmp/archive.tar" "$out/$NAME-$tag.tar"
}

# layers_size MANIFEST_DIGEST: the sum of its layer sizes.
layers_size() { jq '[.layers[].size] | add' "$(blob "$1")"; }

# report TAG DIGEST REF: the lines of one image.
report() {
  local tag=$1 digest=$2 ref=$3 type m
  type=$(jq -r .mediaType <<<"$(descriptor_of "$tag")")
  if [[ $type == "$INDEX_TYPE" ]]; then
    printf '%s  %s  %s  -\n' "$ref" "$digest" "$type"
    while read -r m; do
      printf '  %s  %s  %s  %s\n' "$(jq -r '.platform | "\(.os)/\(.architecture)"' <<<"$m")" \
        "$(jq -r .digest <<<"$m")" "$(jq -r .mediaType <<<"$m")" "$(layers_size "$(jq -r .digest <<<"$m")")"
    done < <(jq -c '.manifests[]' "$(blob "$digest")")
  else
    printf '%s  %s  %s  %s\n' "$ref" "$digest" "$type" "$(layers_size "$digest")"
  fi
}

main() {
  local push="" cert_dir=${ROLLGATE_REGISTRY_CERT_DIR:-} authfile=${ROLLGATE_REGISTRY_AUTHFILE:-} tls_verify=1
  out=""
  while (($#)); do
    case $1 in
      --out | --push | --cert-dir | --authfile)
        [[ $# -ge 2 ]] || usage
        case $1 in
          --out) out=$2 ;;
          --push) push=$2 ;;
          --cert-dir) cert_dir=$2 ;;
          --authfile) authfile=$2 ;;
        esac
        shift 2
        ;;
      --tls-verify=false)
        tls_verify=0
        shift
        ;;
      *) usage ;;
    esac
  done
  out=${out:-$root/build/test-images-multiarch}
  local tool
  for tool in umoci jq openssl tar sha256sum; do
    command -v "$tool" >/dev/null || die "$tool is not installed (hack/bootstrap.sh installs it)"
  done
  if [[ -n "$push" ]]; then
    command -v skopeo >/dev/null || die "skopeo is not installed (hack/bootstrap.sh installs it)"
    [[ "$push" =~ ^[A-Za-z0-9.-]+(:[0-9]+)?$ ]] || die "--push: not a registry host[:port]: $push"
    [[ -z "$cert_dir" || -d "$cert_dir" ]] || die "--cert-dir: no directory $cert_dir"
    [[ -z "$authfile" || -f "$authfile" ]] || die "--authfile: no file $authfile"
  fi

  SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$DEFAULT_EPOCH}
  [[ "$SOURCE_DATE_EPOCH" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH is not a number: $SOURCE_DATE_EPOCH"
  export SOURCE_DATE_EPOCH
  created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-multiarch-image.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT

  # testapp:2.0, the base of every image here.
  if ! bash "$here/test-app-images.sh" --out "$tmp/base" >"$tmp/base.out" 2>"$tmp/base.err"; then
    die "hack/test-app-images.sh: $(tail -n 1 "$tmp/base.err")"
  fi
  layout=$tmp/layout
  mkdir -p "$layout"
  tar -xf "$tmp/base/$NAME-$BASE_TAG.tar" -C "$layout"

  config_image "$BASE_TAG" "$BASE_TAG-amd64" amd64 \
    "Rollgate test application 2.0, linux/amd64 (of the index testapp:2.0-multiarch)"
  config_image "$BASE_TAG" "$BASE_TAG-arm64" arm64 \
    "Rollgate test application 2.0, linux/arm64 (of the index testapp:2.0-multiarch; its binary is x86-64 and never runs)"
  write_index "$BASE_TAG-multiarch" "$(descriptor_of "$BASE_TAG-amd64")" "$(descriptor_of "$BASE_TAG-arm64")"

  # The large layer: 20 MiB of AES-CTR output, incompressible and the same every time.
  mkdir -p "$tmp/large/data"
  head -c "$LARGE_BYTES" /dev/zero |
    openssl enc -aes-256-ctr -K "$LARGE_KEY" -iv "$LARGE_IV" -nosalt >"$tmp/large/data/random.bin"
  [[ $(stat -c %s "$tmp/large/data/random.bin") == "$LARGE_BYTES" ]] || die "openssl enc made a short file"
  chmod 0755 "$tmp/large/data"
  chmod 0644 "$tmp/large/data/random.bin"
  reproducible_tar "$tmp/large.tar" "$tmp/large" ./data
  umoci raw add-layer --image "$layout:$BASE_TAG" --tag "$BASE_TAG-large-base" --history.created "$created" \
    --history.created_by "hack/multiarch-image.sh: /data/random.bin, $LARGE_BYTES bytes of AES-256-CTR(0) under a fixed key" \
    "$tmp/large.tar"
  config_image "$BASE_TAG-large-base" "$BASE_TAG-large" amd64 \
    "Rollgate test application 2.0 with a 20 MiB incompressible layer (size budgets)"

  local tag digest ref
  for tag in "$BASE_TAG-multiarch" "$BASE_TAG-large"; do
    archive "$tag"
    digest=$(jq -r .digest <<<"$(descriptor_of "$tag")")
    ref=$NAME:$tag
    if [[ -n "$push" ]]; then
      ref=$push/$NAME:$tag
      local -a dest=()
      if [[ -n "$cert_dir" && $tls_verify == 1 ]]; then dest=(--dest-cert-dir "$cert_dir"); else dest=(--dest-tls-verify=false); fi
      [[ -z "$authfile" ]] || dest+=(--dest-authfile "$authfile")
      echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$tmp/policy.json"
      if ! skopeo --policy "$tmp/policy.json" copy --quiet --all --preserve-digests "${dest[@]}" \
        --digestfile "$tmp/digest" "oci-archive:$out/$NAME-$tag.tar:$tag" "docker://$ref" >"$tmp/push.out" 2>&1; then
        die "skopeo copy $NAME-$tag.tar -> $ref: $(tr '\n' ' ' <"$tmp/push.out" | cut -c1-400)"
      fi
      [[ $(<"$tmp/digest") == "$digest" ]] || die "$ref: pushed as $(<"$tmp/digest"), built as $digest"
    fi
    report "$tag" "$digest" "$ref"
  done
  log "archives in $out (SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH)"
}

out="" tmp="" created="" layout=""
main "$@"
