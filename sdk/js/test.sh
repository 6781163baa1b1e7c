#!/usr/bin/env bash
# Runs the JavaScript SDK's tests, then the JavaScript example's
# (examples/ipam-js). The SDK has no dependencies and needs no install; the
# example installs its locked packages once, from npm's cache when it can.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
node --test test/*.test.js
example=$here/../../examples/ipam-js
"$example"/install.sh
cd "$example"
node --test test/*.test.js
