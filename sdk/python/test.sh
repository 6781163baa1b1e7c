#!/usr/bin/env bash
# Runs the Python SDK's tests and the Python example's under plain CPython
# (no root, no Wasm), in a venv under target/ that is made on first use and
# made again when pyproject.toml changes. The SDK is installed editable, so
# source changes need no reinstall.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=$root/target/python-sdk-venv
stamp=$venv/.installed
# A venv does not survive being moved: make it again when it does not run.
if ! "$venv/bin/python" -c "import pytest, wasmcni_sdk, componentize_py" 2>/dev/null \
    || [[ ! -f $stamp || $here/pyproject.toml -nt $stamp ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    # componentize-py generates the bindings the edge tests run against.
    "$venv/bin/pip" install --quiet --disable-pip-version-check pytest componentize-py==0.25.1 -e "$here" >&2
    touch "$stamp"
fi
# Nothing written into the sources: the SDK directory ships as it is.
export PYTHONDONTWRITEBYTECODE=1
"$venv/bin/pytest" -q -p no:cacheprovider "$here/tests"
(cd "$root/examples/ipam-python" && "$venv/bin/pytest" -q -p no:cacheprovider)
