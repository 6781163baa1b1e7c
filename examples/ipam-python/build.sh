#!/usr/bin/env bash
# Builds app.py (the lowest-free policy, on the Python SDK in sdk/python)
# into a component of the `ipam` world with componentize-py: build.sh
# OUT.wasm. --stub-wasi drops the filesystem and socket imports the bundled
# CPython would bring, so the module imports only the lease store and the
# log, as the ipam world grants. componentize-py and the SDK live in a venv
# under the workspace's target/; componentize-py finds the SDK in that
# venv's site-packages. Nothing is done when OUT.wasm is newer than every
# source, the SDK's included.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(realpath -m "${1:-$here/ipam-python.wasm}")
venv=$root/target/componentize-py
sdk=$root/sdk/python
sources=("$here"/*.py "$root/wit/wasmcni.wit" "$sdk/pyproject.toml" "$sdk"/wasmcni_sdk/*.py "$sdk"/wasmcni_sdk/*/*.py)
# Whether any source is newer than file $1.
stale() {
    local f
    for f in "${sources[@]}"; do [[ $f -nt $1 ]] && return 0; done
    return 1
}
pip() { "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2; }
# A venv does not survive being moved: make it again when it does not run.
"$venv/bin/componentize-py" --version >/dev/null 2>&1 || {
    rm -rf "$venv"
    python3 -m venv "$venv"
    pip componentize-py==0.25.1
}
# A regular install, not an editable one: componentize-py does not follow
# the .pth file an editable install leaves in site-packages.
installed=$venv/.wasmcni-sdk-installed
if [[ ! -f $installed ]] || stale "$installed"; then
    pip --no-deps --force-reinstall "$sdk"
    touch "$installed"
fi
if [[ -f $out ]] && ! stale "$out"; then exit 0; fi
mkdir -p "$(dirname "$out")"
cd "$here"
# VIRTUAL_ENV names the site-packages componentize-py adds to its path: this
# venv's, whatever venv the caller has activated.
VIRTUAL_ENV=$venv "$venv/bin/componentize-py" --wit-path ../../wit --world ipam componentize --stub-wasi app \
    --output "$out" >&2
