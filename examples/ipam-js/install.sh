#!/usr/bin/env bash
# Installs the locked packages into node_modules, once: again only when the
# lock file changes. `npm ci` trips on the lock file's optional per-platform
# packages; `install --no-save` installs the locked versions and leaves the
# lock file alone. The stamp is npm's own record of node_modules.
set -euo pipefail
cd "$(dirname "$0")"
if [[ ! node_modules/.package-lock.json -nt package-lock.json ]]; then
  npm install --no-save --prefer-offline --no-audit --no-fund --loglevel=error >&2
  touch node_modules/.package-lock.json
fi
