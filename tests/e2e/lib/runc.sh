# shellcheck shell=bash
# Sourced by the e2e tests that run an image's binaries (image_test.sh, dockerfile_test.sh), after
# lib/checks.sh. Set `work` (the test's scratch directory) before sourcing; each image NAME is
# unpacked into $work/NAME/bundle. Call runc_cleanup from the test's EXIT trap.
: "${work:?set work before sourcing lib/runc.sh}"
runc_containers=()

# unpack NAME ARCHIVE REF: the image REF of the oci-archive ARCHIVE as a runtime bundle (rootfs +
# config.json made by umoci from the image config) in $work/NAME/bundle.
unpack() {
  local name=$1 archive=$2 ref=$3 dir=$work/$1
  mkdir -p "$dir/layout"
  tar -xf "$archive" -C "$dir/layout"
  umoci unpack --image "$dir/layout:$ref" "$dir/bundle" >/dev/null
}

# run_in NAME ARG...: runs ARGs in NAME's bundle under runc, as the image's user, read-only root
# file system, no capabilities, no terminal; sets out, err, rc.
run_in() {
  local name=$1 bundle=$work/$1/bundle id
  shift
  id=rollgate-e2e-$$-${#runc_containers[@]}
  runc_containers+=("$id")
  local args
  args=$(printf '%s\n' "$@" | jq -Rsc 'split("\n")[:-1]') # no newlines in ARGs
  jq --argjson args "$args" '.process.args = $args | .process.terminal = false | .root.readonly = true
      | .process.capabilities = {bounding: [], effective: [], inheritable: [], permitted: [], ambient: []}' \
    "$bundle/config.json" >"$bundle/config.json.new"
  mv "$bundle/config.json.new" "$bundle/config.json"
  rc=0
  runc run --bundle "$bundle" "$id" >"$work/out" 2>"$work/err" </dev/null || rc=$?
  out=$(<"$work/out")
  err=$(<"$work/err")
}

# expect_run NAME RC PATTERN ARG...: ARGs exit with RC and print (stdout or stderr) PATTERN.
expect_run() {
  local name=$1 want_rc=$2 pattern=$3
  shift 3
  run_in "$name" "$@"
  if [[ $rc -eq $want_rc ]] && grep -qE -- "$pattern" <<<"$out"$'\n'"$err"; then
    pass "$name: \`$*\` runs in the image (exit $rc, prints /$pattern/)"
  else
    fail "$name: \`$*\`: exit $rc (want $want_rc), output: $(one_line "$out $err")"
  fi
}

# runc_cleanup: deletes the containers run_in made (for the EXIT trap).
runc_cleanup() {
  local id
  for id in "${runc_containers[@]}"; do
    runc delete --force "$id" >/dev/null 2>&1 || true
  done
}
