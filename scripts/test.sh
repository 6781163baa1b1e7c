#!/usr/bin/env bash
# Checks formatting and lints, then runs every test: unit tests of the host, the SDK and the plugins, then the
# end-to-end tests that exec the real binary in throwaway network namespaces
# (root needed). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $(id -u) == 0 ]] || { echo "the end-to-end tests need root (network namespaces)" >&2; exit 1; }
scripts/setup.sh
# Style and lints gate the run (the host-side crates; plugins build only for wasm32-wasip2).
cargo fmt --all -- --check
cargo clippy --release --locked --all-targets -- -D warnings
scripts/build.sh
scripts/build-languages.sh
sdk/python/test.sh
sdk/js/test.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
unit=(-p wasmcni -p wasmcni-cni -p wasmcni-scope -p wasmcni-kernel -p wasmcni-engine -p wasmcni-caps -p wasmcni-sdk
    -p wasmcni-plugin-host-local -p wasmcni-plugin-host-gw -p wasmcni-plugin-vxlan -p wasmcni-plugin-k8s-networkpolicy -p wasmcni-plugin-custom-route -p wasmcni-plugin-bridge
    -p wasmcni-plugin-lowest-free -p wasmcni-plugin-namespace-allowlist -p wasmcni-plugin-pool-by-namespace)
# Unit tests need no root, and run as nobody to keep it so (cargo's runner
# for this host's target); only the kernel crate's tests against the real
# kernel (fresh namespaces) run as root.
root_only=(kernel_tests conformance)
as_nobody="setpriv --reuid=nobody --regid=nogroup --clear-groups"
host=$(rustc -vV | sed -n 's/^host: //p')
runner=(env "CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$host")_RUNNER=$as_nobody")
if ! $as_nobody test -x "$(pwd)/target/release"; then
    # A checkout nobody cannot reach (under a private home, say).
    echo "nobody cannot reach $(pwd)/target: the unit tests run as root" >&2
    runner=()
fi
"${runner[@]}" cargo test --release --locked "${unit[@]}" -- $(printf -- '--skip %s ' "${root_only[@]}") 2>&1 | tee -a "$log"
cargo test --release --locked "${unit[@]}" -- "${root_only[@]}" 2>&1 | tee -a "$log"
cargo test --release --locked -p wasmcni-e2e 2>&1 | tee -a "$log"
# One closing line for the whole run.
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$log"
