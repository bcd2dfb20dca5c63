#!/usr/bin/env bash
# A local OCI registry on 127.0.0.1 for the end-to-end tests (issues 15, 16): Debian's
# docker-registry (distribution 2.8) as a plain process of this script, with its own configuration,
# storage, log and pid file in one directory. Never the system's docker-registry service.
#
#   hack/registry.sh up     [--dir DIR] [--port PORT] [--tls] [--htpasswd USER[:PASSWORD]]
#                           [--token-auth [--token-port PORT]]
#                                   start it (no-op when it already runs with these options) and
#                                   wait up to 20 s until GET /v2/ answers (200, or 401 with auth);
#                                   stdout: only `export NAME=VALUE` lines, so
#                                   `eval "$(hack/registry.sh up)"` works: ROLLGATE_REGISTRY, and
#                                   with the options ROLLGATE_REGISTRY_CA, _CERT_DIR, _AUTHFILE,
#                                   _TOKEN_REALM
#   hack/registry.sh down   [--dir DIR]                 stop it (SIGTERM, SIGKILL after 10 s), and
#                                   its token server; keeps everything else; safe to run twice
#   hack/registry.sh stop   [--dir DIR]                 the same as down
#   hack/registry.sh start  [--dir DIR]                 start it again exactly as the last `up` did:
#                                   the same port(s), configuration, certificates, credentials and
#                                   storage (for a test that makes the registry unreachable)
#   hack/registry.sh status [--dir DIR]                 exit 0: runs and answers; 1: runs, does not
#                                   answer; 3: not running
#   hack/registry.sh push ARCHIVE_DIR [--dir DIR] [--port PORT]   push every oci-archive
#                                   ARCHIVE_DIR/<name>-<tag>.tar (hack/test-app-images.sh,
#                                   hack/image.sh) as 127.0.0.1:PORT/<name>:<tag>, digests preserved
#                                   (with the registry's CA and credentials when it has them)
#
#   --dir DIR    default $ROLLGATE_REGISTRY_DIR, else ~/.cache/rollgate/registry
#   --port PORT  default: the port it runs on (push), else 5000
#   --tls        HTTPS: a fresh CA and a server certificate for 127.0.0.1 and localhost (openssl,
#                made once per DIR, kept across down/up): DIR/certs/ca.crt (ROLLGATE_REGISTRY_CA;
#                DIR/certs is a --cert-dir for skopeo)
#   --htpasswd USER[:PASSWORD]  basic authentication (a bcrypt htpasswd file, apache2-utils'
#                htpasswd); without :PASSWORD the password is $ROLLGATE_REGISTRY_PASSWORD. Writes
#                DIR/auth/auth.json (ROLLGATE_REGISTRY_AUTHFILE, containers-auth.json(5)). Use with
#                --tls: clients send the password in clear otherwise
#   --token-auth the Docker token flow: the registry answers 401 `WWW-Authenticate: Bearer
#                realm=...,service=...,scope=...`, and a token server of this script
#                (hack/lib/registry-token-server.py, on --token-port, default a free port; HTTPS
#                with --tls) issues RS256 JWTs the registry verifies; with --htpasswd it demands
#                those credentials, else it serves anyone
#
# The default directory sits next to the local control plane's binaries (~/.cache/rollgate), not in
# a build tree: the registry is one per machine and outlives builds, so `make clean` or a second
# build directory neither orphans the running process (its pid file gone with build/) nor throws
# its images away. Tests pass their own --dir (a temporary directory) and a free --port.
# DIR layout: config.yml, storage/, registry.log, registry.pid ("PID STARTTIME"; `down` stops only
# that process, after checking its start time), registry.port, registry.mode (the options of the
# last `up`), lock; with the options certs/ca.crt, tls/ (the keys, 0600), auth/ (htpasswd,
# auth.json, the token signing key and certificate, token users; 0700), token.pid, token.log.
# Without options: plain HTTP on loopback, no authentication: clients need --tls-verify=false
# (skopeo) or an insecure-registry entry (containerd: a hosts.toml for 127.0.0.1:PORT).
# No key, password or token is ever printed.
# Environment: ROLLGATE_REGISTRY_DIR, ROLLGATE_REGISTRY_BIN (default /usr/bin/docker-registry, from
# the Debian package docker-registry; hack/bootstrap.sh installs it), ROLLGATE_REGISTRY_TIMEOUT
# (seconds `up` waits, default 20), ROLLGATE_REGISTRY_PASSWORD (see --htpasswd).
set -euo pipefail
export LC_ALL=C

