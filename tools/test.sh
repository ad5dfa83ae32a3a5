#!/usr/bin/env bash
# The test command of the README: contract tests (forge: unit, fuzz, invariant), the environment
# server's lint and tests (envserver/, Python), and the Rust tests of every crate. Installs the pinned
# tools (npm tools, the torch venv libtorch comes from, the envserver venv) first if needed.
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
# The Python of the benchmarks (SB3, run by `cargo bench -p drlaas-trainer --bench baselines`) is held to
# the same rules.
"$DRLAAS_ENV_VENV/bin/ruff" check envserver
"$DRLAAS_ENV_VENV/bin/ruff" check --config envserver/pyproject.toml trainer-image/benches
"$DRLAAS_ENV_VENV/bin/ruff" format --check envserver
"$DRLAAS_ENV_VENV/bin/ruff" format --check --config envserver/pyproject.toml trainer-image/benches
"$DRLAAS_ENV_VENV/bin/pytest" envserver/tests -q

# The Rust tests of the whole workspace in one cargo run, so each dependency is built once with the
# workspace's features (a `cargo test -p` per crate resolves features per crate and builds most
# dependencies again for each: it filled CI's disk). --no-fail-fast runs every crate's tests and the
# summary names each failed target (`-p CRATE --test NAME`).
# The features unify as the crates use each other: drlaas-crds gets `kube` (its CRD tests: schema up to
# date, CEL rules), drlaas-http `testing` (a TLS proxy with a private CA, which chain, store, trainer and
# operator use too).
# Tests that run another crate's binary build it first (drlaas_local::local_pod::build_workspace_binary:
# `cargo build --workspace --bin drlaas-trainer` or `--bin drlaas`, in the test's profile, once per test
# process), so none runs a stale one.
# drlaas-chart renders the Helm chart with the pinned helm and checks it and deploy/.
# drlaas-e2e's cluster tests are ignored here (they need KUBECONFIG).
echo "== cargo test --workspace"
cargo test --workspace --no-fail-fast
