#!/usr/bin/env bash
# Builds the wasmcni host (release) and the first-party Wasm plugins, and
# gathers the modules in target/release/modules/<name>.wasm, where
# `wasmcni install` looks for them by default.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

plugins=(bridge host-local loopback hostile)
cargo build --release --locked -p wasmcni
cargo build --release --locked --target wasm32-wasip2 $(printf -- '-p wasmcni-plugin-%s ' "${plugins[@]}")

mkdir -p target/release/modules
for p in "${plugins[@]}"; do
    cp "target/wasm32-wasip2/release/wasmcni_plugin_${p//-/_}.wasm" "target/release/modules/$p.wasm"
done
ls -l target/release/modules >&2