readonly DEFAULT_PORT=5000
readonly REGISTRY_BIN=${ROLLGATE_REGISTRY_BIN:-/usr/bin/docker-registry}
readonly UP_TIMEOUT=${ROLLGATE_REGISTRY_TIMEOUT:-20}
readonly SERVICE=rollgate-registry
readonly ISSUER=rollgate-token-server
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly here

log() { printf '[registry] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
usage() {
  sed -n '6,40p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
need() {
  command -v "$1" >/dev/null || die "$1 is not installed (${2:-hack/bootstrap.sh installs it})"
}

# --- the processes ------------------------------------------------------------------------------

# pid_of FILE: the pid recorded in FILE ("PID STARTTIME") when that process is alive and is the
# one this script started (its start time, field 22 of /proc/PID/stat, matches the recorded one;
# guards against pid reuse); empty otherwise. Zombies count as dead.
pid_of() {
  local file=$1 pid recorded stat
  [[ -f "$file" ]] || return 0
  read -r pid recorded <"$file" || true
  [[ "$pid" =~ ^[0-9]+$ && "$recorded" =~ ^[0-9]+$ ]] || return 0
  read -r stat 2>/dev/null <"/proc/$pid/stat" || return 0
  local -a fields
  read -ra fields <<<"${stat##*) }"
  # After the ")" that ends the command name: field 3 (state) is index 0, field 22 is index 19.
  [[ ${#fields[@]} -ge 20 && "${fields[0]}" != Z && "${fields[19]}" == "$recorded" ]] || return 0
  echo "$pid"
}
registry_pid() { pid_of "$dir/registry.pid"; }
token_pid() { pid_of "$dir/token.pid"; }

recorded_port() {
  local p=""
  [[ -f "$dir/registry.port" ]] && read -r p <"$dir/registry.port"
  [[ "$p" =~ ^[0-9]+$ ]] && echo "$p"
  return 0
}

# The options of the last `up` (registry.mode: KEY=VALUE lines): tls (0/1), auth (none, htpasswd,
# token), user, token_port. read_mode sets m_tls, m_auth, m_user, m_token_port.
read_mode() {
  m_tls=0 m_auth=none m_user="" m_token_port=""
  [[ -f "$dir/registry.mode" ]] || return 0
  local key value
  while IFS='=' read -r key value; do
    case $key in
      tls) m_tls=$value ;;
      auth) m_auth=$value ;;
      user) m_user=$value ;;
      token_port) m_token_port=$value ;;
    esac
  done <"$dir/registry.mode"
}
scheme() { if ((m_tls)); then echo https; else echo http; fi; }

# v2_code PORT: the HTTP status of GET /v2/ (000: no answer); answers PORT: 200, or 401 when the
# registry demands authentication.
v2_code() {
  local -a tls=()
  ((m_tls)) && tls=(--cacert "$dir/certs/ca.crt")
  curl -sS -o /dev/null -w '%{http_code}' --max-time 2 "${tls[@]}" "$(scheme)://127.0.0.1:$1/v2/" 2>/dev/null ||
    true
}
answers() {
  local code
  code=$(v2_code "$1")
  [[ $code == 200 || ($m_auth != none && $code == 401) ]]
}
port_open() { (: >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# lock: one up/down at a time per directory (fd 9, closed for the registry process).
lock() {
  mkdir -p "$dir"
  exec 9>"$dir/lock"
  flock 9
}

# last_log_line FILE: a process's last words, for the one-line errors.
last_log_line() {
  local line
  line=$(grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1 | cut -c1-300) || true
  echo "${line:-(empty)}"
}

# spawn PIDFILE LOGFILE COMMAND...: COMMAND in its own session (the caller's terminal or test
# runner signals do not reach it), without the caller's REGISTRY_* variables (they would override
# config.yml) and without fd 9; its pid and start time in PIDFILE.
spawn() {
  local pidfile=$1 logfile=$2 pid stat
  shift 2
  local -a unset_env=() fields=()
  local var
  for var in $(compgen -e); do
    [[ $var != REGISTRY_* ]] || unset_env+=(-u "$var")
  done
  setsid env "${unset_env[@]}" "$@" </dev/null >>"$logfile" 2>&1 9>&- &
  pid=$!
  read -r stat 2>/dev/null <"/proc/$pid/stat" || stat=""
  read -ra fields <<<"${stat##*) }"
  echo "$pid ${fields[19]:-0}" >"$pidfile"
  echo "$pid"
}

# stop_pid PIDFILE NAME: SIGTERM, SIGKILL after 10 s; removes PIDFILE.
stop_pid() {
  local pidfile=$1 name=$2 pid deadline
  pid=$(pid_of "$pidfile")
  if [[ -z "$pid" ]]; then
    rm -f "$pidfile"
    return 1
  fi
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 10))
  while [[ -n "$(pid_of "$pidfile")" ]] && ((SECONDS < deadline)); do
    sleep 0.1
  done
  if [[ -n "$(pid_of "$pidfile")" ]]; then
    log "$name pid $pid still running 10 s after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while [[ -n "$(pid_of "$pidfile")" ]]; do sleep 0.1; done
  fi
  rm -f "$pidfile"
  log "stopped $name pid $pid"
}

# --- the material: certificates, credentials, configuration -------------------------------------

# ossl ARGS...: openssl, quiet; on failure dies with its last line (never key material: openssl
# writes keys only to files here).
ossl() {
  if ! openssl "$@" >"$dir/openssl.log" 2>&1; then
    die "openssl $1 failed: $(last_log_line "$dir/openssl.log")"
  fi
}

# make_tls: a CA and a server certificate for 127.0.0.1 and localhost (ECDSA P-256, 30 days), once
# per directory: kept across down/up so that clients holding the CA keep trusting the registry.
make_tls() {
  if [[ -s "$dir/certs/ca.crt" && -s "$dir/tls/server.crt" && -s "$dir/tls/server.key" ]] &&
    openssl x509 -checkend 86400 -noout -in "$dir/tls/server.crt" >/dev/null 2>&1; then
    return 0
  fi
  need openssl
  mkdir -p "$dir/certs" "$dir/tls"
  chmod 0700 "$dir/tls"
  (
    umask 077
    ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
      -subj "/CN=Rollgate test registry CA $(date -u +%Y%m%dT%H%M%SZ)" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
      -keyout "$dir/tls/ca.key" -out "$dir/certs/ca.crt"
    ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
      -keyout "$dir/tls/server.key" -out "$dir/tls/server.csr"
    printf '%s\n' basicConstraints=critical,CA:FALSE keyUsage=critical,digitalSignature \
      extendedKeyUsage=serverAuth subjectAltName=IP:127.0.0.1,DNS:localhost >"$dir/tls/server.ext"
    ossl x509 -req -in "$dir/tls/server.csr" -CA "$dir/certs/ca.crt" -CAkey "$dir/tls/ca.key" \
      -CAserial "$dir/tls/ca.srl" \
      -CAcreateserial -days 30 -extfile "$dir/tls/server.ext" -out "$dir/tls/server.crt"
  )
  chmod 0644 "$dir/certs/ca.crt" "$dir/tls/server.crt"
  rm -f "$dir/tls/server.csr" "$dir/openssl.log"
  log "made a CA ($dir/certs/ca.crt) and a server certificate for 127.0.0.1, localhost"
}

# make_token_keys: the token server's RSA signing key and its self-signed certificate (the
# registry's rootcertbundle), once per directory.
make_token_keys() {
  [[ -s "$dir/auth/token.key" && -s "$dir/auth/token.crt" ]] && return 0
  need openssl
  (
    umask 077
    ossl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=$ISSUER" \
      -keyout "$dir/auth/token.key" -out "$dir/auth/token.crt"
  )
  rm -f "$dir/openssl.log"
}

# make_credentials USER PASSWORD: the htpasswd file (bcrypt), the token server's users file
# (PBKDF2-SHA256, standard library only) and auth.json for skopeo and friends. The password goes
# through stdin, never an argument.
make_credentials() {
  local user=$1 password=$2
  [[ "$user" =~ ^[A-Za-z0-9._-]+$ ]] || die "--htpasswd: the user name may hold only A-Z a-z 0-9 . _ -"
  [[ -n "$password" ]] || die "--htpasswd: empty password (USER:PASSWORD, or ROLLGATE_REGISTRY_PASSWORD)"
  [[ "$password" != *$'\n'* ]] || die "--htpasswd: the password holds a newline"
  need htpasswd "the Debian package apache2-utils; hack/bootstrap.sh installs it"
  (
    umask 077
    if ! printf '%s\n' "$password" | htpasswd -iBc "$dir/auth/htpasswd" "$user" >"$dir/auth/htpasswd.log" 2>&1; then
      die "htpasswd failed: $(last_log_line "$dir/auth/htpasswd.log")"
    fi
    printf '%s\n' "$password" | python3 -c '
import hashlib, os, sys
user, out = sys.argv[1], sys.argv[2]
password = sys.stdin.readline().rstrip("\n").encode()
salt = os.urandom(16)
with open(out, "w") as f:
    f.write("%s:%s:%s\n" % (user, salt.hex(), hashlib.pbkdf2_hmac("sha256", password, salt, 100000).hex()))
' "$user" "$dir/auth/token-users"
    printf '%s' "$user:$password" | base64 -w0 |
      jq -R --arg reg "127.0.0.1:$port" '{auths: {($reg): {auth: .}}}' >"$dir/auth/auth.json"
  )
  rm -f "$dir/auth/htpasswd.log"
}

write_config() {
  {
    cat <<EOF
# Written by hack/registry.sh up; rewritten on every up, kept by start.
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
  fields:
    service: $SERVICE
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
    if ((m_tls)); then
      cat <<EOF
  tls:
    certificate: $dir/tls/server.crt
    key: $dir/tls/server.key
EOF
    fi
    case $m_auth in
      htpasswd)
        cat <<EOF
auth:
  htpasswd:
    realm: $SERVICE
    path: $dir/auth/htpasswd
EOF
        ;;
      token)
        cat <<EOF
auth:
  token:
    realm: $(scheme)://127.0.0.1:$m_token_port/token
    service: $SERVICE
    issuer: $ISSUER
    rootcertbundle: $dir/auth/token.crt
EOF
        ;;
    esac
  } >"$dir/config.yml"
}

