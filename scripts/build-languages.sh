#!/usr/bin/env bash
# Builds the example IPAM policies written in Python (componentize-py, from
# PyPI) and JavaScript (componentize-js, from npm) into
# target/dist/example-modules, next to the Rust examples. Each step is
# skipped when its module is newer than its sources.
set -euo pipefail
cd "$(dirname "$0")/.."
examples/ipam-python/build.sh target/dist/example-modules/ipam-python.wasm
examples/ipam-js/build.sh target/dist/example-modules/ipam-js.wasm
