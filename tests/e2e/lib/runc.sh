# shellcheck shell=bash
# Sourced by the e2e tests that check Rollgate's images and run their binaries (image_test.sh,
# dockerfile_test.sh), after lib/checks.sh. Set `work` (the test's scratch directory) before
# sourcing; each image NAME is unpacked into $work/NAME/bundle. Call runc_cleanup from the test's
# EXIT trap.
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

# check_config NAME REF DIGEST UID [VERSION]: the config of image REF (skopeo transport:reference)
# as skopeo reads it: the digest DIGEST; User UID:UID, Entrypoint [/usr/local/bin/NAME], no Cmd,
# the controller's ports 8080/8081 (none otherwise), the title and description labels (and the
# version label VERSION when given), os linux. One check each for the digest and the config.
check_config() {
  local name=$1 ref=$2 want_digest=$3 uid=$4 version=${5:-} inspect config problems want_ports
  if ! inspect=$(skopeo inspect "$ref" 2>&1) || ! config=$(skopeo inspect --config "$ref" 2>&1); then
    fail "$name: skopeo inspect $ref: $(one_line "$inspect ${config:-}")"
    return
  fi
  if [[ $(jq -r .Digest <<<"$inspect") == "$want_digest" ]]; then
    pass "$name: skopeo reads the archive (digest $want_digest)"
  else
    fail "$name: skopeo sees digest $(jq -r .Digest <<<"$inspect"), not $want_digest"
  fi
  want_ports='[]'
  [[ $name != rollgate-controller ]] || want_ports='["8080/tcp","8081/tcp"]'
  # shellcheck disable=SC2016 # jq program
  problems=$(jq -r --arg user "$uid:$uid" --arg entry "/usr/local/bin/$name" \
    --arg title "$name" --arg version "$version" --argjson ports "$want_ports" '
      [ (if .config.User != $user then "User \(.config.User)" else empty end),
        (if .config.Entrypoint != [$entry] then "Entrypoint \(.config.Entrypoint)" else empty end),
        (if (.config.Cmd // []) != [] then "Cmd \(.config.Cmd)" else empty end),
        (if ((.config.ExposedPorts // {}) | keys) != $ports then "ExposedPorts \(.config.ExposedPorts)" else empty end),
        (if .config.Labels["org.opencontainers.image.title"] != $title then "title label" else empty end),
        (if (.config.Labels["org.opencontainers.image.description"] // "") == "" then "no description label" else empty end),
        (if $version != "" and .config.Labels["org.opencontainers.image.version"] != $version then "version label" else empty end),
        (if .os != "linux" then "os \(.os)" else empty end)
      ] | join("; ")' <<<"$config")
  if [[ -z "$problems" ]]; then
    pass "$name: config: User $uid:$uid, Entrypoint [/usr/local/bin/$name], no Cmd, ports $want_ports, labels"
  else
    fail "$name: config: $problems"
  fi
}

# unpack_checked NAME ARCHIVE REF UID: unpack, then check that umoci's runtime config runs
# /usr/local/bin/NAME as UID:UID. False (after a failed check) when the image cannot be unpacked.
unpack_checked() {
  local name=$1 uid=$4 msg config
  if ! msg=$(unpack "$name" "$2" "$3" 2>&1); then
    fail "$name: umoci unpack: $(one_line "$msg")"
    return 1
  fi
  config=$work/$name/bundle/config.json
  if [[ $(jq -c '[.process.user.uid, .process.user.gid, .process.args]' "$config") == \
    "[$uid,$uid,[\"/usr/local/bin/$name\"]]" ]]; then
    pass "$name: umoci's runtime config runs /usr/local/bin/$name as $uid:$uid"
  else
    fail "$name: runtime config: $(jq -c '[.process.user, .process.args]' "$config")"
  fi
}