# env_lines: what `up` and `start` print.
env_lines() {
  echo "export ROLLGATE_REGISTRY=127.0.0.1:$port"
  if ((m_tls)); then
    echo "export ROLLGATE_REGISTRY_CA=$dir/certs/ca.crt"
    echo "export ROLLGATE_REGISTRY_CERT_DIR=$dir/certs"
  fi
  if [[ -n "$m_user" ]]; then
    echo "export ROLLGATE_REGISTRY_AUTHFILE=$dir/auth/auth.json"
  fi
  if [[ $m_auth == token ]]; then
    echo "export ROLLGATE_REGISTRY_TOKEN_REALM=$(scheme)://127.0.0.1:$m_token_port/token"
  fi
}

# launch: the token server (if any) and the registry from the files in $dir, then waits for both.
launch() {
  local log_file=$dir/registry.log pid
  : >"$log_file"
  if [[ ! -x "$REGISTRY_BIN" ]]; then
    echo "no executable $REGISTRY_BIN" >>"$log_file"
    die "no $REGISTRY_BIN (Debian package docker-registry; hack/bootstrap.sh installs it); log: $log_file"
  fi
  if port_open "$port"; then
    echo "port $port on 127.0.0.1 is in use" >>"$log_file"
    die "port $port on 127.0.0.1 is in use (--port PORT picks another); log: $log_file"
  fi
  if [[ $m_auth == token ]]; then
    need python3
    port_open "$m_token_port" &&
      die "port $m_token_port on 127.0.0.1 (the token server) is in use (--token-port PORT picks another)"
    local -a token_cmd=(python3 "$here/lib/registry-token-server.py" --listen "127.0.0.1:$m_token_port"
      --issuer "$ISSUER" --service "$SERVICE" --sign-key "$dir/auth/token.key"
      --sign-cert "$dir/auth/token.crt")
    [[ -z "$m_user" ]] || token_cmd+=(--users "$dir/auth/token-users")
    ((m_tls == 0)) || token_cmd+=(--tls-cert "$dir/tls/server.crt" --tls-key "$dir/tls/server.key")
    : >"$dir/token.log"
    pid=$(spawn "$dir/token.pid" "$dir/token.log" "${token_cmd[@]}")
    log "started the token server: pid $pid, $(scheme)://127.0.0.1:$m_token_port/token"
  fi
  pid=$(spawn "$dir/registry.pid" "$log_file" "$REGISTRY_BIN" serve "$dir/config.yml")
  log "started: pid $pid, $(scheme)://127.0.0.1:$port, dir $dir"
  wait_ready
}

