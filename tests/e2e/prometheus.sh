#!/usr/bin/env bash
# A real, throw-away Prometheus on loopback for the canary-analysis end-to-end tests
# (prometheus_analysis_e2e_test.cc). Debian's `prometheus` binary scrapes, every second, a static
# text exposition (www/metrics.txt) served by `python3 -m http.server`; both listen on free
# loopback ports and keep all state in one directory. No systemd, nothing outside DIR is touched.
#
#   prometheus.sh start [DIR] [--owner PID] [--tls]
#       Starts both (DIR defaults to a new temporary directory) and returns once a query for
#       rollgate_demo_errors_ratio returns a value. Prints, on stdout only:
#         PROMETHEUS_URL=http://127.0.0.1:PORT  (https:// with --tls)
#         METRICS_URL=http://127.0.0.1:PORT     (the scraped server; files under DIR/www)
#         PROMETHEUS_DIR=DIR
#       With --tls, Prometheus serves only HTTPS with basic auth, through its own
#       --web.config.file (tls_server_config, basic_auth_users with a bcrypt hash): a throw-away
#       CA and server certificate (127.0.0.1) are made with openssl, the user is "rollgate" with a
#       random password, and it also prints
#         PROMETHEUS_CA=DIR/tls/ca.crt
#         PROMETHEUS_USERNAME_FILE=DIR/tls/username
#         PROMETHEUS_PASSWORD_FILE=DIR/tls/password
#       With --owner, a watchdog stops everything once process PID has gone (a test killed by a
#       timeout leaves nothing running). Exits 1 with the logs on stderr when it cannot start.
#   prometheus.sh stop DIR
#       Stops what `start DIR` started and removes DIR. Idempotent.
#
# Environment: PROMETHEUS_BIN (default: prometheus on PATH), PYTHON (default: python3).
# Exposed series: rollgate_demo_errors_ratio 0.002, rollgate_demo_jobs_total 42.
set -euo pipefail

prog=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
PROMETHEUS_BIN=${PROMETHEUS_BIN:-$(command -v prometheus || echo /usr/bin/prometheus)}
PYTHON=${PYTHON:-python3}
marker=.rollgate-prometheus

die() {
  echo "prometheus.sh: $*" >&2
  exit 1
}

