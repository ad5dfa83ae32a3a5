#!/usr/bin/env bash
# The test command of the README: contract tests (forge: unit, fuzz, invariant), the environment
# server's lint and tests (envserver/, Python), and the Rust tests of every crate, each crate on its own
# so a failure names it. Installs the pinned tools (npm tools, the torch venv libtorch comes from, the
# envserver venv) first if needed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

tools/setup.sh
# helm for the chart's tests (drlaas-chart runs helm lint and template).
tools/helm.sh install
# shellcheck source=tools/torch-env.sh
source tools/torch-env.sh
# DRLAAS_ENV_PYTHON, for the Rust tests that start an environment server.
# shellcheck source=tools/envserver-env.sh
source tools/envserver-env.sh

echo "== forge test (chain/contracts)"
(cd chain && ../tools/node_modules/.bin/forge test)

echo "== envserver (Python): ruff check, ruff format --check, pytest"
"$DRLAAS_ENV_VENV/bin/ruff" check envserver
"$DRLAAS_ENV_VENV/bin/ruff" format --check envserver
"$DRLAAS_ENV_VENV/bin/pytest" envserver/tests -q

# drlaas-crds with --all-features: its CRD tests (schema up to date, CEL rules) need the kube feature.
# drlaas-http's tests run a TLS proxy with a private CA; chain, store, trainer and operator use it too.
# Tests that run another crate's binary build it first (drlaas_local::local_pod::build_workspace_binary:
# `cargo build -p drlaas-trainer --bin drlaas-trainer`, `-p drlaas-cli --bin drlaas`, in the test's
# profile, once per test process), so none runs a stale one: the operator's and the CLI's tests build
# the trainer (the first of them compiles it, the others find it fresh), the e2e tests `drlaas` too.
# drlaas-trainer comes before them, so a trainer that does not compile fails under its own name.
# drlaas-chart renders the Helm chart with the pinned helm and checks it and deploy/.
# drlaas-e2e's cluster tests are ignored here (they need KUBECONFIG).
for crate in drlaas-http drlaas-chain "drlaas-crds --all-features" drlaas-store drlaas-envs drlaas-core drlaas-trainer drlaas-local drlaas-operator drlaas-cli drlaas-chart drlaas-e2e; do
  echo "== cargo test -p $crate"
  # shellcheck disable=SC2086 # the crate entry may carry flags
  cargo test -p $crate
done