# token_answers: the token server of token.pid answers on its port (its Server header: not some
# other process that held the port when it tried to bind).
token_answers() {
  local -a tls=()
  ((m_tls)) && tls=(--cacert "$dir/certs/ca.crt")
  [[ -n "$(token_pid)" ]] &&
    curl -sS -o /dev/null -D - --max-time 2 "${tls[@]}" "$(scheme)://127.0.0.1:$m_token_port/token" 2>/dev/null |
    grep -qi '^server: rollgate-token-server'
}

# ready: GET /v2/ answers, and the token server (if any) does.
ready() { answers "$port" && { [[ $m_auth != token ]] || token_answers; }; }

# wait_ready: until ready; on failure stops what launch started and dies.
wait_ready() {
  local deadline=$((SECONDS + UP_TIMEOUT)) why=""
  until ready; do
    if [[ -z "$(registry_pid)" ]]; then
      why="docker-registry exited: $(last_log_line "$dir/registry.log"); log: $dir/registry.log"
    elif [[ $m_auth == token && -z "$(token_pid)" ]]; then
      why="the token server exited: $(last_log_line "$dir/token.log"); log: $dir/token.log"
    elif ((SECONDS >= deadline)); then
      why="GET $(scheme)://127.0.0.1:$port/v2/ did not answer within ${UP_TIMEOUT}s; log: $dir/registry.log"
    fi
    if [[ -n "$why" ]]; then
      stop_pid "$dir/registry.pid" docker-registry 2>/dev/null || true
      stop_pid "$dir/token.pid" "token server" 2>/dev/null || true
      die "$why"
    fi
    sleep 0.1
  done
}

