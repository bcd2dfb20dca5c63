#!/usr/bin/env bash
# A real node next to the local control plane (issue 15): a private containerd (Debian's 1.6, runc)
# and a kubelet built from the control plane's pinned modules, joined to a cluster that
# hack/cluster.sh started. The node, rollgate-real-0, carries the label rollgate.io/real-node=true
# and the taint rollgate.io/real-node=true:NoSchedule, so only pods that tolerate the taint land on
# it (and kwok's fake nodes lack the label, so a pod selecting it lands nowhere else).
#
#   hack/real-node.sh up [--registry-port P] [--kubelet-port P] DIR
#                                attach a real node to the cluster in DIR (hack/cluster.sh up --dir DIR)
#                                and wait until it is Ready (60 s at most); stdout: only
#                                `export ROLLGATE_REGISTRY=127.0.0.1:PORT` (the node's registry)
#   hack/real-node.sh down DIR   stop the kubelet, the pods, containerd and the registry and undo
#                                every host change (safe to run twice; hack/cluster.sh down runs it)
#   hack/real-node.sh status DIR
#   hack/real-node.sh bridge DIR create the bridge rollgate0 with the pod network's gateway address
#                                (10.89.0.1/24) before the API server starts, so it can listen there
#                                (hack/cluster.sh up --real-node); stdout: the address. up adopts
#                                it; down keeps it (the API server still listens on it)
#   hack/real-node.sh unbridge DIR   remove that bridge (hack/cluster.sh down, after the API server)
#
# Everything lives in DIR/real-node: containerd's config, root, state and socket; the kubelet's
# config, kubeconfig, root dir and pod logs; the CNI config and IPAM data; the registry's storage
# (hack/registry.sh on a free port, recorded in real-node.env); the sandbox image (Debian's static
# catatonit as an OCI image); logs/, pids/ and the host state recorded before the kubelet started
# (sysctls, which KUBE-* iptables chains and kubepods cgroups already existed), which `down`
# restores. Needs root, cgroup v1 or v2, and the Debian packages containerd, runc, catatonit,
# containernetworking-plugins, docker-registry, skopeo, umoci, iptables; the kubelet from
# `hack/build-control-plane.sh --with-kubelet` (built on demand).
#
# A separate script rather than a flag of cluster.sh: it needs root and changes host state that
# the plain control plane never touches, so the kwok-only clusters every other test starts stay
# exactly as they were; `hack/cluster.sh up --real-node` calls it, and `hack/cluster.sh down`
# calls its down whenever DIR/real-node exists.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=control-plane-versions.sh
source "$here/control-plane-versions.sh"

readonly NODE_NAME=rollgate-real-0
readonly NODE_LABEL=rollgate.io/real-node
readonly BRIDGE=rollgate0
readonly POD_SUBNET=10.89.0.0/24
# The bridge's address: the pods' default gateway (host-local's default, the subnet's first
# address), and the address the API server listens on with `hack/cluster.sh up --real-node`.
readonly GATEWAY=10.89.0.1 GATEWAY_PREFIX=24 BRIDGE_MARKER=real-node.bridge
readonly SANDBOX_REPO=rollgate-pause SANDBOX_TAG=catatonit
readonly READY_TIMEOUT=${ROLLGATE_REAL_NODE_TIMEOUT:-60}
readonly SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward)
readonly HOST_DIRS=(/run/containerd/s /run/containerd /run/netns /var/log/containers /var/lib/cni/results
  /var/lib/cni /var/lib/kubelet/device-plugins /var/lib/kubelet)
readonly TOOLS=(containerd ctr runc catatonit umoci skopeo iptables ip openssl curl jq setsid flock
  mountpoint /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback)

