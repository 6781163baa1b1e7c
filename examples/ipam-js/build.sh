#!/usr/bin/env bash
# Builds ipam.js into a component of the `ipam` world with componentize-js
# (SpiderMonkey): build.sh OUT.wasm. Every WASI feature is disabled, so the
# module imports only the lease store and the log, as the ipam world grants.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "${1:-$here/ipam-js.wasm}")
cd "$here"
# `npm ci` trips on the lock file's optional per-platform packages; `install
# --no-save` installs the locked versions and leaves the lock file alone.
[[ -x node_modules/.bin/componentize-js ]] || npm install --no-save --no-audit --no-fund --loglevel=error >&2
if [[ -f $out && $out -nt ipam.js && $out -nt ../../wit/wasmcni.wit ]]; then exit 0; fi
mkdir -p "$(dirname "$out")"
node_modules/.bin/componentize-js ipam.js --wit ../../wit/wasmcni.wit --world-name ipam \
    --disable stdio random clocks http fetch-event --out "$out" >&2
