#!/usr/bin/env bash
# End-to-end test of the container images (`make image`, hack/image.sh), without a cluster, a
# registry or a container engine:
#
#  1. Reproducible: hack/image.sh twice, into two output directories, gives the same manifest
#     digests and byte-identical archives.
#  2. skopeo (what pushes the archives) reads each one, with the same digest; the image configs
#     carry the Dockerfile's user (65532:65532), entrypoints, exposed ports and labels.
#  3. Each image unpacked (umoci) and its binaries run under runc as the image's user (65532:65532),
#     with a read-only root file system, no capabilities and no network: rollgate-controller
#     --help, rollgate version and rollgate-validate --help print what they print outside the
#     image, so every shared library is in it; rollgate-validate on this GPU-less machine reports
#     the missing libcuda (exit 10, its JSON verdict); the controller image has its CA bundle and
#     the nonroot user.
#
#   tests/e2e/image_test.sh BUILD_DIR    (BUILD_DIR holds controller/rollgate-controller, rollgate
#                                         and rollgate-validate; ctest passes the build directory)
#
# Needs root (runc; mmdebstrap's root mode) and the Debian mirror (hack/image.sh downloads the
# packages); without root it fails at once, saying so (make test runs as root on this project's
# machines; a skipped check would hide a broken image).
# Prints PASS/FAIL per check and exits non-zero when any check fails.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
[[ $# -eq 1 ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
build=$1
if [[ $(id -u) -ne 0 ]]; then
  echo "FAIL: needs root (runc runs the images; mmdebstrap builds them in root mode)" >&2
  exit 1
fi

readonly USER_ID=65532
readonly IMAGES=(rollgate-controller rollgate-validate)
start=$SECONDS
check_name="image test"
# shellcheck source-path=SCRIPTDIR source=lib/checks.sh
source "$here/lib/checks.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-image-test.XXXXXX")
# shellcheck source-path=SCRIPTDIR source=lib/runc.sh
source "$here/lib/runc.sh" # unpack, run_in, expect_run


# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  runc_cleanup
  rm -rf "$work"
}
trap cleanup EXIT

# --- 1. two builds, the same images -------------------------------------------------------------

for run in a b; do
  if ! bash "$repo/hack/image.sh" --out "$work/$run" "$build" >"$work/$run.out" 2>"$work/$run.err"; then
    fail "hack/image.sh (build $run): $(one_line "$(tail -n 5 "$work/$run.err")")"
    echo "image test: FAIL"
    exit 1
  fi
done
cat "$work/a.out"

declare -A archive=() digest=() tag=()
for name in "${IMAGES[@]}"; do
  a=$(compgen -G "$work/a/$name-*.tar" || true)
  b=$(compgen -G "$work/b/$name-*.tar" || true)
  if [[ -z "$a" || -z "$b" || "$a" == *$'\n'* ]]; then
    fail "$name: one archive per build expected, got: $(one_line "$a $b")"
    continue
  fi
  archive[$name]=$a
  index_a=$(tar -xOf "$a" index.json)
  digest[$name]=$(jq -r '.manifests[0].digest' <<<"$index_a")
  tag[$name]=$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' <<<"$index_a")
  digest_b=$(tar -xOf "$b" index.json | jq -r '.manifests[0].digest')
  if [[ "${digest[$name]}" == sha256:* && "${digest[$name]}" == "$digest_b" ]]; then
    pass "$name: two builds, the same manifest digest ${digest[$name]}"
  else
    fail "$name: two builds, two digests: ${digest[$name]} and $digest_b"
  fi
  if cmp -s "$a" "$b"; then
    pass "$name: two builds, byte-identical archives ($(basename "$a"))"
  else
    fail "$name: the archives of the two builds differ"
  fi
  if grep -q "^$name .* ${digest[$name]} " "$work/a.out"; then
    pass "$name: hack/image.sh printed its digest"
  else
    fail "$name: hack/image.sh's summary does not show ${digest[$name]}: $(one_line "$(cat "$work/a.out")")"
  fi
done
((${#archive[@]} == ${#IMAGES[@]})) || { echo "image test: FAIL"; exit 1; }

# --- 2. the image configs, as skopeo reads them -------------------------------------------------

for name in "${IMAGES[@]}"; do
  check_config "$name" "oci-archive:${archive[$name]}" "${digest[$name]}" "$USER_ID" "${tag[$name]}"
done

# --- 3. the binaries run in their images ---------------------------------------------------------

for name in "${IMAGES[@]}"; do
  unpack_checked "$name" "${archive[$name]}" "${tag[$name]}" "$USER_ID" || continue
  rootfs=$work/$name/bundle/rootfs
  if grep -q "^nonroot:x:$USER_ID:$USER_ID:" "$rootfs/etc/passwd" && grep -q "^nonroot:x:$USER_ID:" "$rootfs/etc/group"; then
    pass "$name: /etc/passwd and /etc/group name $USER_ID nonroot"
  else
    fail "$name: no nonroot $USER_ID in /etc/passwd or /etc/group"
  fi
done

if [[ -d "$work/rollgate-controller/bundle" ]]; then
  expect_run rollgate-controller 0 '^Usage: rollgate-controller \[flags\]' \
    /usr/local/bin/rollgate-controller --help
  expect_run rollgate-controller 0 "^rollgate ${tag[rollgate-controller]//./\\.}\$" \
    /usr/local/bin/rollgate version
  expect_run rollgate-controller 0 'Checks that CUDA works' /usr/local/bin/rollgate-validate --help
  bundle_file=$work/rollgate-controller/bundle/rootfs/etc/ssl/certs/ca-certificates.crt
  certs=$(grep -c 'BEGIN CERTIFICATE' "$bundle_file" 2>/dev/null || true)
  if ((${certs:-0} >= 100)); then
    pass "rollgate-controller: CA bundle /etc/ssl/certs/ca-certificates.crt ($certs certificates)"
  else
    fail "rollgate-controller: CA bundle /etc/ssl/certs/ca-certificates.crt has ${certs:-no} certificates"
  fi
fi
if [[ -d "$work/rollgate-validate/bundle" ]]; then
  expect_run rollgate-validate 0 'Checks that CUDA works' /usr/local/bin/rollgate-validate --help
  # No GPU here: the verdict names the missing driver library (exit 10), so the validator ran.
  expect_run rollgate-validate 10 '"failedCheck":"library"' /usr/local/bin/rollgate-validate --timeout 10
fi

finish
