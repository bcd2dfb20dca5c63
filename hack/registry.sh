#!/usr/bin/env bash
# A local OCI registry on 127.0.0.1 for the end-to-end tests (issue 15): Debian's docker-registry
# (distribution 2.8) as a plain process of this script, with its own configuration, storage, log
# and pid file in one directory. Never the system's docker-registry service (not used, not started).
#
#   hack/registry.sh up     [--dir DIR] [--port PORT]   start it (no-op when it already runs) and
#                                   wait up to 20 s until GET /v2/ answers; stdout: only
#                                   `export ROLLGATE_REGISTRY=127.0.0.1:PORT`, so
#                                   `eval "$(hack/registry.sh up)"` works
#   hack/registry.sh down   [--dir DIR]                 stop it (SIGTERM, SIGKILL after 10 s); keeps
#                                   the storage; safe to run twice
#   hack/registry.sh status [--dir DIR]                 exit 0: runs and answers; 1: runs, does not
#                                   answer; 3: not running
#   hack/registry.sh push ARCHIVE_DIR [--dir DIR] [--port PORT]   push every oci-archive
#                                   ARCHIVE_DIR/<name>-<tag>.tar (hack/test-app-images.sh,
#                                   hack/image.sh) as 127.0.0.1:PORT/<name>:<tag>, digests preserved
#
#   --dir DIR    default $ROLLGATE_REGISTRY_DIR, else ~/.cache/rollgate/registry
#   --port PORT  default: the port it runs on (push), else 5000
#
# The default directory sits next to the local control plane's binaries (~/.cache/rollgate), not in
# a build tree: the registry is one per machine and outlives builds, so `make clean` or a second
# build directory neither orphans the running process (its pid file gone with build/) nor throws
# its images away. Tests pass their own --dir (a temporary directory) and a free --port.
# DIR layout: config.yml, storage/, registry.log, registry.pid ("PID STARTTIME"; `down` stops only
# that process, after checking its start time), registry.port, lock.
# Plain HTTP on loopback, no authentication: clients need --tls-verify=false (skopeo) or an
# insecure-registry entry (containerd: a hosts.toml for 127.0.0.1:PORT).
# Environment: ROLLGATE_REGISTRY_DIR, ROLLGATE_REGISTRY_BIN (default /usr/bin/docker-registry, from
# the Debian package docker-registry; hack/bootstrap.sh installs it), ROLLGATE_REGISTRY_TIMEOUT
# (seconds `up` waits, default 20).
set -euo pipefail
export LC_ALL=C

readonly DEFAULT_PORT=5000
readonly REGISTRY_BIN=${ROLLGATE_REGISTRY_BIN:-/usr/bin/docker-registry}
readonly UP_TIMEOUT=${ROLLGATE_REGISTRY_TIMEOUT:-20}

