#!/usr/bin/env bash
# Local Kubernetes control plane for Rollgate's end-to-end tests and the demo: real etcd,
# kube-apiserver, kube-controller-manager and kube-scheduler, plus kwok for fake nodes and pod
# lifecycles (stages in hack/cluster/stages/, nodes in hack/cluster/nodes.yaml). Everything runs
# as plain processes on loopback ports, with certificates made by the openssl CLI, in one
# directory per cluster, so several clusters can run side by side.
#
#   hack/cluster.sh up [--dir DIR] [--real-node]   start a cluster (DIR default: mktemp -d
#                                    /tmp/rollgate-cluster.XXXXXX); --real-node also attaches a real
#                                    node (hack/real-node.sh up DIR: containerd + kubelet; root), and
#                                    the API server listens on the node bridge's 10.89.0.1 instead
#                                    of 127.0.0.1, so pods reach it;
#                                    stdout: only `export KUBECONFIG=...` and
#                                    `export ROLLGATE_CLUSTER_DIR=...`, so `eval "$(hack/cluster.sh up)"` works
#   hack/cluster.sh down DIR         stop the cluster's processes (and its real node: hack/real-node.sh
#                                    down) and remove DIR (idempotent)
#   hack/cluster.sh env DIR          print the export lines again (and ROLLGATE_REGISTRY with a real node)
#   hack/cluster.sh status DIR       which components are alive, whether the API server is ready
#   hack/cluster.sh stop-component DIR NAME    stop one component (SIGTERM, SIGKILL after 10 s)
#   hack/cluster.sh start-component DIR NAME   start a stopped kube-apiserver (same port, flags and
#                                    etcd; waits for its /readyz) or kwok again; no-op when alive
#   hack/cluster.sh restart-apiserver DIR [--down-seconds N]   stop, wait N s (default 0), start
#
# DIR layout: kubeconfig (admin, context rollgate-local), pki/, kubeconfigs/, etcd/ (data),
# logs/<component>.log, pids/<component>, cluster.env (API server URL, ports), kwok.yaml (the
# stages in use). With --real-node the API server binds to the gateway address of the real node's
# pod bridge (hack/real-node.sh bridge, before the API server starts; in its serving certificate's
# subjectAltName), and every kubeconfig names it; etcd stays on loopback.
# Environment: ROLLGATE_KEEP_FAILED_CLUSTER=1 keeps DIR (logs) when `up` fails.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=control-plane-versions.sh
source "$here/control-plane-versions.sh"

readonly MARKER=.rollgate-cluster
# In start order (stop_components stops them the other way round).
readonly COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
readonly SERVICE_CIDR=10.0.0.0/24 SERVICE_IP=10.0.0.1 POD_CIDR=10.244.0.0/16
readonly LOCK_FILE="${TMPDIR:-/tmp}/rollgate-cluster-ports.lock"

