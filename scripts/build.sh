#!/usr/bin/env bash
# Builds the wasmcni host (the dist profile) and the first-party Wasm plugins,
# and gathers the modules in target/dist/modules/<name>.wasm, where
# `wasmcni install` looks for them by default (modules that exist only for
# the tests go to target/dist/test-modules, examples to
# target/dist/example-modules).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

plugins=(bridge host-local loopback host-gw custom-route vxlan k8s-networkpolicy)
test_plugins=(hostile legacy-ipam legacy-plugin overreach v0-2-plugin v0-2-policy v1-0-policy)
example_plugins=(lowest-free namespace-allowlist pool-by-namespace namespace-isolation)
cargo build --profile dist --locked -p wasmcni
cargo build --profile plugin --locked --target wasm32-wasip2 $(printf -- '-p wasmcni-plugin-%s ' "${plugins[@]}" "${test_plugins[@]}" "${example_plugins[@]}")

gather() {
    local dir=$1; shift
    mkdir -p "$dir"
    for p in "$@"; do
        cp "target/wasm32-wasip2/plugin/wasmcni_plugin_${p//-/_}.wasm" "$dir/$p.wasm"
    done
}
gather target/dist/modules "${plugins[@]}"
gather target/dist/test-modules "${test_plugins[@]}"
gather target/dist/example-modules "${example_plugins[@]}"
ls -l target/dist/modules >&2
