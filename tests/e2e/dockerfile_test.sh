#!/usr/bin/env bash
# End-to-end test of the repository's Dockerfile (issue 15): built unmodified with buildah (no
# Docker daemon, no registry; hack/dockerfile-build.sh: debian:12 stand-ins made with mmdebstrap,
# `buildah bud --isolation chroot --pull=never --layers`), then:
#
#  1. Both targets built: controller and validate, exported as OCI archives that skopeo reads,
#     with the digests the script printed.
#  2. Their configs: user 65532:65532, entrypoints /usr/local/bin/rollgate-controller and
#     /usr/local/bin/rollgate-validate, no Cmd, the controller's ports 8080 and 8081, the labels.
#  3. Each image unpacked (umoci) and its binaries run under runc as 65532:65532 with a read-only
#     root file system, no capabilities and no network (tests/e2e/lib/runc.sh, as image_test.sh):
#     rollgate-controller --help, rollgate version, rollgate-validate --help; rollgate-validate on
#     this GPU-less machine reports the missing libcuda (exit 10).
#  4. No apt lists or package caches left in either image; the controller image has the nonroot
#     user and a CA bundle. The image sizes (compressed and unpacked) are printed.
#
#   tests/e2e/dockerfile_test.sh [BUILD_DIR]   (the archives go to BUILD_DIR/dockerfile-images;
#                                               default: the repository's build/)
#
# It builds the working tree, as `docker build .` would; ROLLGATE_DOCKERFILE_REV=<rev> builds that
# commit instead (hack/dockerfile-build.sh --rev), e.g. HEAD while the working tree is mid-edit.
# Needs root (buildah's chroot isolation, mmdebstrap, runc) and the Debian mirror (apt-get runs in
# the build). The first run makes the stand-ins (about 3 minutes) and compiles the controller in
# the build stage (Release, 2 jobs, nice 10): 13 minutes on two busy cores. Later runs reuse the
# stand-ins and buildah's layer cache (~/.cache/rollgate) and take about 20 s, or 2 to 8 minutes
# more (with the load) when controller/ or CMakeLists.txt changed (the compile runs again).
# Prints PASS/FAIL per check and exits non-zero when any check fails.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
[[ $# -le 1 ]] || { echo "usage: $0 [BUILD_DIR]" >&2; exit 2; }
build=${1:-$repo/build}
if [[ $(id -u) -ne 0 ]]; then
  echo "FAIL: needs root (buildah --isolation chroot, mmdebstrap and runc)" >&2
  exit 1
fi

readonly USER_ID=65532
readonly IMAGES=(rollgate-controller rollgate-validate)
start=$SECONDS
check_name="dockerfile test"
# shellcheck source-path=SCRIPTDIR source=lib/checks.sh
source "$here/lib/checks.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-dockerfile-test.XXXXXX")
# shellcheck source-path=SCRIPTDIR source=lib/runc.sh
source "$here/lib/runc.sh" # unpack, run_in, expect_run

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  runc_cleanup
  rm -rf "$work"
}
trap cleanup EXIT

# --- 1. the build -------------------------------------------------------------------------------

out=$build/dockerfile-images
t0=$SECONDS
rev_args=()
[[ -z "${ROLLGATE_DOCKERFILE_REV:-}" ]] || rev_args=(--rev "$ROLLGATE_DOCKERFILE_REV")
if ! bash "$repo/hack/dockerfile-build.sh" --out "$out" "${rev_args[@]}" >"$work/build.out" 2>"$work/build.err"; then
  cat "$work/build.err"
  fail "hack/dockerfile-build.sh: $(one_line "$(grep '^\[dockerfile\] error:' "$work/build.err" | tail -n 1)")"
  echo "$check_name: FAIL"
  exit 1
fi
grep '^\[dockerfile\]' "$work/build.err" || true
echo "hack/dockerfile-build.sh: $((SECONDS - t0)) s"
cat "$work/build.out"

declare -A archive=() digest=() tag=() size=()
for name in "${IMAGES[@]}"; do
  line=$(grep "^$name " "$work/build.out" || true)
  read -r _ t s _ d a <<<"$line"
  if [[ -z "$line" || ! -s "${a:-}" ]]; then
    fail "$name: not built (no archive in the summary: $(one_line "$line"))"
    continue
  fi
  archive[$name]=$a tag[$name]=$t digest[$name]=$d size[$name]=$s
  pass "$name: built from the Dockerfile (target ${name#rollgate-}), $(basename "$a")"
done
((${#archive[@]} == ${#IMAGES[@]})) || { echo "$check_name: FAIL"; exit 1; }

# --- 2. the image configs, as skopeo reads them -------------------------------------------------

for name in "${IMAGES[@]}"; do
  check_config "$name" "oci-archive:${archive[$name]}:${tag[$name]}" "${digest[$name]}" "$USER_ID"
done

# --- 3. and 4. the images' file systems and their binaries ---------------------------------------

for name in "${IMAGES[@]}"; do
  unpack_checked "$name" "${archive[$name]}" "${tag[$name]}" "$USER_ID" || continue
  rootfs=$work/$name/bundle/rootfs
  # apt's index files and package caches (lists, *.deb, pkgcache.bin); its lock files may stay.
  leftovers=$(cd "$rootfs" && find var/lib/apt/lists var/cache/apt -type f ! -name lock 2>/dev/null |
    head -n 5)
  if [[ -z "$leftovers" ]]; then
    pass "$name: no apt lists or package caches in the image"
  else
    fail "$name: apt leftovers in the image: $(one_line "$leftovers")"
  fi
  echo "SIZE: $name: ${size[$name]} MiB compressed, $(du -sm "$rootfs" | cut -f1) MiB unpacked, ${digest[$name]}"
done

if [[ -d "$work/rollgate-controller/bundle" ]]; then
  expect_run rollgate-controller 0 '^Usage: rollgate-controller \[flags\]' \
    /usr/local/bin/rollgate-controller --help
  expect_run rollgate-controller 0 "^rollgate ${tag[rollgate-controller]//./\\.}\$" \
    /usr/local/bin/rollgate version
  expect_run rollgate-controller 0 'Checks that CUDA works' /usr/local/bin/rollgate-validate --help
  rootfs=$work/rollgate-controller/bundle/rootfs
  if grep -q "^nonroot:x:$USER_ID:$USER_ID:" "$rootfs/etc/passwd"; then
    pass "rollgate-controller: /etc/passwd names $USER_ID nonroot"
  else
    fail "rollgate-controller: no nonroot $USER_ID in /etc/passwd"
  fi
  certs=$(grep -c 'BEGIN CERTIFICATE' "$rootfs/etc/ssl/certs/ca-certificates.crt" 2>/dev/null || true)
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