log() { printf '[real-node] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
usage() {
  sed -n '8,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# --- processes (the same pid-file format as hack/cluster.sh: "PID STARTTIME") -------------------

pid_of() { # NAME: the recorded pid when that process is alive and is the one started here
  local f=$rn/pids/$1 pid recorded stat
  [[ -f "$f" ]] || return 0
  read -r pid recorded <"$f" || true
  [[ "$pid" =~ ^[0-9]+$ && "$recorded" =~ ^[0-9]+$ ]] || return 0
  stat=$(<"/proc/$pid/stat") 2>/dev/null || return 0
  local -a fields
  read -ra fields <<<"${stat##*) }"
  [[ ${#fields[@]} -ge 20 && "${fields[0]}" != Z && "${fields[19]}" == "$recorded" ]] || return 0
  echo "$pid"
}

start() { # NAME CMD...: in its own session, no inherited stdio
  local name=$1 stat
  shift
  setsid "$@" </dev/null >"$rn/logs/$name.log" 2>&1 8>&- 9>&- &
  local pid=$!
  stat=$(<"/proc/$pid/stat") 2>/dev/null || stat=""
  local -a fields
  read -ra fields <<<"${stat##*) }"
  echo "$pid ${fields[19]:-0}" >"$rn/pids/$name"
}

stop() { # NAME [SECONDS]: SIGTERM, SIGKILL after SECONDS (default 10)
  local name=$1 secs=${2:-10} pid deadline
  pid=$(pid_of "$name")
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + secs))
  while [[ -n "$(pid_of "$name")" ]] && ((SECONDS < deadline)); do sleep 0.1; done
  if [[ -n "$(pid_of "$name")" ]]; then
    log "$name (pid $pid) still running ${secs} s after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while [[ -n "$(pid_of "$name")" ]]; do sleep 0.1; done
  fi
}

port_open() { (: >"/dev/tcp/$1/$2") 2>/dev/null; }

pick_ports() { # N: free ports below the ephemeral range, on every address (the kubelet's)
  python3 "$here/lib/free-ports.py" "$1" 0.0.0.0
}

kubectl_() { "$CONTROL_PLANE_BIN/kubectl" --kubeconfig="$dir/kubeconfig" --request-timeout=10s "$@"; }

# --- up -------------------------------------------------------------------------------------------

failing="" up_done=0

on_up_exit() {
  local rc=$?
  ((up_done)) && return 0
  ((rc != 0)) || rc=1
  # Tear down quietly: the one line that says why was fail()'s.
  cmd_down_inner >/dev/null 2>&1 || cmd_down_inner || true
  exit "$rc"
}

# fail MESSAGE: one line saying what failed and naming the log, then exit (the EXIT trap tears
# down). The logs are copied out of DIR first (down removes DIR/real-node), to
# ${TMPDIR:-/tmp}/rollgate-real-node-logs.XXXXXX.
fail() {
  local kept="" where=""
  if [[ -n "$failing" && -f "$rn/logs/$failing.log" ]] &&
    kept=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-real-node-logs.XXXXXX"); then
    cp -a "$rn/logs/." "$kept/" 2>/dev/null || true
    [[ -f "$rn/registry/registry.log" ]] && cp "$rn/registry/registry.log" "$kept/registry-server.log" 2>/dev/null
    where="; log: $kept/$failing.log"
  fi
  log "error: $*$where"
  exit 1
}

write_containerd_config() {
  local reg=$1
  mkdir -p "$rn/containerd/certs.d/$reg" "$rn/cni/net.d" "$rn/cni/ipam"
  cat >"$rn/containerd/config.toml" <<EOF
# Written by hack/real-node.sh up.
version = 2
root = "$rn/containerd/root"
state = "$rn/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$rn/containerd.sock"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$rn/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$reg/$SANDBOX_REPO:$SANDBOX_TAG"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$rn/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$rn/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$rn/containerd/certs.d"
EOF
  cat >"$rn/containerd/certs.d/$reg/hosts.toml" <<EOF
server = "http://$reg"
[host."http://$reg"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
EOF
  cat >"$rn/cni/net.d/10-rollgate.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "rollgate-real",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_SUBNET"}]],
        "dataDir": "$rn/cni/ipam"
      }
    }
  ]
}
EOF
}

