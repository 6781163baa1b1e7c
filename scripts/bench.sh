#!/usr/bin/env bash
# Times wasmcni against the reference plugins side by side (root needed).
# Extra arguments go to the benchmark, e.g. --containers 100.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
scripts/build-languages.sh
cargo run --release --locked -p wasmcni-bench -- "$@"