# free_port: a loopback TCP port that nothing listened on a moment ago.
free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# pid_of DIR NAME: the recorded pid of NAME when that process is alive and is the one we started
# (its start time, field 22 of /proc/PID/stat, matches the recorded one), so that a recycled pid is
# never signalled. The start time is fixed at fork, so this also holds between fork and exec, when
# the child's command line is still this script's. Zombies count as dead.
pid_of() {
  local dir=$1 name=$2 pid recorded
  [[ -f "$dir/$name.pid" ]] || return 1
  read -r pid recorded <"$dir/$name.pid" || true
  [[ "$pid" =~ ^[0-9]+$ && "$recorded" =~ ^[0-9]+$ ]] || return 1
  local stat
  stat=$(proc_stat_tail "$pid") || return 1
  local -a fields
  read -ra fields <<<"$stat"
  # After the ")" that ends the command name: field 3 (state) is index 0, field 22 is index 19.
  [[ ${#fields[@]} -ge 20 && "${fields[0]}" != Z && "${fields[19]}" == "$recorded" ]] || return 1
  echo "$pid"
}

# proc_stat_tail PID: /proc/PID/stat after the command name (which may hold spaces).
proc_stat_tail() {
  local stat
  stat=$(<"/proc/$1/stat") 2>/dev/null || return 1
  echo "${stat##*) }"
}

# record_pid DIR NAME PID: remember PID and its start time as NAME's.
record_pid() {
  local stat=""
  stat=$(proc_stat_tail "$3") || stat=""
  local -a fields
  read -ra fields <<<"$stat"
  echo "$3 ${fields[19]:-0}" >"$1/$2.pid"
}

# stop_all DIR NAME...: TERM to each, up to 10 s for all of them to exit, then KILL.
stop_all() {
  local dir=$1 name pid i
  shift
  local pids=()
  for name in "$@"; do
    if pid=$(pid_of "$dir" "$name"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
    rm -f "$dir/$name.pid"
  done
  for pid in "${pids[@]}"; do
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
}

cmd_stop() {
  local dir=${1:-}
  [[ -n "$dir" ]] || die "usage: prometheus.sh stop DIR"
  [[ -d "$dir" ]] || return 0
  [[ -f "$dir/$marker" ]] || die "$dir was not created by prometheus.sh start; not touching it"
  dir=$(cd "$dir" && pwd)
  # The watchdog calls stop itself: never signal the caller's own watchdog from within it.
  if [[ "${ROLLGATE_PROMETHEUS_WATCHDOG:-}" != 1 ]]; then stop_all "$dir" watchdog; fi
  stop_all "$dir" prometheus metrics
  rm -rf "$dir"
}

logs() {
  local dir=$1 f
  for f in metrics.log prometheus.log; do
    [[ -f "$dir/$f" ]] || continue
    echo "--- $f (last 30 lines)" >&2
    tail -n 30 "$dir/$f" >&2
  done
}

# curl with the TLS CA and basic credentials of a --tls Prometheus (none otherwise).
curl_opts=()

# query_has_value URL QUERY: true when the instant query returns at least one series.
query_has_value() {
  local out
  out=$(curl -sf "${curl_opts[@]}" --max-time 2 -G "$1/api/v1/query" --data-urlencode "query=$2" \
    2>/dev/null) || return 1
  [[ "$out" == *'"status":"success"'* && "$out" == *'"result":[{'* ]]
}

cmd_start() {
  local dir="" owner="" i attempt tls=""
  while (($#)); do
    case $1 in
      --tls)
        tls=1
        shift
        ;;
      --owner)
        owner=${2:-}
        shift 2 || die "--owner needs a pid"
        ;;
      -*) die "unknown flag $1" ;;
      *)
        dir=$1
        shift
        ;;
    esac
  done
  [[ -x "$PROMETHEUS_BIN" ]] || die "no prometheus binary at '$PROMETHEUS_BIN' (apt-get install prometheus)"
  command -v "$PYTHON" >/dev/null || die "no $PYTHON"
  command -v curl >/dev/null || die "no curl"
  if [[ -z "$dir" ]]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-prometheus.XXXXXX")
  else
    mkdir -p "$dir"
    [[ -z "$(ls -A "$dir")" || -f "$dir/$marker" ]] || die "$dir exists and is not empty"
  fi
  dir=$(cd "$dir" && pwd)
  touch "$dir/$marker"
  # From here on a failure stops whatever was started.
  trap 'logs "$dir"; cmd_stop "$dir"' ERR
  mkdir -p "$dir/www" "$dir/data"
  cat >"$dir/www/metrics.txt" <<'EOF'
# HELP rollgate_demo_errors_ratio Share of failed requests (static test fixture).
# TYPE rollgate_demo_errors_ratio gauge
rollgate_demo_errors_ratio 0.002
# HELP rollgate_demo_jobs_total Jobs processed (static test fixture).
# TYPE rollgate_demo_jobs_total counter
rollgate_demo_jobs_total 42
EOF

  # Created here: a background job's redirection happens in the child, possibly after we read.
  : >"$dir/metrics.log"
  : >"$dir/prometheus.log"
  # The scrape target: http.server binds port 0 itself and prints the port it got (no race).
  "$PYTHON" -u -m http.server 0 --bind 127.0.0.1 --directory "$dir/www" \
    >"$dir/metrics.log" 2>&1 </dev/null &
  record_pid "$dir" metrics $!
  local metrics_port=""
  for ((i = 0; i < 100; i++)); do
    metrics_port=$(sed -n 's/^Serving HTTP on [^ ]* port \([0-9]*\).*/\1/p' "$dir/metrics.log" || true)
    [[ -n "$metrics_port" ]] && break
    pid_of "$dir" metrics >/dev/null || false
    sleep 0.1
  done
  [[ -n "$metrics_port" ]] || false

  cat >"$dir/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: rollgate-demo
    metrics_path: /metrics.txt
    static_configs:
      - targets: ['127.0.0.1:$metrics_port']
EOF

  local scheme=http
  local -a web_config=()
  if [[ -n "$tls" ]]; then
    command -v openssl >/dev/null || die "no openssl"
    local t=$dir/tls
    mkdir -p "$t"
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=rollgate-e2e-ca \
      -keyout "$t/ca.key" -out "$t/ca.crt" >>"$dir/prometheus.log" 2>&1
    openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$t/server.key" \
      -out "$t/server.csr" >>"$dir/prometheus.log" 2>&1
    printf 'subjectAltName=IP:127.0.0.1\n' >"$t/san.ext"
    openssl x509 -req -in "$t/server.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial \
      -days 1 -extfile "$t/san.ext" -out "$t/server.crt" >>"$dir/prometheus.log" 2>&1
    printf 'rollgate' >"$t/username"
    head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$t/password"
    # Prometheus wants a bcrypt hash; libxcrypt (through Python's crypt) makes one.
    local hash
    hash=$("$PYTHON" -W ignore -c 'import crypt, sys
print(crypt.crypt(open(sys.argv[1]).read(), crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024)))' \
      "$t/password")
    [[ "$hash" == '$2'* ]] || { echo "prometheus.sh: cannot make a bcrypt hash" >&2 && false; }
    printf 'tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  rollgate: %s\n' \
      "$t/server.crt" "$t/server.key" "'$hash'" >"$t/web.yml"
    web_config=(--web.config.file="$t/web.yml")
    curl_opts=(--cacert "$t/ca.crt" -u "rollgate:$(<"$t/password")")
    scheme=https
  fi

  # Prometheus cannot report the port it bound, so pick one and retry if it was taken meanwhile.
  local prom_port="" url="" ready=""
  for ((attempt = 0; attempt < 3; attempt++)); do
    prom_port=$(free_port)
    url=$scheme://127.0.0.1:$prom_port
    "$PROMETHEUS_BIN" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
      --web.listen-address="127.0.0.1:$prom_port" --log.level=warn "${web_config[@]}" \
      >>"$dir/prometheus.log" 2>&1 </dev/null &
    record_pid "$dir" prometheus $!
    for ((i = 0; i < 300; i++)); do
      if curl -sf "${curl_opts[@]}" --max-time 2 "$url/-/ready" >/dev/null 2>&1; then
        ready=1
        break
      fi
      pid_of "$dir" prometheus >/dev/null || break # exited (port taken?): next attempt
      sleep 0.1
    done
    [[ -z "$ready" ]] || break
    stop_all "$dir" prometheus
  done
  [[ -n "$ready" ]] || { echo "prometheus.sh: prometheus did not become ready" >&2 && false; }

  # Ready is not enough: wait for the first scrape to be queryable.
  local have=""
  for ((i = 0; i < 300; i++)); do
    if query_has_value "$url" rollgate_demo_errors_ratio; then
      have=1
      break
    fi
    sleep 0.1
  done
  [[ -n "$have" ]] || { echo "prometheus.sh: no rollgate_demo_errors_ratio after 30 s" >&2 && false; }

  if [[ -n "$owner" ]]; then
    (
      trap - ERR
      export ROLLGATE_PROMETHEUS_WATCHDOG=1
      while kill -0 "$owner" 2>/dev/null && [[ -d "$dir" ]]; do sleep 1; done
      "$prog" stop "$dir"
    ) >/dev/null 2>&1 </dev/null &
    record_pid "$dir" watchdog $!
  fi
  trap - ERR
  echo "PROMETHEUS_URL=$url"
  echo "METRICS_URL=http://127.0.0.1:$metrics_port"
  echo "PROMETHEUS_DIR=$dir"
  if [[ -n "$tls" ]]; then
    echo "PROMETHEUS_CA=$dir/tls/ca.crt"
    echo "PROMETHEUS_USERNAME_FILE=$dir/tls/username"
    echo "PROMETHEUS_PASSWORD_FILE=$dir/tls/password"
  fi
}

case ${1:-} in
  start)
    shift
    cmd_start "$@"
    ;;
  stop)
    shift
    cmd_stop "$@"
    ;;
  *) die "usage: prometheus.sh start [DIR] [--owner PID] [--tls] | stop DIR" ;;
esac