# --- the commands -------------------------------------------------------------------------------

cmd_up() {
  lock
  local pid running_port want_mode
  want_mode="tls=$opt_tls auth=$opt_auth user=$opt_user"
  pid=$(registry_pid)
  if [[ -n "$pid" ]]; then
    read_mode
    running_port=$(recorded_port)
    [[ -z "$port_arg" || "$port_arg" == "$running_port" ]] ||
      die "already running on port $running_port (pid $pid): hack/registry.sh down --dir $dir first"
    [[ "tls=$m_tls auth=$m_auth user=$m_user" == "$want_mode" ]] ||
      die "already running with other options (tls=$m_tls auth=$m_auth user=$m_user; pid $pid): hack/registry.sh down --dir $dir first"
    port=$running_port
    log "already running: pid $pid, 127.0.0.1:$port"
    wait_ready
    env_lines
    return 0
  fi
  stop_pid "$dir/token.pid" "token server" 2>/dev/null || true
  port=${port_arg:-$DEFAULT_PORT}
  mkdir -p "$dir/storage"
  rm -f "$dir/registry.pid"
  m_tls=$opt_tls m_auth=$opt_auth m_user=$opt_user m_token_port=""
  if [[ $m_auth == token ]]; then
    m_token_port=${token_port_arg:-$(python3 "$here/lib/free-ports.py" 1)}
  fi
  ((m_tls == 0)) || make_tls
  if [[ $m_auth != none ]]; then
    need jq
    mkdir -p "$dir/auth"
    chmod 0700 "$dir/auth"
  fi
  rm -f "$dir/auth/htpasswd" "$dir/auth/token-users" "$dir/auth/auth.json"
  [[ -z "$m_user" ]] || make_credentials "$m_user" "$opt_password"
  [[ $m_auth != token ]] || make_token_keys
  write_config
  echo "$port" >"$dir/registry.port"
  printf 'tls=%s\nauth=%s\nuser=%s\ntoken_port=%s\n' "$m_tls" "$m_auth" "$m_user" "$m_token_port" \
    >"$dir/registry.mode"
  launch
  env_lines
}

# cmd_start: the last `up` again, from the files it left (config.yml, registry.port, registry.mode).
cmd_start() {
  lock
  [[ -f "$dir/config.yml" && -f "$dir/registry.mode" ]] ||
    die "no registry.mode or config.yml in $dir: hack/registry.sh up --dir $dir first"
  read_mode
  port=$(recorded_port)
  [[ -n "$port" ]] || die "no registry.port in $dir"
  [[ -z "$port_arg" || "$port_arg" == "$port" ]] || die "start reuses port $port (--port $port_arg given)"
  local pid
  pid=$(registry_pid)
  if [[ -n "$pid" ]]; then
    log "already running: pid $pid, 127.0.0.1:$port"
    wait_ready
  else
    stop_pid "$dir/token.pid" "token server" 2>/dev/null || true
    launch
  fi
  env_lines
}

