#!/usr/bin/env bash
# Installs what building and testing wasmcni needs on a fresh Debian machine:
# the wasm32-wasip2 Rust target and the Debian packages (kernel tools, the
# reference CNI plugins for interop tests, podman, hyperfine and iperf3 for benchmarks,
# etcd for the cluster tests, protoc for the etcd client).
# Safe to run again: it installs only what is missing.
set -euo pipefail

packages=(iproute2 iptables nftables iputils-ping curl containernetworking-plugins podman runc hyperfine iperf3 busybox-static
    etcd-server etcd-client protobuf-compiler libprotobuf-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
rustup component list --installed | grep -q "^clippy" && rustup component list --installed | grep -q "^rustfmt" || rustup component add clippy rustfmt
