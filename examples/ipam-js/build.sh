#!/usr/bin/env bash
# Builds the lowest-free IPAM (ipam.js on @wasmcni/sdk) into a component of
# the `ipam` world: build.sh OUT.wasm; nothing to do when OUT.wasm is newer
# than its sources, the SDK's included. componentize-js takes one source
# file, so esbuild first bundles the entry with the SDK, leaving the WIT
# imports (wasmcni:*) to componentize-js. Every WASI feature is disabled, so
# the module imports only the lease store and the log, as the ipam world grants.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "${1:-$here/ipam-js.wasm}")
cd "$here"
sdk=../../sdk/js
wit=../../wit/wasmcni.wit

./install.sh

fresh=1
for src in ipam.js lowest-free.js package.json "$wit" "$sdk"/package.json "$sdk"/src/*.js "$sdk"/component/*.js; do
  [[ $out -nt $src ]] || fresh=0
done
((fresh)) && exit 0

bundle=$(mktemp -d)
trap 'rm -rf "$bundle"' EXIT
node_modules/.bin/esbuild ipam.js --bundle --format=esm --platform=neutral --external:'wasmcni:*' \
    --outfile="$bundle/ipam.js" --log-level=warning >&2
mkdir -p "$(dirname "$out")"
node_modules/.bin/componentize-js "$bundle/ipam.js" --wit "$wit" --world-name ipam \
    --disable stdio random clocks http fetch-event --out "$out" >&2
