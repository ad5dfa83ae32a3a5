#!/usr/bin/env bash
# The README's first command: install the pinned tools, then run a whole marketplace round on a fresh
# anvil (deploy, register workers, train-task escrow to payment, a failed attempt slashed and reassigned,
# a model sale with royalty, withdrawals) and print gas, balances and reputations.
# Until the local mode lands, the demo plays the oracle itself; nothing is trained yet.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
tools/setup.sh --without-ipfs
cargo run -q -p drlaas-chain --example lifecycle
