#!/usr/bin/env bash
# Compile the contracts with the pinned forge + solc-js and refresh chain/artifacts/.
# `--check` fails instead of writing when the committed artifacts differ from a fresh build.
set -euo pipefail
chain="$(cd "$(dirname "$0")/.." && pwd)"
forge="$chain/../tools/node_modules/.bin/forge"
[ -x "$forge" ] || { echo "forge not installed: run tools/setup.sh first" >&2; exit 1; }
cd "$chain"
"$forge" build --force --skip test >/dev/null
node scripts/artifacts.js "$@"