log() { printf '[registry] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
usage() {
  sed -n '6,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# --- the process --------------------------------------------------------------------------------

# registry_pid: the recorded pid when that process is alive and is the one `up` started (its start
# time, field 22 of /proc/PID/stat, matches the recorded one; guards against pid reuse); empty
# otherwise. Zombies count as dead.
registry_pid() {
  local pid recorded stat
  [[ -f "$dir/registry.pid" ]] || return 0
  read -r pid recorded <"$dir/registry.pid" || true
  [[ "$pid" =~ ^[0-9]+$ && "$recorded" =~ ^[0-9]+$ ]] || return 0
  read -r stat 2>/dev/null <"/proc/$pid/stat" || return 0
  local -a fields
  read -ra fields <<<"${stat##*) }"
  # After the ")" that ends the command name: field 3 (state) is index 0, field 22 is index 19.
  [[ ${#fields[@]} -ge 20 && "${fields[0]}" != Z && "${fields[19]}" == "$recorded" ]] || return 0
  echo "$pid"
}

recorded_port() {
  local p=""
  [[ -f "$dir/registry.port" ]] && read -r p <"$dir/registry.port"
  [[ "$p" =~ ^[0-9]+$ ]] && echo "$p"
  return 0
}

answers() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/v2/" 2>/dev/null; }
port_open() { (: >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# lock: one up/down at a time per directory (fd 9, closed for the registry process).
lock() {
  mkdir -p "$dir"
  exec 9>"$dir/lock"
  flock 9
}

# last_log_line: the registry's last words, for the one-line errors.
last_log_line() {
  local line
  line=$(grep -v '^[[:space:]]*$' "$dir/registry.log" 2>/dev/null | tail -n 1 | cut -c1-300) || true
  echo "${line:-(empty)}"
}

write_config() {
  cat >"$dir/config.yml" <<EOF
# Written by hack/registry.sh up; rewritten on every start.
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
  fields:
    service: rollgate-registry
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$port
  headers:
    X-Content-Type-Options: [nosniff]
EOF
}

cmd_up() {
  lock
  local log_file=$dir/registry.log pid running_port
  pid=$(registry_pid)
  if [[ -n "$pid" ]]; then
    running_port=$(recorded_port)
    [[ -z "$port_arg" || "$port_arg" == "$running_port" ]] ||
      die "already running on port $running_port (pid $pid): hack/registry.sh down --dir $dir first"
    port=$running_port
    log "already running: pid $pid, 127.0.0.1:$port"
  else
    port=${port_arg:-$DEFAULT_PORT}
    mkdir -p "$dir/storage"
    rm -f "$dir/registry.pid"
    : >"$log_file"
    if [[ ! -x "$REGISTRY_BIN" ]]; then
      echo "no executable $REGISTRY_BIN" >>"$log_file"
      die "no $REGISTRY_BIN (Debian package docker-registry; hack/bootstrap.sh installs it); log: $log_file"
    fi
    if port_open "$port"; then
      echo "port $port on 127.0.0.1 is in use" >>"$log_file"
      die "port $port on 127.0.0.1 is in use (--port PORT picks another); log: $log_file"
    fi
    write_config
    echo "$port" >"$dir/registry.port"
    # Without the caller's REGISTRY_* variables (they would override config.yml), in its own
    # session (the caller's terminal or test runner signals do not reach it), without fd 9.
    local -a unset_env=() var
    for var in $(compgen -e); do
      [[ $var != REGISTRY_* ]] || unset_env+=(-u "$var")
    done
    setsid env "${unset_env[@]}" "$REGISTRY_BIN" serve "$dir/config.yml" </dev/null >>"$log_file" 2>&1 9>&- &
    pid=$!
    local stat fields=()
    read -r stat 2>/dev/null <"/proc/$pid/stat" || stat=""
    read -ra fields <<<"${stat##*) }"
    echo "$pid ${fields[19]:-0}" >"$dir/registry.pid"
    log "started: pid $pid, 127.0.0.1:$port, dir $dir"
  fi
  local deadline=$((SECONDS + UP_TIMEOUT))
  until answers "$port"; do
    if [[ -z "$(registry_pid)" ]]; then
      rm -f "$dir/registry.pid"
      die "docker-registry exited: $(last_log_line); log: $log_file"
    fi
    if ((SECONDS >= deadline)); then
      die "GET http://127.0.0.1:$port/v2/ did not answer within ${UP_TIMEOUT}s; log: $log_file"
    fi
    sleep 0.1
  done
  echo "export ROLLGATE_REGISTRY=127.0.0.1:$port"
}

cmd_down() {
  if [[ ! -d "$dir" ]]; then
    log "not running (no $dir)"
    return 0
  fi
  lock
  local pid deadline
  pid=$(registry_pid)
  if [[ -z "$pid" ]]; then
    rm -f "$dir/registry.pid"
    log "not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 10))
  while [[ -n "$(registry_pid)" ]] && ((SECONDS < deadline)); do
    sleep 0.1
  done
  if [[ -n "$(registry_pid)" ]]; then
    log "pid $pid still running 10 s after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while [[ -n "$(registry_pid)" ]]; do sleep 0.1; done
  fi
  rm -f "$dir/registry.pid"
  log "stopped pid $pid (storage kept in $dir/storage)"
}

cmd_status() {
  local pid
  pid=$(registry_pid)
  if [[ -z "$pid" ]]; then
    echo "not running (dir $dir)"
    return 3
  fi
  port=$(recorded_port)
  if answers "$port"; then
    echo "running: pid $pid, 127.0.0.1:$port, GET /v2/ answers (dir $dir)"
    return 0
  fi
  echo "running: pid $pid, 127.0.0.1:$port, GET /v2/ does not answer; log: $dir/registry.log"
  return 1
}

# cmd_push ARCHIVE_DIR: every <name>-<tag>.tar there, the tag read from its index.json.
cmd_push() {
  local src=$1
  [[ -d "$src" ]] || die "no directory $src"
  command -v skopeo >/dev/null || die "skopeo is not installed (hack/bootstrap.sh installs it)"
  port=${port_arg:-$(recorded_port)}
  port=${port:-$DEFAULT_PORT}
  answers "$port" || die "no registry answers at http://127.0.0.1:$port/v2/ (hack/registry.sh up first)"
  local tmp
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-registry-push.XXXXXX")
  # shellcheck disable=SC2064 # expand now: tmp is local
  trap "rm -rf '$tmp'" EXIT
  # A private trust policy: this machine may have no /etc/containers/policy.json, and the archives
  # are local files anyway.
  echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$tmp/policy.json"
  local -a archives=()
  mapfile -t archives < <(find "$src" -maxdepth 1 -name '*.tar' -type f | sort)
  ((${#archives[@]})) || die "no *.tar in $src"
  local archive base tag name ref digest
  for archive in "${archives[@]}"; do
    base=$(basename "$archive")
    tag=$(tar -xOf "$archive" index.json 2>/dev/null |
      jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"] // empty' 2>/dev/null) || tag=""
    [[ -n "$tag" ]] || die "$archive: not an oci-archive with a tagged manifest in index.json"
    [[ "$base" == *"-$tag.tar" ]] || die "$archive: the name is not <name>-$tag.tar (its tag is $tag)"
    name=${base%"-$tag.tar"}
    ref=127.0.0.1:$port/$name:$tag
    if ! skopeo --policy "$tmp/policy.json" copy --quiet --preserve-digests --dest-tls-verify=false \
      --digestfile "$tmp/digest" "oci-archive:$archive:$tag" "docker://$ref" >"$tmp/out" 2>&1; then
      die "skopeo copy $base -> $ref: $(tr '\n' ' ' <"$tmp/out" | cut -c1-400)"
    fi
    digest=$(<"$tmp/digest")
    printf '%-44s %s\n' "$ref" "$digest"
  done
}

main() {
  local cmd="" src=""
  dir=${ROLLGATE_REGISTRY_DIR:-${HOME:?HOME is not set}/.cache/rollgate/registry}
  while (($#)); do
    case $1 in
      --dir)
        [[ $# -ge 2 ]] || usage
        dir=$2
        shift 2
        ;;
      --port)
        [[ $# -ge 2 ]] || usage
        port_arg=$2
        shift 2
        ;;
      -h | --help) usage ;;
      -*) usage ;;
      *)
        if [[ -z "$cmd" ]]; then
          cmd=$1
        elif [[ "$cmd" == push && -z "$src" ]]; then
          src=$1
        else
          usage
        fi
        shift
        ;;
    esac
  done
  if [[ -n "$port_arg" ]]; then
    if ! [[ "$port_arg" =~ ^[0-9]{1,5}$ ]] || ((10#$port_arg < 1 || 10#$port_arg > 65535)); then
      die "--port: not a port number: $port_arg"
    fi
    port_arg=$((10#$port_arg))
  fi
  [[ "$dir" == /* ]] || dir=$PWD/$dir
  case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    push)
      [[ -n "$src" ]] || usage
      cmd_push "$src"
      ;;
    *) usage ;;
  esac
}

dir="" port="" port_arg=""
main "$@"
