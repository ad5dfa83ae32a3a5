#!/usr/bin/env bash
# The README's first command: install what is needed (the pinned anvil, the torch venv), build drlaas
# and its trainer, then run the marketplace on this machine (`drlaas local run`): requesters post a
# CartPole task and a two-agent maze-cleaning task with escrow; workers are recruited, train, and
# are verified and paid; their models go on the market; a third requester buys the most similar
# model to fine-tune for a three-agent maze (model sharing). Everything settles on a local anvil
# chain and a local content store under target/demo (or $DRLAAS_DEMO_DIR).
#
# `tools/demo.sh gymnasium` runs tasks on Gymnasium's own CartPole-v1 (discrete actions) and
# Pendulum-v1 (continuous actions) instead (deploy/examples/gymnasium-*.yaml): the trainer and the
# verifier step them through the environment server of envserver/, with the Python of
# tools/envserver-env.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
case "${1:-}" in
  "" | gymnasium) ;;
  *) echo "demo.sh: unknown argument '$1' (none runs the marketplace demo, 'gymnasium' two Gymnasium tasks)" >&2; exit 2 ;;
esac
tools/setup.sh --without-ipfs
# shellcheck source=tools/torch-env.sh
source tools/torch-env.sh
echo "== building drlaas and its trainer (the first build takes several minutes)"
# --workspace: the same build of every dependency as the tests use (see tools/test.sh).
cargo build -q --workspace --bin drlaas-trainer --bin drlaas
drlaas="$root/target/debug/drlaas"
data="${DRLAAS_DEMO_DIR:-$root/target/demo}"
"$drlaas" local stop --data-dir "$data" >/dev/null 2>&1 || true
rm -rf "$data"
started=$(date +%s)

if [ "${1:-}" = gymnasium ]; then
  # shellcheck source=tools/envserver-env.sh
  source tools/envserver-env.sh
  echo
  echo "== A requester posts tasks on Gymnasium's CartPole-v1 (discrete actions) and Pendulum-v1"
  echo "   (continuous actions), served by the environment server"
  "$drlaas" local run --data-dir "$data" deploy/examples/gymnasium-cartpole.yaml deploy/examples/gymnasium-pendulum.yaml
  for id in 1 2; do "$drlaas" task status "$id" --data-dir "$data" || true; done
  "$drlaas" local stop --data-dir "$data"
  echo
  echo "demo: the Gymnasium tasks settled in $(( $(date +%s) - started )) s (after the build); data in $data"
  exit 0
fi

echo
echo "== 1. Two requesters post tasks with escrow: CartPole, and a two-agent maze to clean"
"$drlaas" local run --data-dir "$data" deploy/examples/cartpole.yaml deploy/examples/maze-cleaning.yaml
echo
echo "== 2. The workers listed their paid models on the market"
"$drlaas" model list --data-dir "$data"
echo
echo "== 3. A third requester's maze has three agents: it buys the most similar model and has it fine-tuned"
"$drlaas" local run --data-dir "$data" deploy/examples/model-sharing.yaml
echo
echo "== 4. The training of the fine-tuned model, and the workers after the round"
"$drlaas" task status 3 --data-dir "$data" || true
"$drlaas" worker list --data-dir "$data"
"$drlaas" local stop --data-dir "$data"
echo
echo "demo: every task settled in $(( $(date +%s) - started )) s (after the build); data in $data"