# build_sandbox_image ARCHIVE: Debian's static catatonit as an OCI image (catatonit -P: pause).
build_sandbox_image() {
  local archive=$1 tmp=$rn/tmp/sandbox
  mkdir -p "$tmp/stage"
  install -m 0755 "$(command -v catatonit)" "$tmp/stage/catatonit"
  tar --create --file "$tmp/layer.tar" --directory "$tmp/stage" --sort=name --owner=0 --group=0 \
    --numeric-owner --mtime=@0 catatonit
  local image=$tmp/layout:$SANDBOX_TAG
  umoci init --layout "$tmp/layout"
  umoci new --image "$image"
  umoci raw add-layer --image "$image" "$tmp/layer.tar"
  umoci config --image "$image" --no-history --config.entrypoint /catatonit --config.entrypoint -P \
    --config.user 65535:65535 --os linux --architecture "$(dpkg --print-architecture 2>/dev/null || echo amd64)"
  umoci gc --layout "$tmp/layout"
  tar --create --file "$archive" --directory "$tmp/layout" oci-layout index.json blobs
}

record_host_state() {
  local s tbl
  : >"$rn/host/sysctls"
  for s in "${SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s")" >>"$rn/host/sysctls"; done
  : >"$rn/host/kube-chains"
  for tbl in filter nat mangle; do
    iptables -w 5 -t "$tbl" -S 2>/dev/null | awk -v t="$tbl" '$1 == "-N" && $2 ~ /^KUBE-/ { print t, $2 }' >>"$rn/host/kube-chains" || true
    ip6tables -w 5 -t "$tbl" -S 2>/dev/null | awk -v t="$tbl" '$1 == "-N" && $2 ~ /^KUBE-/ { print "ip6", t, $2 }' >>"$rn/host/kube-chains" || true
  done
  : >"$rn/host/kubepods"
  local c
  for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d "$c" ]] && echo "$c" >>"$rn/host/kubepods"
  done
  # A bridge made by `bridge` is the cluster's; any other one was there before.
  if [[ ! -f "$dir/$BRIDGE_MARKER" ]] && ip link show "$BRIDGE" >/dev/null 2>&1; then
    echo yes >"$rn/host/bridge-existed"
  fi
  # Host directories containerd, CNI and the kubelet create outside DIR (shim sockets, network
  # namespaces, log links, the CNI result cache): removed by down when absent now and empty then.
  : >"$rn/host/new-dirs"
  local d
  for d in "${HOST_DIRS[@]}"; do [[ -e "$d" ]] || echo "$d" >>"$rn/host/new-dirs"; done
}

node_ready() {
  kubectl_ get node "$NODE_NAME" -o json 2>/dev/null |
    jq -e '[.status.conditions[]? | select(.type == "Ready" and .status == "True")] | length == 1' >/dev/null
}

