#!/usr/bin/env bash
# Builds everything, installs wasmcni into a scratch directory, and attaches
# two throwaway "containers" (network namespaces) to a bridge network through
# it, exactly as a container runtime would: ADD, a ping across the bridge,
# CHECK, a policy denying an ADD, then daemon mode with a hot swap of the
# IPAM policy, and DEL. Everything it creates lives in namespaces it made, and
# is removed on exit. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $(id -u) == 0 ]] || { echo "the demo creates network namespaces: run it as root" >&2; exit 1; }
scripts/setup.sh
scripts/build.sh >/dev/null

id=$$
scratch=$(mktemp -d /tmp/wasmcni-demo.XXXXXX)
node=wcdemo-node-$id
containers=(wcdemo-a-$id wcdemo-b-$id)
daemon_pid=
cleanup() {
    [[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
    for ns in "$node" "${containers[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$scratch"
}
trap cleanup EXIT

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

bold "install: binary, wasm-<module> links and modules"
target/dist/wasmcni install --bin-dir "$scratch/bin" --module-dir "$scratch/wasm"
export WASMCNI_MODULE_DIR=$scratch/wasm WASMCNI_CACHE_DIR=$scratch/cache

# The embedded default network: the bridge and host-local Wasm modules.
read -r -d '' CONFIG <<JSON || true
{
  "cniVersion": "1.1.0",
  "name": "demo",
  "type": "wasm-bridge",
  "bridge": "wcdemo0",
  "isGateway": true,
  "ipMasq": true,
  "ipam": {
    "type": "wasm-host-local",
    "ranges": [[{"subnet": "10.88.0.0/24"}], [{"subnet": "fd00:88::/64"}]],
    "routes": [{"dst": "0.0.0.0/0"}],
    "dataDir": "$scratch/leases"
  }
}
JSON
echo "$CONFIG"

# cni COMMAND CONTAINER [CONFIG]: exec the plugin inside the node netns, as a runtime would.
cni() {
    local command=$1 container=$2 config=${3:-$CONFIG}
    echo "$config" | ip netns exec "$node" env CNI_COMMAND="$command" CNI_CONTAINERID="$container" \
        CNI_NETNS="/var/run/netns/$container" CNI_IFNAME=eth0 CNI_PATH="$scratch/bin" CNI_ARGS="${CNI_ARGS:-}" \
        "$scratch/bin/wasm-bridge"
}

ip netns add "$node"
ip -n "$node" link set lo up
declare -A result
for c in "${containers[@]}"; do
    ip netns add "$c"
    ip -n "$c" link set lo up
    bold "ADD $c"
    result[$c]=$(cni ADD "$c")
    echo "${result[$c]}" | python3 -m json.tool
done

a=${containers[0]} b=${containers[1]}
ip_b=$(echo "${result[$b]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ips"][0]["address"].split("/")[0])')
bold "inside $a"
ip -n "$a" -br addr show eth0
ip -n "$a" route
bold "ping $b ($ip_b) from $a, and the gateway"
ip netns exec "$a" ping -c 2 -W 2 "$ip_b"
ip netns exec "$a" ping -c 1 -W 2 10.88.0.1
bold "leases on disk (reference host-local layout)"
ls "$scratch/leases/demo"

bold "CHECK $a against its result"
with_prev=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c["prevResult"]=json.loads(sys.argv[2]); print(json.dumps(c))' "$CONFIG" "${result[$a]}")
cni CHECK "$a" "$with_prev" && echo "CHECK passed"

bold "a policy before ADD: only namespace prod may attach (examples/policy-namespace-allowlist)"
policy_config=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c["policies"]=[{"plugin": sys.argv[2], "namespaces": ["prod"]}]; print(json.dumps(c))' \
    "$CONFIG" "$PWD/target/dist/example-modules/namespace-allowlist.wasm")
d=wcdemo-d-$id
containers+=("$d")
ip netns add "$d"
CNI_ARGS="K8S_POD_NAMESPACE=sandbox" cni ADD "$d" "$policy_config" || echo "(exit status $?)"
ip -n "$d" link show eth0 2>/dev/null || echo "no eth0 in $d: the denied ADD created nothing"

bold "daemon mode: warm modules behind $scratch/wasmcni.sock"
ip netns exec "$node" "$scratch/bin/wasmcni" daemon --socket "$scratch/wasmcni.sock" --module-dir "$scratch/wasm" \
    2>"$scratch/daemon.log" &
daemon_pid=$!
until [[ -S $scratch/wasmcni.sock ]]; do sleep 0.1; done
export WASMCNI_DAEMON_SOCKET=$scratch/wasmcni.sock
api() { curl -s --unix-socket "$scratch/wasmcni.sock" "$@"; echo; }
api http://wasmcni/v1/plugins | python3 -m json.tool

bold "hot swap: host-local's round-robin replaced by the lowest-free policy (examples/ipam-lowest-free)"
api -X PUT --data-binary @target/dist/example-modules/lowest-free.wasm http://wasmcni/v1/plugins/host-local
bold "DEL $a through the daemon: its lease, made by the old module, is released by the new one"
cni DEL "$a" && echo "deleted"
c=wcdemo-c-$id
containers+=("$c")
ip netns add "$c"
bold "ADD $c: lowest free address (${ip_b%.*}.2 again), where round-robin would have moved on"
cni ADD "$c" | python3 -c 'import json,sys; print([i["address"] for i in json.load(sys.stdin)["ips"]])'
bold "leases, as the daemon reports them"
api http://wasmcni/v1/networks/demo/leases | python3 -m json.tool
bold "metrics (excerpt)"
api http://wasmcni/metrics | grep -E '^wasmcni_(requests_total|module_swaps_total|leases)'

for c in "$b" "$c"; do
    bold "DEL $c"
    cni DEL "$c" && echo "deleted"
done
bold "leases left"
ls "$scratch/leases/demo"
echo
echo "demo finished; the daemon, namespaces and scratch files are removed on exit"