log() { printf '[cluster] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
usage() {
  sed -n '8,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- processes ----------------------------------------------------------------------------------

# pid_of DIR NAME: the recorded pid when that process is alive and is the one `start` launched
# (its start time, field 22 of /proc/PID/stat, matches the recorded one; guards against pid reuse);
# empty otherwise. Zombies count as dead. The start time is fixed at fork, so this also holds in
# the moment between fork and exec, when the command line is still this script's.
pid_of() {
  local dir=$1 name=$2 pid recorded
  [[ -f "$dir/pids/$name" ]] || return 0
  read -r pid recorded <"$dir/pids/$name" || true
  [[ "$pid" =~ ^[0-9]+$ && "$recorded" =~ ^[0-9]+$ ]] || return 0
  local stat
  stat=$(proc_stat_tail "$pid") || return 0
  local -a fields
  read -ra fields <<<"$stat"
  # After the ")" that ends the command name: field 3 (state) is index 0, field 22 is index 19.
  [[ ${#fields[@]} -ge 20 && "${fields[0]}" != Z && "${fields[19]}" == "$recorded" ]] || return 0
  echo "$pid"
}

# proc_stat_tail PID: /proc/PID/stat after the command name (which may hold spaces).
proc_stat_tail() {
  local stat
  stat=$(<"/proc/$1/stat") 2>/dev/null || return 1
  echo "${stat##*) }"
}

# stop_components DIR: stop the live components in three steps (kwok, scheduler and
# controller-manager; then the API server; then etcd, which the API server needs for a quick
# shutdown): SIGTERM, wait up to 10 s, then SIGKILL what is left.
stop_components() {
  local dir=$1
  stop_group "$dir" kwok kube-scheduler kube-controller-manager
  stop_group "$dir" kube-apiserver
  stop_group "$dir" etcd
}

stop_group() {
  local dir=$1 name pid pids=() deadline alive
  shift
  for name in "$@"; do
    pid=$(pid_of "$dir" "$name")
    if [[ -n "$pid" ]]; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$name")
    fi
  done
  [[ ${#pids[@]} -gt 0 ]] || return 0
  deadline=$(($(date +%s%N) + 10000000000))
  while (($(date +%s%N) < deadline)); do
    alive=0
    for name in "${pids[@]}"; do [[ -z "$(pid_of "$dir" "$name")" ]] || alive=1; done
    ((alive)) || return 0
    sleep 0.05
  done
  for name in "${pids[@]}"; do
    pid=$(pid_of "$dir" "$name")
    if [[ -n "$pid" ]]; then
      log "$name (pid $pid) still running 10 s after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

any_alive() {
  local dir=$1 name
  for name in "${COMPONENTS[@]}"; do [[ -z "$(pid_of "$dir" "$name")" ]] || return 0; done
  return 1
}

# --- up -----------------------------------------------------------------------------------------

# The API server's address (127.0.0.1, or the real node's bridge gateway) and port.
api_host=127.0.0.1 api_port=""
# Set while `up` runs; read by the EXIT trap.
cluster_dir="" up_done=0 failing="" started=() lock_held=0
# Set by start-component: append to the component's log instead of truncating it.
start_append=0

# start NAME CMD...: run CMD in its own session (so the caller's terminal or test runner signals
# do not reach it), with no inherited stdio and without the port lock's descriptor.
start() {
  local name=$1
  shift
  failing=$name
  if ((start_append)); then
    setsid "$@" </dev/null >>"$cluster_dir/logs/$name.log" 2>&1 8>&- &
  else
    setsid "$@" </dev/null >"$cluster_dir/logs/$name.log" 2>&1 8>&- &
  fi
  local pid=$!
  local stat=""
  stat=$(proc_stat_tail "$pid") || stat=""
  local -a fields
  read -ra fields <<<"$stat"
  echo "$pid ${fields[19]:-0}" >"$cluster_dir/pids/$name"
  started+=("$name")
}

# check_started: fail (naming the component) when a started component has exited.
check_started() {
  local name
  for name in "${started[@]}"; do
    if [[ -z "$(pid_of "$cluster_dir" "$name")" ]]; then
      failing=$name
      log "$name exited unexpectedly"
      return 1
    fi
  done
}

# wait_until COMPONENT TIMEOUT_S WHAT CMD...: poll CMD every 0.2 s; fail on timeout or when a
# started component dies.
wait_until() {
  local comp=$1 timeout=$2 what=$3
  shift 3
  local deadline=$((SECONDS + timeout))
  failing=$comp
  until "$@" >/dev/null 2>&1; do
    check_started || return 1
    if ((SECONDS >= deadline)); then
      failing=$comp
      log "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
}

# pick_ports N: N distinct loopback ports that can be bound now, below the ephemeral range (so
# outgoing connections do not take them). Called with the port lock held.
pick_ports() {
  local py=/usr/bin/python3
  [[ -x "$py" ]] || py=$(command -v python3) || die "python3 is required to pick ports"
  "$py" "$here/lib/free-ports.py" "$@"
}

port_open() { (: >"/dev/tcp/$api_host/$1") 2>/dev/null; }

# read_cluster_env DIR: api_host and api_port from DIR/cluster.env's API_SERVER.
read_cluster_env() {
  local url
  url=$(sed -n 's|^API_SERVER=https://||p' "$1/cluster.env" 2>/dev/null) || url=""
  api_host=${url%:*} api_port=${url##*:}
  [[ -n "$url" && "$api_port" =~ ^[0-9]+$ ]] || die "$1/cluster.env lacks API_SERVER"
}

write_openssl_config() {
  local san_extra=""
  [[ "$api_host" == 127.0.0.1 ]] || san_extra=" IP:$api_host,"
  cat >"$1" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1,$san_extra DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local, IP:$SERVICE_IP
[v3_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
}

# leaf_cert NAME SUBJECT EXTENSIONS: P-256 key + certificate signed by the cluster CA.
leaf_cert() {
  local pki=$cluster_dir/pki
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$pki/$1.key" -out "$pki/$1.crt" -subj "$2" -days 365 \
    -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -config "$pki/openssl.cnf" -extensions "$3" 2>/dev/null
}

generate_pki() {
  local pki=$cluster_dir/pki
  mkdir -p "$pki"
  write_openssl_config "$pki/openssl.cnf"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" -subj "/CN=rollgate-local-ca" -days 3650 \
    -config "$pki/openssl.cnf" -extensions v3_ca 2>/dev/null
  leaf_cert apiserver "/CN=kube-apiserver" v3_server
  leaf_cert admin "/O=system:masters/CN=rollgate-admin" v3_client
  # The controller-manager runs every controller under its own identity
  # (--use-service-account-credentials=false: starts in ~1 s instead of ~5 s), which the
  # bootstrap RBAC role system:kube-controller-manager does not cover; hence system:masters.
  leaf_cert controller-manager "/O=system:masters/CN=system:kube-controller-manager" v3_client
  leaf_cert scheduler "/CN=system:kube-scheduler" v3_client
  leaf_cert kwok "/O=system:masters/CN=kwok" v3_client
  # The API server's identity towards kubelets (logs, exec): only a real node has one.
  leaf_cert kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" v3_client
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$pki/sa.key" 2>/dev/null
  openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

# write_kubeconfig FILE USER CERT_NAME: kubeconfig with everything embedded.
write_kubeconfig() {
  local pki=$cluster_dir/pki
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: rollgate-local
  cluster:
    server: https://$api_host:$api_port
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 "$pki/$3.crt")
    client-key-data: $(base64 -w0 "$pki/$3.key")
contexts:
- name: rollgate-local
  context:
    cluster: rollgate-local
    user: $2
current-context: rollgate-local
EOF
}

api_get() { # PATH: GET on the API server as admin
  local pki=$cluster_dir/pki
  curl -fsS --max-time 5 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://$api_host:$api_port$1"
}

nodes_ready() { # every node Ready=True and untainted, and at least one node
  api_get /api/v1/nodes | jq -e '(.items | length) > 0 and all(.items[];
    ([.status.conditions[]? | select(.type == "Ready" and .status == "True")] | length) == 1
    and ((.spec.taints // []) | length) == 0)'
}

on_up_exit() {
  local rc=$?
  ((lock_held)) && { flock -u 8 2>/dev/null || true; }
  ((up_done)) && return 0
  [[ -n "$cluster_dir" && -d "$cluster_dir" ]] || exit "$rc"
  ((rc != 0)) || rc=1
  if [[ -n "$failing" && -f "$cluster_dir/logs/$failing.log" ]]; then
    log "cluster up failed in $failing; last 30 lines of $cluster_dir/logs/$failing.log:"
    tail -n 30 "$cluster_dir/logs/$failing.log" >&2 || true
  else
    log "cluster up failed${failing:+ in $failing}"
  fi
  if [[ -d "$cluster_dir/real-node" ]] && ! "$here/real-node.sh" down "$cluster_dir"; then
    stop_components "$cluster_dir"
    log "kept $cluster_dir: hack/real-node.sh down failed (run it again)"
    exit "$rc"
  fi
  stop_components "$cluster_dir"
  if [[ -f "$cluster_dir/real-node.bridge" ]] && ! "$here/real-node.sh" unbridge "$cluster_dir"; then
    log "kept $cluster_dir: hack/real-node.sh unbridge failed (run it again)"
    exit "$rc"
  fi
  if [[ "${ROLLGATE_KEEP_FAILED_CLUSTER:-0}" == 1 ]]; then
    log "kept $cluster_dir (ROLLGATE_KEEP_FAILED_CLUSTER=1)"
  else
    rm -rf "$cluster_dir"
  fi
  exit "$rc"
}

# start_apiserver BIN ETCD_CLIENT_PORT: start kube-apiserver for $cluster_dir on $api_port (used by
# `up` and by `start-component`, so a restarted API server has exactly the flags of the first).
start_apiserver() {
  local bin=$1 etcd_client=$2 pki=$cluster_dir/pki
  local -a kubelet_flags=()
  # Clusters started before the kubelet client certificate existed restart without it.
  if [[ -f "$pki/kubelet-client.crt" ]]; then
    kubelet_flags=(--kubelet-client-certificate="$pki/kubelet-client.crt"
      --kubelet-client-key="$pki/kubelet-client.key" --kubelet-preferred-address-types=InternalIP)
  fi
  start kube-apiserver "$bin/kube-apiserver" "${kubelet_flags[@]}" \
    --bind-address="$api_host" --advertise-address="$api_host" --secure-port="$api_port" \
    --etcd-servers="http://127.0.0.1:$etcd_client" \
    --client-ca-file="$pki/ca.crt" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=Node,RBAC \
    --allow-privileged=true \
    --enable-priority-and-fairness=false \
    --endpoint-reconciler-type=none \
    --disable-admission-plugins=TaintNodesByCondition \
    --profiling=false
}

cmd_up() {
  local dir="" real_node=0
  while [[ $# -gt 0 ]]; do
    case $1 in
      --real-node) real_node=1; shift ;;
      --dir) [[ $# -ge 2 ]] || usage; dir=$2; shift 2 ;;
      --dir=*) dir=${1#--dir=}; shift ;;
      *) usage ;;
    esac
  done
  local t0
  t0=$(now)

  for tool in openssl curl jq setsid flock base64; do
    command -v "$tool" >/dev/null || die "$tool is required"
  done
  "$here/build-control-plane.sh" >&2 || die "building the control plane binaries failed"
  local bin=$CONTROL_PLANE_BIN

  if [[ -z "$dir" ]]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-cluster.XXXXXX")
  else
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    if [[ -f "$dir/$MARKER" ]]; then
      any_alive "$dir" && die "a cluster is already running in $dir; run: $0 down $dir"
      if [[ -d "$dir/real-node" ]]; then
        "$here/real-node.sh" down "$dir" || die "hack/real-node.sh down $dir failed; not removing $dir"
      fi
      [[ ! -f "$dir/real-node.bridge" ]] || "$here/real-node.sh" unbridge "$dir" || die "hack/real-node.sh unbridge $dir failed; not removing $dir"
      rm -rf "${dir:?}"
      mkdir -p "$dir"
    elif [[ -n "$(ls -A "$dir")" ]]; then
      die "$dir exists, is not empty and is not a cluster directory"
    fi
  fi
  cluster_dir=$dir
  trap on_up_exit EXIT
  # Interrupted (Ctrl-C, a test runner's SIGTERM): exit through on_up_exit, which tears down.
  trap 'failing=""; log "interrupted"; exit 130' INT
  trap 'failing=""; log "terminated"; exit 143' TERM HUP
  touch "$dir/$MARKER"
  mkdir -p "$dir/logs" "$dir/pids" "$dir/kubeconfigs"
  mkdir -m 700 "$dir/etcd"
  chmod 700 "$dir"
  log "cluster dir: $dir"

  if ((real_node)); then
    # The real node's bridge first, with the address the API server will listen on.
    failing=""
    api_host=$("$here/real-node.sh" bridge "$dir") || { log "the real node's bridge could not be made"; exit 1; }
  fi

  failing=pki
  generate_pki
  local pki=$dir/pki kc=$dir/kubeconfigs

  # Ports are chosen and bound under a machine-wide lock, so clusters started at the same time
  # cannot pick the same port; the lock is released once etcd and the API server listen.
  exec 8>"$LOCK_FILE"
  flock 8
  lock_held=1
  local etcd_client etcd_peer
  read -r etcd_client etcd_peer api_port < <(pick_ports 3)
  [[ "$api_host" == 127.0.0.1 ]] || api_port=$(pick_ports 1 "$api_host")
  cat >"$dir/cluster.env" <<EOF
API_SERVER=https://$api_host:$api_port
ETCD_CLIENT_PORT=$etcd_client
ETCD_PEER_PORT=$etcd_peer
EOF
  local old_umask
  old_umask=$(umask)
  umask 077
  write_kubeconfig "$dir/kubeconfig" rollgate-admin admin
  write_kubeconfig "$kc/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
  write_kubeconfig "$kc/scheduler.kubeconfig" system:kube-scheduler scheduler
  write_kubeconfig "$kc/kwok.kubeconfig" kwok kwok
  umask "$old_umask"

  start etcd "$bin/etcd" --name=rollgate --data-dir="$dir/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_client" \
    --advertise-client-urls="http://127.0.0.1:$etcd_client" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer" \
    --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer" \
    --initial-cluster="rollgate=http://127.0.0.1:$etcd_peer" \
    --unsafe-no-fsync --log-level=warn
  wait_until etcd 30 "etcd to be healthy" curl -fsS --max-time 2 "http://127.0.0.1:$etcd_client/health"
  log "etcd healthy at $(elapsed "$t0")s"

  start_apiserver "$bin" "$etcd_client"
  wait_until kube-apiserver 60 "the API server to listen" port_open "$api_port"
  flock -u 8
  exec 8>&-
  lock_held=0

  wait_until kube-apiserver 90 "the API server's /readyz" api_get /readyz
  log "API server https://$api_host:$api_port ready at $(elapsed "$t0")s"

  start kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig="$kc/controller-manager.kubeconfig" \
    --leader-elect=false --secure-port=0 \
    --controllers='*' \
    --use-service-account-credentials=false \
    --service-account-private-key-file="$pki/sa.key" \
    --root-ca-file="$pki/ca.crt" \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --profiling=false
  start kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig="$kc/scheduler.kubeconfig" \
    --leader-elect=false --secure-port=0 --profiling=false

  local f first=1
  : >"$dir/kwok.yaml"
  for f in "$here"/cluster/stages/*.yaml; do
    ((first)) || echo '---' >>"$dir/kwok.yaml"
    first=0
    cat "$f" >>"$dir/kwok.yaml"
  done
  start_kwok "$bin" "$dir"

  failing=kube-apiserver
  "$bin/kubectl" --kubeconfig="$dir/kubeconfig" create -f "$here/cluster/nodes.yaml" >&2
  wait_until kwok 60 "the nodes to be Ready and untainted" nodes_ready
  log "nodes Ready at $(elapsed "$t0")s"
  wait_until kube-controller-manager 60 "the default service account" \
    api_get /api/v1/namespaces/default/serviceaccounts/default
  check_started

  if ((real_node)); then
    failing=""
    "$here/real-node.sh" up "$dir" >/dev/null || { log "the real node did not come up"; exit 1; }
  fi

  up_done=1
  trap - EXIT INT TERM HUP
  log "cluster up in $(elapsed "$t0")s: $dir"
  cmd_env "$dir"
}

# --- down / env / status ------------------------------------------------------------------------

cmd_down() {
  [[ $# -eq 1 ]] || usage
  local dir=$1 t0
  t0=$(now)
  if [[ ! -e "$dir" ]]; then
    log "$dir does not exist; nothing to do"
    return 0
  fi
  dir=$(cd "$dir" && pwd -P)
  [[ -f "$dir/$MARKER" ]] || die "$dir is not a cluster directory (no $MARKER); not touching it"
  if [[ -d "$dir/real-node" ]]; then
    "$here/real-node.sh" down "$dir" || die "hack/real-node.sh down $dir failed; not removing $dir"
  fi
  stop_components "$dir"
  # The real node's bridge, on which the API server listened (hack/real-node.sh bridge).
  if [[ -f "$dir/real-node.bridge" ]]; then
    "$here/real-node.sh" unbridge "$dir" || die "hack/real-node.sh unbridge $dir failed; not removing $dir"
  fi
  rm -rf "$dir"
  log "cluster down in $(elapsed "$t0")s: $dir"
}

cmd_env() {
  [[ $# -eq 1 ]] || usage
  local dir
  dir=$(cd "$1" && pwd -P) || die "no such directory: $1"
  [[ -f "$dir/kubeconfig" ]] || die "$dir has no kubeconfig"
  printf 'export KUBECONFIG=%q\n' "$dir/kubeconfig"
  printf 'export ROLLGATE_CLUSTER_DIR=%q\n' "$dir"
  # A real node (--real-node) brings its own registry.
  if [[ -f "$dir/real-node/real-node.env" ]]; then
    printf 'export ROLLGATE_REGISTRY=%q\n' "$(sed -n 's/^REGISTRY=//p' "$dir/real-node/real-node.env")"
  fi
}

cmd_status() {
  [[ $# -eq 1 ]] || usage
  local dir name pid rc=0
  dir=$(cd "$1" && pwd -P) || die "no such directory: $1"
  [[ -f "$dir/$MARKER" ]] || die "$dir is not a cluster directory"
  for name in "${COMPONENTS[@]}"; do
    pid=$(pid_of "$dir" "$name")
    if [[ -n "$pid" ]]; then
      printf '%-24s alive (pid %s)\n' "$name" "$pid"
    else
      printf '%-24s dead\n' "$name"
      rc=1
    fi
  done
  cluster_dir=$dir
  read_cluster_env "$dir"
  if api_get /readyz >/dev/null 2>&1; then
    printf '%-24s ready (https://%s:%s)\n' apiserver-readyz "$api_host" "$api_port"
  else
    printf '%-24s not ready\n' apiserver-readyz
    rc=1
  fi
  return "$rc"
}

# start_kwok BIN DIR: kwok for the fake nodes, with DIR/kwok.yaml (written by up). HOME points at
# the cluster dir so that a user's ~/.kwok/kwok.yaml is not loaded as well.
start_kwok() {
  local bin=$1 dir=$2
  start kwok env HOME="$dir" "$bin/kwok" \
    --kubeconfig="$dir/kubeconfigs/kwok.kubeconfig" \
    --config="$dir/kwok.yaml" \
    --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --cidr="$POD_CIDR" \
    --node-lease-duration-seconds=40
}

# --- stop-component / start-component / restart-apiserver ---------------------------------------
# Fault injection for the end-to-end tests: stop the API server (etcd and the other components
# keep running) and start it again with the same data, port and flags.

# cluster_dir_arg DIR: DIR as an absolute path; dies unless it is a cluster directory.
cluster_dir_arg() {
  local dir
  dir=$(cd "$1" 2>/dev/null && pwd -P) || die "no such directory: $1"
  [[ -f "$dir/$MARKER" ]] || die "$dir is not a cluster directory (no $MARKER)"
  echo "$dir"
}

known_component() {
  local name
  for name in "${COMPONENTS[@]}"; do [[ "$name" != "$1" ]] || return 0; done
  die "unknown component $1 (one of: ${COMPONENTS[*]})"
}

cmd_stop_component() {
  [[ $# -eq 2 ]] || usage
  local dir name=$2 pid t0
  dir=$(cluster_dir_arg "$1")
  known_component "$name"
  t0=$(now)
  pid=$(pid_of "$dir" "$name")
  if [[ -z "$pid" ]]; then
    log "$name is not running; nothing to do"
    return 0
  fi
  stop_group "$dir" "$name"
  log "$name (pid $pid) stopped in $(elapsed "$t0")s"
}

cmd_start_component() {
  [[ $# -eq 2 ]] || usage
  local dir name=$2 pid t0 etcd_client
  dir=$(cluster_dir_arg "$1")
  known_component "$name"
  [[ "$name" == kube-apiserver || "$name" == kwok ]] ||
    die "start-component restarts kube-apiserver and kwok only; use down and up for the others"
  t0=$(now)
  cluster_dir=$dir
  read_cluster_env "$dir"
  if [[ "$name" == kwok ]]; then
    pid=$(pid_of "$dir" kwok)
    if [[ -n "$pid" ]]; then
      log "kwok already running (pid $pid)"
      return 0
    fi
    [[ -n "$(pid_of "$dir" kube-apiserver)" ]] || die "the API server is not running in $dir"
    printf '=== cluster.sh start-component at %s\n' "$(date -u +%FT%TZ)" >>"$dir/logs/kwok.log"
    start_append=1
    start_kwok "$CONTROL_PLANE_BIN" "$dir"
    log "kwok started (pid $(pid_of "$dir" kwok)) in $(elapsed "$t0")s"
    return 0
  fi
  etcd_client=$(sed -n 's|^ETCD_CLIENT_PORT=||p' "$dir/cluster.env")
  [[ -n "$api_port" && -n "$etcd_client" ]] || die "$dir/cluster.env lacks the ports"
  pid=$(pid_of "$dir" "$name")
  if [[ -n "$pid" ]]; then
    log "$name already running (pid $pid)"
  else
    [[ -n "$(pid_of "$dir" etcd)" ]] || die "etcd is not running in $dir; run: $0 down $dir"
    printf '=== cluster.sh start-component at %s\n' "$(date -u +%FT%TZ)" >>"$dir/logs/$name.log"
    start_append=1
    start_apiserver "$CONTROL_PLANE_BIN" "$etcd_client"
    log "$name started (pid $(pid_of "$dir" "$name")) on port $api_port"
  fi
  if ! wait_until kube-apiserver 90 "the API server's /readyz" api_get /readyz; then
    log "last 30 lines of $dir/logs/$name.log:"
    tail -n 30 "$dir/logs/$name.log" >&2 || true
    exit 1
  fi
  log "API server https://$api_host:$api_port ready in $(elapsed "$t0")s"
}

cmd_restart_apiserver() {
  [[ $# -ge 1 ]] || usage
  local dir=$1 down=0
  shift
  while [[ $# -gt 0 ]]; do
    case $1 in
      --down-seconds) [[ $# -ge 2 ]] || usage; down=$2; shift 2 ;;
      --down-seconds=*) down=${1#--down-seconds=}; shift ;;
      *) usage ;;
    esac
  done
  [[ "$down" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--down-seconds wants a number of seconds, got $down"
  cmd_stop_component "$dir" kube-apiserver
  log "API server down; waiting ${down}s"
  sleep "$down"
  cmd_start_component "$dir" kube-apiserver
}

main() {
  [[ $# -ge 1 ]] || usage
  local cmd=$1
  shift
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    env) cmd_env "$@" ;;
    status) cmd_status "$@" ;;
    stop-component) cmd_stop_component "$@" ;;
    start-component) cmd_start_component "$@" ;;
    restart-apiserver) cmd_restart_apiserver "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
