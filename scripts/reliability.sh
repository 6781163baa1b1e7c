#!/usr/bin/env bash
# Reliability figures of wasmcni on this machine (root needed): concurrent
# ADD/DEL one-shot and through a daemon short of fds, ADDs killed at random
# points, looping modules against /healthz. Exits 1 when a row has failures
# or leftovers. Extra arguments go to the program, e.g. for a short run:
#   scripts/reliability.sh --concurrency 50 --kill-trials 20 --shim-trials 10
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $(id -u) == 0 ]] || { echo "the reliability run needs root (network namespaces)" >&2; exit 1; }
scripts/setup.sh
# wasmcni is built only when missing: run scripts/build.sh after changing it.
[[ -x target/dist/wasmcni && -f target/dist/test-modules/hostile.wasm ]] || scripts/build.sh
cargo build --release --locked -p wasmcni-bench --bin wasmcni-reliability
exec target/release/wasmcni-reliability "$@"