cmd_down() {
  if [[ ! -d "$dir" ]]; then
    log "not running (no $dir)"
    return 0
  fi
  lock
  stop_pid "$dir/token.pid" "token server" || true
  if ! stop_pid "$dir/registry.pid" docker-registry; then
    log "not running"
    return 0
  fi
  log "storage kept in $dir/storage"
}

cmd_status() {
  local pid
  pid=$(registry_pid)
  if [[ -z "$pid" ]]; then
    echo "not running (dir $dir)"
    return 3
  fi
  read_mode
  port=$(recorded_port)
  local what
  what="$(scheme), auth $m_auth"
  if answers "$port"; then
    echo "running: pid $pid, 127.0.0.1:$port ($what), GET /v2/ answers (dir $dir)"
    return 0
  fi
  echo "running: pid $pid, 127.0.0.1:$port ($what), GET /v2/ does not answer; log: $dir/registry.log"
  return 1
}

# cmd_push ARCHIVE_DIR: every <name>-<tag>.tar there, the tag read from its index.json.
cmd_push() {
  local src=$1
  [[ -d "$src" ]] || die "no directory $src"
  command -v skopeo >/dev/null || die "skopeo is not installed (hack/bootstrap.sh installs it)"
  read_mode
  port=${port_arg:-$(recorded_port)}
  port=${port:-$DEFAULT_PORT}
  answers "$port" || die "no registry answers at $(scheme)://127.0.0.1:$port/v2/ (hack/registry.sh up first)"
  local -a dest=(--dest-tls-verify=false)
  ((m_tls == 0)) || dest=(--dest-cert-dir "$dir/certs")
  [[ -z "$m_user" ]] || dest+=(--dest-authfile "$dir/auth/auth.json")
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
    if ! skopeo --policy "$tmp/policy.json" copy --quiet --all --preserve-digests "${dest[@]}" \
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
      --dir | --port | --htpasswd | --token-port)
        [[ $# -ge 2 ]] || usage
        case $1 in
          --dir) dir=$2 ;;
          --port) port_arg=$2 ;;
          --token-port) token_port_arg=$2 ;;
          --htpasswd)
            opt_user=${2%%:*}
            if [[ "$2" == *:* ]]; then
              opt_password=${2#*:}
            else
              opt_password=${ROLLGATE_REGISTRY_PASSWORD:-}
            fi
            ;;
        esac
        shift 2
        ;;
      --tls)
        opt_tls=1
        shift
        ;;
      --token-auth)
        opt_token=1
        shift
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
  local name value
  for name in port_arg token_port_arg; do
    value=${!name}
    [[ -n "$value" ]] || continue
    if ! [[ "$value" =~ ^[0-9]{1,5}$ ]] || ((10#$value < 1 || 10#$value > 65535)); then
      die "--${name%_arg}: not a port number: $value"
    fi
    printf -v "$name" '%d' "$((10#$value))"
  done
  if ((opt_token)); then
    opt_auth=token
  elif [[ -n "$opt_user" ]]; then
    opt_auth=htpasswd
  fi
  if [[ $cmd != up && ($opt_tls == 1 || $opt_auth != none || -n "$token_port_arg") ]]; then
    die "--tls, --htpasswd, --token-auth and --token-port go with up (start reuses what up recorded)"
  fi
  [[ -z "$token_port_arg" || $opt_token == 1 ]] || die "--token-port goes with --token-auth"
  [[ "$dir" == /* ]] || dir=$PWD/$dir
  case $cmd in
    up) cmd_up ;;
    start) cmd_start ;;
    down | stop) cmd_down ;;
    status) cmd_status ;;
    push)
      [[ -n "$src" ]] || usage
      cmd_push "$src"
      ;;
    *) usage ;;
  esac
}

dir="" port="" port_arg="" token_port_arg=""
opt_tls=0 opt_token=0 opt_auth=none opt_user="" opt_password=""
m_tls=0 m_auth=none m_user="" m_token_port=""
main "$@"
