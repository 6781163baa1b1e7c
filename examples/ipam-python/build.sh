#!/usr/bin/env bash
# Builds app.py into a component of the `ipam` world with componentize-py:
# build.sh OUT.wasm. --stub-wasi drops the filesystem and socket imports the
# bundled CPython would bring, so the module imports only the lease store and
# the log, as the ipam world grants. componentize-py lives in a venv under
# the workspace's target/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "${1:-$here/ipam-python.wasm}")
venv=$here/../../target/componentize-py
cd "$here"
# A venv does not survive being moved: make it again when it does not run.
"$venv/bin/componentize-py" --version >/dev/null 2>&1 || {
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check componentize-py==0.25.1 >&2
}
if [[ -f $out && $out -nt app.py && $out -nt ipam_core.py && $out -nt ../../wit/wasmcni.wit ]]; then exit 0; fi
mkdir -p "$(dirname "$out")"
"$venv/bin/componentize-py" --wit-path ../../wit --world ipam componentize --stub-wasi app --output "$out" >&2
