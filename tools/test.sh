#!/usr/bin/env bash
# The test command of the README: contract tests (forge: unit, fuzz, invariant) and the Rust tests of
# every crate, each crate on its own so a failure names it. Installs the pinned tools (npm tools, the
# torch venv libtorch comes from) first if needed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

tools/setup.sh
# helm for the chart's tests (drlaas-chart runs helm lint and template).
tools/helm.sh install
# shellcheck source=tools/torch-env.sh
source tools/torch-env.sh

echo "== forge test (chain/contracts)"
(cd chain && ../tools/node_modules/.bin/forge test)

# drlaas-crds with --all-features: its CRD tests (schema up to date, CEL rules) need the kube feature.
# drlaas-http's tests run a TLS proxy with a private CA; chain, store, trainer and operator use it too.
# drlaas-trainer before drlaas-operator: the operator's tests run the trainer binary it builds.
# drlaas-chart renders the Helm chart with the pinned helm and checks it and deploy/.
# drlaas-e2e's local-mode tests run the drlaas and drlaas-trainer binaries the operator's and trainer's
# tests built; its cluster tests are ignored here (they need KUBECONFIG).
for crate in drlaas-http drlaas-chain "drlaas-crds --all-features" drlaas-store drlaas-envs drlaas-trainer drlaas-operator drlaas-chart drlaas-e2e; do
  echo "== cargo test -p $crate"
  # shellcheck disable=SC2086 # the crate entry may carry flags
  cargo test -p $crate
done