cmd_up() {
  local reg_port_arg="" kubelet_port_arg="" arg
  local -a args=()
  while (($#)); do
    case $1 in
      --registry-port) [[ $# -ge 2 ]] || usage; reg_port_arg=$2; shift 2 ;;
      --kubelet-port) [[ $# -ge 2 ]] || usage; kubelet_port_arg=$2; shift 2 ;;
      -*) usage ;;
      *) args+=("$1"); shift ;;
    esac
  done
  set -- "${args[@]}"
  [[ $# -eq 1 ]] || usage
  for arg in "$reg_port_arg" "$kubelet_port_arg"; do
    [[ -z "$arg" || "$arg" =~ ^[0-9]{1,5}$ ]] || die "not a port number: $arg"
  done
  local t0=$SECONDS t_start
  t_start=$(date +%s.%N)
  [[ $EUID -eq 0 ]] || die "must run as root (containerd, runc, the kubelet)"
  dir=$(cd "$1" 2>/dev/null && pwd -P) || die "no such directory: $1"
  [[ -f "$dir/.rollgate-cluster" && -f "$dir/cluster.env" ]] ||
    die "$dir is not a hack/cluster.sh cluster directory"
  rn=$dir/real-node
  local tool
  for tool in "${TOOLS[@]}"; do
    command -v "$tool" >/dev/null || die "missing tool: $tool (apt-get install containerd runc catatonit containernetworking-plugins skopeo umoci iptables iproute2)"
  done
  [[ -f "$dir/pki/ca.key" ]] || die "$dir/pki/ca.key missing"
  if [[ -d "$rn" ]]; then
    [[ -z "$(pid_of containerd)$(pid_of kubelet)" ]] || die "a real node already runs in $dir; run: $0 down $dir"
    cmd_down_inner
  fi
  # The bridge made by `bridge` for this cluster (its API server listens on it) is adopted.
  if [[ -f "$dir/$BRIDGE_MARKER" ]]; then
    ip -4 -o addr show dev "$BRIDGE" 2>/dev/null | grep -qF " $GATEWAY/$GATEWAY_PREFIX " ||
      die "the bridge $BRIDGE made for $dir is gone or lacks $GATEWAY/$GATEWAY_PREFIX"
  elif ip link show "$BRIDGE" >/dev/null 2>&1; then
    die "the bridge $BRIDGE exists: another real node runs on this machine (one at a time)"
  fi
  if [[ ! -x "$CONTROL_PLANE_BIN/kubelet" ]]; then
    log "building the kubelet (hack/build-control-plane.sh --with-kubelet) ..."
    "$here/build-control-plane.sh" --with-kubelet >&2 || die "building the kubelet failed"
  fi
  mkdir -p "$rn"/{logs,pids,host,tmp,kubelet,pod-logs,containerd,runc}
  chmod 700 "$rn"
  trap on_up_exit EXIT
  trap 'failing=""; log "interrupted"; exit 130' INT
  trap 'failing=""; log "terminated"; exit 143' TERM HUP

  local api_server node_ip kubelet_port healthz_port reg_port
  api_server=$(sed -n 's|^API_SERVER=||p' "$dir/cluster.env")
  node_ip=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
  [[ -n "$node_ip" ]] || node_ip=$(ip -4 -o addr show scope global | awk '{ sub(/\/.*/, "", $4); print $4; exit }')
  [[ -n "$node_ip" ]] || fail "no non-loopback IPv4 address for the node (the kubelet refuses 127.0.0.1)"
  read -r kubelet_port healthz_port reg_port < <(pick_ports 3)
  kubelet_port=${kubelet_port_arg:-$kubelet_port}
  reg_port=${reg_port_arg:-$reg_port}
  ! port_open "$node_ip" "$kubelet_port" || fail "port $kubelet_port (the kubelet's, on $node_ip) is in use"
  ! port_open 127.0.0.1 "$reg_port" || fail "port $reg_port (the registry's, on 127.0.0.1) is in use"
  cat >"$rn/real-node.env" <<EOF
NODE_NAME=$NODE_NAME
NODE_IP=$node_ip
KUBELET_PORT=$kubelet_port
KUBELET_HEALTHZ_PORT=$healthz_port
REGISTRY=127.0.0.1:$reg_port
CONTAINERD_SOCKET=$rn/containerd.sock
EOF

  # The registry (this node's own, on a free port) and the sandbox image in it.
  failing=registry
  local reg=127.0.0.1:$reg_port
  bash "$here/registry.sh" up --dir "$rn/registry" --port "$reg_port" >/dev/null 2>"$rn/logs/registry.log" ||
    fail "the registry did not start: $(tail -n 1 "$rn/logs/registry.log" | sed 's/^\[registry\] error: //; s/; log: .*//')"
  failing=sandbox-image
  {
    build_sandbox_image "$rn/tmp/sandbox.tar" &&
      echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$rn/tmp/policy.json" &&
      skopeo --policy "$rn/tmp/policy.json" copy --quiet --dest-tls-verify=false \
        "oci-archive:$rn/tmp/sandbox.tar:$SANDBOX_TAG" "docker://$reg/$SANDBOX_REPO:$SANDBOX_TAG"
  } >"$rn/logs/sandbox-image.log" 2>&1 || fail "building or pushing the sandbox image failed"

  # containerd.
  failing=containerd
  write_containerd_config "$reg"
  record_host_state
  start containerd containerd --config "$rn/containerd/config.toml"
  local deadline=$((SECONDS + 20))
  until ctr --address "$rn/containerd.sock" version >/dev/null 2>&1; do
    [[ -n "$(pid_of containerd)" ]] || fail "containerd exited"
    ((SECONDS < deadline)) || fail "containerd did not answer on $rn/containerd.sock within 20 s"
    sleep 0.2
  done

  # The kubelet's identity: a client certificate signed by the cluster CA.
  failing=kubelet
  local pki=$dir/pki
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$rn/kubelet-client.key" -out "$rn/kubelet-client.crt" \
    -subj "/O=system:nodes/CN=system:node:$NODE_NAME" -days 365 \
    -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -config "$pki/openssl.cnf" -extensions v3_client 2>/dev/null ||
    fail "openssl could not sign the kubelet's client certificate"
  (
    umask 077
    cat >"$rn/kubelet.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: rollgate-local
  cluster:
    server: $api_server
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: system:node:$NODE_NAME
  user:
    client-certificate-data: $(base64 -w0 "$rn/kubelet-client.crt")
    client-key-data: $(base64 -w0 "$rn/kubelet-client.key")
contexts:
- name: rollgate-local
  context: {cluster: rollgate-local, user: "system:node:$NODE_NAME"}
current-context: rollgate-local
EOF
  )
  cat >"$rn/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
address: $node_ip
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz_port
containerRuntimeEndpoint: unix://$rn/containerd.sock
podLogsDir: $rn/pod-logs
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization:
  mode: Webhook
registerWithTaints:
- {key: $NODE_LABEL, value: "true", effect: NoSchedule}
clusterDomain: cluster.local
maxPods: 20
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
nodeStatusUpdateFrequency: 4s
syncFrequency: 10s
fileCheckFrequency: 10s
EOF
  start kubelet "$CONTROL_PLANE_BIN/kubelet" --config="$rn/kubelet.yaml" \
    --kubeconfig="$rn/kubelet.kubeconfig" --root-dir="$rn/kubelet" --cert-dir="$rn/kubelet/pki" \
    --hostname-override="$NODE_NAME" --node-ip="$node_ip" \
    --node-labels="$NODE_LABEL=true" --v=1
  deadline=$((t0 + READY_TIMEOUT))
  local t_kubelet=$SECONDS
  until node_ready; do
    [[ -n "$(pid_of kubelet)" ]] || fail "the kubelet exited"
    [[ -n "$(pid_of containerd)" ]] || { failing=containerd; fail "containerd exited"; }
    if ((SECONDS >= deadline)); then
      if kubectl_ get node "$NODE_NAME" >/dev/null 2>&1; then
        fail "node $NODE_NAME registered but not Ready within ${READY_TIMEOUT}s"
      fi
      fail "the kubelet did not register node $NODE_NAME within ${READY_TIMEOUT}s"
    fi
    sleep 0.5
  done
  local ready_s
  ready_s=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  echo "$ready_s" >"$rn/ready-seconds"
  up_done=1
  trap - EXIT INT TERM HUP
  log "node $NODE_NAME Ready ${ready_s}s after up ($((SECONDS - t_kubelet))s after the kubelet started); registry $reg"
  echo "export ROLLGATE_REGISTRY=$reg"
}

# --- down -----------------------------------------------------------------------------------------

# umount_under DIR: every mount point below DIR, deepest first.
umount_under() {
  local base=$1 m
  [[ -d "$base" ]] || return 0
  local -a mounts
  mapfile -t mounts < <(awk -v b="$base/" 'index($5, b) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  for m in "${mounts[@]}"; do
    m=$(printf '%b' "$m") # mountinfo escapes spaces as \040
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not umount $m"
  done
}

# ctrd ARGS: ctr against this node's containerd, namespace k8s.io.
ctrd() { timeout 20 ctr --address "$rn/containerd.sock" -n k8s.io "$@"; }

# remove_kube_chains: the KUBE-* chains the kubelet added to iptables and ip6tables (those not
# recorded in host/kube-chains before it started): the rules elsewhere that jump to each, then its
# own rules, then the chains.
remove_kube_chains() {
  local tool prefix tbl chain line
  # Without the record (up failed before the kubelet started) there is nothing of ours to remove.
  [[ -f "$rn/host/kube-chains" ]] || return 0
  for tool in iptables ip6tables; do
    command -v "$tool" >/dev/null || continue
    prefix=""
    [[ $tool == ip6tables ]] && prefix="ip6 "
    for tbl in filter nat mangle; do
      local -a chains=() ours=()
      mapfile -t chains < <("$tool" -w 5 -t "$tbl" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ { print $2 }')
      for chain in "${chains[@]}"; do
        grep -qx "$prefix$tbl $chain" "$rn/host/kube-chains" 2>/dev/null || ours+=("$chain")
      done
      for chain in "${ours[@]}"; do
        while read -r line; do
          [[ -n "$line" ]] || continue
          eval "$tool -w 5 -t $tbl ${line/-A /-D }" 2>/dev/null || true
        done < <("$tool" -w 5 -t "$tbl" -S 2>/dev/null | grep -E -- "-j $chain( |\$)" | grep -v -- "^-A $chain ")
        "$tool" -w 5 -t "$tbl" -F "$chain" 2>/dev/null || true
      done
      for chain in "${ours[@]}"; do
        "$tool" -w 5 -t "$tbl" -X "$chain" 2>/dev/null || log "could not delete $tool chain $tbl/$chain"
      done
    done
  done
}

remove_kubepods_cgroups() {
  local c
  [[ -f "$rn/host/kubepods" ]] || return 0
  for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d "$c" ]] || continue
    grep -qx "$c" "$rn/host/kubepods" 2>/dev/null && continue
    # Deepest first; a cgroup directory is removed with rmdir (its files are not real files).
    find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [[ ! -d "$c" ]] || log "could not remove cgroup $c (processes left in it?)"
  done
}

cmd_down_inner() {
  [[ -d "$rn" ]] || return 0
  # 1. The pods: killed by containerd while it still runs (the kubelet first, so it does not
  #    restart them); their network namespaces recorded to be removed.
  stop kubelet 15
  local -a netns=()
  if [[ -n "$(pid_of containerd)" ]]; then
    local id
    for id in $(ctrd containers ls -q 2>/dev/null); do
      local ns
      ns=$(ctrd containers info "$id" 2>/dev/null |
        jq -r '.Spec.linux.namespaces[]? | select(.type == "network") | .path // empty' 2>/dev/null) || ns=""
      [[ -n "$ns" ]] && netns+=("$ns")
      ctrd tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    sleep 0.5
    for id in $(ctrd containers ls -q 2>/dev/null); do
      ctrd tasks delete -f "$id" >/dev/null 2>&1 || true
      ctrd containers delete "$id" >/dev/null 2>&1 || true
    done
  fi
  stop containerd 10
  # Shims of this containerd (started by it, with its socket on their command line).
  local p
  for p in /proc/[0-9]*; do
    local cmdline
    cmdline=$(tr "\\0" " " 2>/dev/null <"$p/cmdline") || continue
    if [[ "$cmdline" == *containerd-shim*"$rn/containerd.sock"* ]]; then kill -KILL "${p#/proc/}" 2>/dev/null || true; fi
  done
  # Processes still in a pod cgroup of ours (a container the shim left behind).
  local c
  for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d "$c" && -f "$rn/host/kubepods" ]] || continue
    grep -qx "$c" "$rn/host/kubepods" && continue
    find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | while read -r p; do kill -KILL "$p" 2>/dev/null || true; done
  done
  # 2. Mounts: the network namespaces, then everything under the node's directory (the kubelet's
  #    volumes and the containers' root file systems and sandbox /dev/shm).
  local n
  for n in "${netns[@]}"; do
    [[ "$n" == /var/run/netns/* || "$n" == /run/netns/* ]] || continue
    umount "$n" 2>/dev/null || true
    rm -f "$n"
  done
  umount_under "$rn"
  # 3. The network: the CNI bridge (when this node made it; one made by `bridge` stays for the API
  #    server, and `unbridge` removes it).
  if [[ -f "$rn/host/sysctls" && ! -f "$rn/host/bridge-existed" && ! -f "$dir/$BRIDGE_MARKER" ]] &&
    ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link delete "$BRIDGE" 2>/dev/null || log "could not delete the bridge $BRIDGE"
  fi
  # 4. iptables, cgroups, sysctls, /var/log/containers links into our pod-logs.
  remove_kube_chains
  remove_kubepods_cgroups
  if [[ -f "$rn/host/sysctls" ]]; then
    local kv
    while read -r kv; do
      [[ -n "$kv" ]] || continue
      [[ "$(sysctl -n "${kv%%=*}")" == "${kv#*=}" ]] || sysctl -q -w "$kv" >/dev/null || log "could not restore $kv"
    done <"$rn/host/sysctls"
  fi
  local l
  for l in /var/log/containers/*; do
    [[ -L "$l" && "$(readlink "$l")" == "$rn/"* ]] && rm -f "$l"
  done
  # The CNI result cache (libcni, /var/lib/cni/results/<network>-<sandbox id>-<if>), normally
  # emptied by CNI DEL: whatever is left of this node's sandboxes.
  local sb
  for sb in "$rn"/containerd/root/io.containerd.grpc.v1.cri/sandboxes/*; do
    [[ -d "$sb" ]] || continue
    rm -f /var/lib/cni/results/*-"${sb##*/}"-* 2>/dev/null || true
  done
  # The kubelet's device plugin socket ignores --root-dir: removed when the directory is ours.
  if grep -qx /var/lib/kubelet/device-plugins "$rn/host/new-dirs" 2>/dev/null; then
    rm -f /var/lib/kubelet/device-plugins/kubelet.sock
  fi
  if [[ -f "$rn/host/new-dirs" ]]; then
    local d
    while read -r d; do [[ -z "$d" ]] || rmdir "$d" 2>/dev/null || true; done <"$rn/host/new-dirs"
  fi
  # 5. The registry.
  if [[ -d "$rn/registry" ]]; then bash "$here/registry.sh" down --dir "$rn/registry" >/dev/null 2>&1 || true; fi
  # 6. The directory (a mount that could not be removed keeps it: say so rather than rm across it).
  if awk -v b="$rn/" 'index($5, b) == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
    log "mounts left under $rn; not removing it"
    return 1
  fi
  rm -rf "$rn"
}

cmd_down() {
  [[ $# -eq 1 ]] || usage
  [[ -e "$1" ]] || { log "$1 does not exist; nothing to do"; return 0; }
  dir=$(cd "$1" && pwd -P)
  rn=$dir/real-node
  [[ -d "$rn" ]] || { log "no real node in $dir; nothing to do"; return 0; }
  [[ $EUID -eq 0 ]] || die "must run as root"
  # Remove the node object while the API server still runs (best effort).
  # While the API server runs: cordon the node and delete its pods, so that the kubelet stops them
  # the ordinary way (StopPodSandbox: CNI DEL, the network namespace removed); then the node.
  if [[ -n "$(pid_of kubelet)" && -f "$dir/kubeconfig" ]] && kubectl_ get node "$NODE_NAME" >/dev/null 2>&1; then
    kubectl_ cordon "$NODE_NAME" >/dev/null 2>&1 || true
    kubectl_ delete pods --all-namespaces --field-selector "spec.nodeName=$NODE_NAME" \
      --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)) && [[ -n "$(pid_of containerd)" ]] &&
      ctrd tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING" { f = 1 } END { exit !f }'; do
      sleep 0.3
    done
  fi
  if [[ -f "$dir/kubeconfig" && -x "$CONTROL_PLANE_BIN/kubectl" ]]; then
    kubectl_ delete node "$NODE_NAME" --wait=false >/dev/null 2>&1 || true
  fi
  cmd_down_inner
  log "real node down: $dir"
}

cmd_status() {
  [[ $# -eq 1 ]] || usage
  dir=$(cd "$1" && pwd -P) || die "no such directory: $1"
  rn=$dir/real-node
  local name pid rc=0
  for name in containerd kubelet; do
    pid=$(pid_of "$name")
    if [[ -n "$pid" ]]; then printf '%-12s alive (pid %s)\n' "$name" "$pid"; else
      printf '%-12s dead\n' "$name"
      rc=1
    fi
  done
  if node_ready; then echo "node $NODE_NAME Ready"; else
    echo "node $NODE_NAME not Ready"
    rc=1
  fi
  return "$rc"
}

# cmd_bridge DIR: the bridge with the gateway address, made before the cluster's API server starts
# so that it can listen on an address the pods reach (hack/cluster.sh up --real-node). Recorded as
# DIR/real-node.bridge: up adopts the bridge, down keeps it (an API server whose address vanishes
# does not shut down cleanly), unbridge removes it once the API server is stopped.
cmd_bridge() {
  [[ $# -eq 1 ]] || usage
  [[ $EUID -eq 0 ]] || die "must run as root (the bridge $BRIDGE)"
  command -v ip >/dev/null || die "missing tool: ip (apt-get install iproute2)"
  dir=$(cd "$1" 2>/dev/null && pwd -P) || die "no such directory: $1"
  [[ -f "$dir/.rollgate-cluster" ]] || die "$dir is not a hack/cluster.sh cluster directory"
  [[ ! -e "$dir/$BRIDGE_MARKER" ]] || die "$dir already has its bridge; run: $0 unbridge $dir"
  ip link show "$BRIDGE" >/dev/null 2>&1 &&
    die "the bridge $BRIDGE exists: another real node runs on this machine (one at a time)"
  ip link add name "$BRIDGE" type bridge 2>/dev/null || die "could not create the bridge $BRIDGE"
  echo "$BRIDGE $GATEWAY/$GATEWAY_PREFIX" >"$dir/$BRIDGE_MARKER"
  if ! ip addr add "$GATEWAY/$GATEWAY_PREFIX" dev "$BRIDGE" || ! ip link set "$BRIDGE" up; then
    ip link delete "$BRIDGE" 2>/dev/null || true
    rm -f "$dir/$BRIDGE_MARKER"
    die "could not give the bridge $BRIDGE the address $GATEWAY/$GATEWAY_PREFIX"
  fi
  log "bridge $BRIDGE up with $GATEWAY/$GATEWAY_PREFIX"
  echo "$GATEWAY"
}

# cmd_unbridge DIR: remove the bridge `bridge` made for DIR (no-op without its record).
cmd_unbridge() {
  [[ $# -eq 1 ]] || usage
  [[ -e "$1" ]] || return 0
  dir=$(cd "$1" && pwd -P)
  [[ -f "$dir/$BRIDGE_MARKER" ]] || return 0
  [[ $EUID -eq 0 ]] || die "must run as root (the bridge $BRIDGE)"
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link delete "$BRIDGE" || die "could not delete the bridge $BRIDGE"
  fi
  rm -f "$dir/$BRIDGE_MARKER"
}

dir="" rn=""
case ${1:-} in
  up) shift; cmd_up "$@" ;;
  bridge) shift; cmd_bridge "$@" ;;
  unbridge) shift; cmd_unbridge "$@" ;;
  down) shift; cmd_down "$@" ;;
  status) shift; cmd_status "$@" ;;
  *) usage ;;
esac
