# shellcheck shell=bash
# Sourced by hack/demo.sh (--real) and tests/e2e/real_node_validation_test.sh: a node without a GPU
# (the real node rollgate-real-0, hack/real-node.sh) made to advertise nvidia.com/gpu on its status,
# as a device plugin would, so that pods requesting one are scheduled there and admitted by its
# kubelet. Nothing runs on a GPU: the request is bookkeeping only.
#
# The node's status is patched (capacity and allocatable); the kubelet's later status posts leave
# the entry there (no device plugin of its own manages nvidia.com/gpu), which node_gpus_watch
# shows over the next posts (the test watches two, the demo one). KUBECTL below is a command or
# shell function called as `KUBECTL ARG...` (kubectl with the cluster's kubeconfig). Needs GNU
# date.

# node_gpus KUBECTL NODE: prints NODE's nvidia.com/gpu as "CAPACITY/ALLOCATABLE", each "none"
# when absent; fails when kubectl does.
node_gpus() {
  local out cap alloc
  out=$("$1" get node "$2" -o 'jsonpath={.status.capacity.nvidia\.com/gpu}/{.status.allocatable.nvidia\.com/gpu}') ||
    return 1
  cap=${out%%/*} alloc=${out#*/}
  echo "${cap:-none}/${alloc:-none}"
}

# node_gpus_advertise KUBECTL NODE COUNT: COUNT nvidia.com/gpu on NODE's status, capacity and
# allocatable (a JSON patch of the status subresource). kubectl's errors go to stderr; fails when
# it does.
node_gpus_advertise() {
  local kubectl=$1 node=$2 count=$3 patch
  [[ "$count" =~ ^[0-9]+$ ]] || {
    echo "node_gpus_advertise: not a count: $count" >&2
    return 2
  }
  patch='[{"op": "add", "path": "/status/capacity/nvidia.com~1gpu", "value": "'$count'"},'
  patch+=' {"op": "add", "path": "/status/allocatable/nvidia.com~1gpu", "value": "'$count'"}]'
  "$kubectl" patch node "$node" --subresource=status --type=json -p "$patch" >/dev/null
}

# node_gpus_watch KUBECTL NODE COUNT SINCE POSTS MIN_S MAX_S: reads NODE once a second until the
# kubelet has posted its status POSTS times after SINCE (epoch seconds; each post renews its Ready
# condition's lastHeartbeatTime: every 4 s, nodeStatusUpdateFrequency in hack/real-node.sh) and
# MIN_S seconds have passed, for at most MAX_S seconds; the GPUs must read COUNT/COUNT all along.
# Sets node_gpus_elapsed (seconds watched) and node_gpus_posts (the posts' times, space-separated).
# Returns 0 when they stayed through POSTS posts; otherwise 1, with node_gpus_error saying why.
# shellcheck disable=SC2034 # node_gpus_elapsed, node_gpus_posts and node_gpus_error: for the caller
node_gpus_watch() {
  local kubectl=$1 node=$2 count=$3 since=$4 posts=$5 min_s=$6 max_s=$7
  local t0=$SECONDS out gpus beat n=0
  node_gpus_elapsed=0 node_gpus_posts="" node_gpus_error=""
  while ((SECONDS - t0 < max_s)); do
    if ! out=$("$kubectl" get node "$node" -o 'jsonpath={.status.capacity.nvidia\.com/gpu}/{.status.allocatable.nvidia\.com/gpu} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}' 2>&1); then
      node_gpus_error="reading the node after $((SECONDS - t0))s: ${out//$'\n'/ }"
      break
    fi
    gpus=${out%% *} beat=${out#* }
    [[ "$gpus" == "$count/$count" ]] || {
      gpus=${gpus/#\//none/}
      [[ "$gpus" == */ ]] && gpus+=none
      node_gpus_error="capacity/allocatable $gpus after $((SECONDS - t0))s"
      break
    }
    if [[ -n "$beat" ]] && (($(date -u -d "$beat" +%s) > since)) && [[ " $node_gpus_posts " != *" $beat "* ]]; then
      node_gpus_posts+="${node_gpus_posts:+ }$beat"
      n=$((n + 1))
    fi
    ((n >= posts && SECONDS - t0 >= min_s)) && break
    sleep 1
  done
  node_gpus_elapsed=$((SECONDS - t0))
  [[ -z "$node_gpus_error" ]] || return 1
  if ((n < posts)); then
    node_gpus_error="kept, but the kubelet posted its status only $n time(s) in $max_s s (${node_gpus_posts:-none}): survival not shown"
    return 1
  fi
  return 0
}
