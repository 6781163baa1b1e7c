#!/usr/bin/env bash
# Builds everything, installs wasmcni into a scratch directory, and attaches
# two throwaway "containers" (network namespaces) to a bridge network through
# it, exactly as a container runtime would: ADD, a ping across the bridge,
# CHECK, a policy denying an ADD, then daemon mode with a hot swap of the
# IPAM policy, network policy between pods, and DEL; last, two nodes on segments joined by a router, their
# pods reaching each other through the vxlan overlay. Everything it creates
# lives in namespaces it made, and is removed on exit. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $(id -u) == 0 ]] || { echo "the demo creates network namespaces: run it as root" >&2; exit 1; }
scripts/setup.sh
scripts/build.sh >/dev/null

id=$$
scratch=$(mktemp -d /tmp/wasmcni-demo.XXXXXX)
node=wcdemo-node-$id
containers=(wcdemo-a-$id wcdemo-b-$id)
daemons=()
cleanup() {
    # A process killed by the signal waits with status 143: not a failure of the demo.
    for pid in "${daemons[@]}"; do kill "$pid" 2>/dev/null && { wait "$pid" 2>/dev/null || true; }; done
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
daemons+=($!)
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

bold "network policy: namespace web takes connections only from pods labelled role=frontend (k8s-networkpolicy)"
mkdir -p "$scratch/netpol"
cat >"$scratch/netpol/cluster.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: frontends-only, namespace: web}
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {}
      podSelector: {matchLabels: {role: frontend}}
    ports: [{port: 8080}]
---
{kind: Pod, metadata: {name: server, namespace: web, labels: {app: server}}}
---
{kind: Pod, metadata: {name: frontend, namespace: shop, labels: {role: frontend}}}
---
{kind: Pod, metadata: {name: other, namespace: shop, labels: {role: batch}}}
YAML
sed -n '1,11p' "$scratch/netpol/cluster.yaml"
netpol_config=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c.update(name="policed", bridge="wcdemo1");
c["ipam"]["ranges"]=[[{"subnet": "10.89.0.0/24"}]]; c["networkPolicy"]={"manifests": sys.argv[2]}; print(json.dumps(c))' \
    "$CONFIG" "$scratch/netpol")
declare -A pod_ip
for p in web/server shop/frontend shop/other; do
    ns=wcdemo-${p#*/}-$id
    containers+=("$ns")
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    out=$(CNI_ARGS="K8S_POD_NAMESPACE=${p%/*};K8S_POD_NAME=${p#*/}" cni ADD "$ns" "$netpol_config")
    pod_ip[$p]=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ips"][0]["address"].split("/")[0])')
    echo "ADD $p: ${pod_ip[$p]}, its policy in place before ADD returned"
done
server=wcdemo-server-$id
ip netns exec "$server" python3 -m http.server 8080 --bind 0.0.0.0 >/dev/null 2>&1 &
daemons+=($!)
until ip netns exec "$server" ss -ltn | grep -q :8080; do sleep 0.1; done
for p in shop/frontend shop/other; do
    if ip netns exec "wcdemo-${p#*/}-$id" curl -s -o /dev/null -m 2 "http://${pod_ip[web/server]}:8080/"; then
        echo "$p -> web/server:8080: connected"
    else
        echo "$p -> web/server:8080: refused"
    fi
done
bold "the node's table: one chain per isolated pod, a verdict map from its address"
ip netns exec "$node" nft list table inet wasmcni-netpol | sed -n '/chain in-web.server/,/}/p'
for p in web/server shop/frontend shop/other; do
    CNI_ARGS="K8S_POD_NAMESPACE=${p%/*};K8S_POD_NAME=${p#*/}" cni DEL "wcdemo-${p#*/}-$id" "$netpol_config"
done
ip netns exec "$node" nft list tables | grep -q wasmcni-netpol || echo "DEL removed the pods' rules: no table left"

for c in "$b" "$c"; do
    bold "DEL $c"
    cni DEL "$c" && echo "deleted"
done
bold "leases left"
ls "$scratch/leases/demo"

bold "across nodes: two nodes on 192.168.1.0/24 and 192.168.2.0/24, a router between, the vxlan overlay"
unset WASMCNI_DAEMON_SOCKET
router=wcdemo-r-$id
containers+=("$router")
ip netns add "$router"
ip netns exec "$router" sysctl -qw net.ipv4.ip_forward=1
echo '{"network": "10.244.0.0/16", "nodes": {"192.168.1.1": "10.244.1.0/24", "192.168.2.1": "10.244.2.0/24"}}' \
    >"$scratch/peers.json"
for n in 1 2; do
    host=wcdemo-n$n-$id pod=wcdemo-p$n-$id
    containers+=("$host" "$pod")
    ip netns add "$host"
    ip netns add "$pod"
    ip -n "$router" link add "r$n" type veth peer name eth0 netns "$host"
    ip -n "$router" addr add "192.168.$n.254/24" dev "r$n"
    ip -n "$router" link set "r$n" up
    ip -n "$host" addr add "192.168.$n.1/24" dev eth0
    ip -n "$host" link set eth0 up
    ip -n "$host" link set lo up
    ip -n "$host" route add 192.168.0.0/16 via "192.168.$n.254"
    ip netns exec "$host" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$host" "$scratch/bin/wasmcni" daemon --socket "$scratch/n$n.sock" --module-dir "$scratch/wasm" \
        --peers-file "$scratch/peers.json" --node-ip "192.168.$n.1" --underlay-iface eth0 \
        --routing-plugin vxlan --subnet-file "$scratch/n$n.env" 2>"$scratch/n$n.log" &
    daemons+=($!)
    until [[ -f $scratch/n$n.env ]]; do sleep 0.1; done
    pod_config=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c.update(name="overlay", bridge="cni0");
c["ipam"]={"type": "wasm-host-local", "subnetFile": sys.argv[2], "dataDir": sys.argv[3]}; print(json.dumps(c))' \
        "$CONFIG" "$scratch/n$n.env" "$scratch/leases-n$n")
    node=$host cni ADD "$pod" "$pod_config" >/dev/null
done
until ip -n "wcdemo-n1-$id" route show 10.244.2.0/24 | grep -q wasmcni.1; do sleep 0.1; done
bold "node 1: its VTEP, and per peer a neighbour entry, an FDB entry and an onlink route"
ip -n "wcdemo-n1-$id" -d link show wasmcni.1
ip -n "wcdemo-n1-$id" neigh show dev wasmcni.1
bridge -n "wcdemo-n1-$id" fdb show dev wasmcni.1 | grep dst
ip -n "wcdemo-n1-$id" route show 10.244.2.0/24
bold "ping node 2's pod (10.244.2.2) from node 1's pod, across the router, in VXLAN"
ip netns exec "wcdemo-p1-$id" ping -c 2 -W 2 10.244.2.2
echo
echo "demo finished; the daemon, namespaces and scratch files are removed on exit"
