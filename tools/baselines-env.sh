# shellcheck shell=bash
# Source this file (after tools/torch-env.sh): installs the competitors of the trainer's benchmarks
# (Stable-Baselines3, with Gymnasium at the environment server's version) into a cached venv if it is
# not there yet, and exports DRLAAS_BASELINES_PYTHON for `cargo bench -p drlaas-trainer --bench
# baselines`. Only benchmarks use it; the tests do not.
# SB3 runs on the torch of tools/torch-env.sh (a .pth file puts that venv's site-packages on the path),
# so the comparison uses the same libtorch as the trainer and nothing downloads a second torch.
# The venv also has MuJoCo and drlaas-envserver (editable, from this checkout), and DRLAAS_ENV_PYTHON
# is pointed at it: the trainer's environment servers then run the very Gymnasium and MuJoCo SB3 runs.
#   source tools/torch-env.sh && source tools/envserver-env.sh && source tools/baselines-env.sh
if [ -z "${DRLAAS_TORCH_VENV:-}" ]; then
  echo "baselines-env.sh: source tools/torch-env.sh first" >&2
  return 1
fi
DRLAAS_BASELINES_PINS="stable-baselines3==2.9.2 gymnasium[classic-control,mujoco]==1.4.0 mujoco==4.0.1"
_baselines_key="$(printf '%s\n' "$DRLAAS_BASELINES_PINS" "$DRLAAS_TORCH_VENV" "$(python3 --version 2>&1)" | sha256sum | cut -c1-12)"
DRLAAS_BASELINES_VENV="${DRLAAS_BASELINES_VENV:-$HOME/.cache/drlaas/baselines-$_baselines_key}"

if [ ! -f "$DRLAAS_BASELINES_VENV/.drlaas-ready" ]; then
  echo "== installing Stable-Baselines3 into $DRLAAS_BASELINES_VENV (once per machine)"
  rm -rf "$DRLAAS_BASELINES_VENV"
  mkdir -p "$(dirname "$DRLAAS_BASELINES_VENV")"
  python3 -m venv "$DRLAAS_BASELINES_VENV"
  _baselines_site="$("$DRLAAS_BASELINES_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  "$DRLAAS_TORCH_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
    > "$_baselines_site/drlaas-torch.pth"
  # shellcheck disable=SC2086 # the pin list is one word per package
  "$DRLAAS_BASELINES_VENV/bin/pip" install --quiet --disable-pip-version-check $DRLAAS_BASELINES_PINS
  "$DRLAAS_BASELINES_VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
    -e "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/envserver"
  "$DRLAAS_BASELINES_VENV/bin/python" -c "import stable_baselines3, torch, mujoco, drlaas_envserver"
  touch "$DRLAAS_BASELINES_VENV/.drlaas-ready"
fi

export DRLAAS_BASELINES_PYTHON="$DRLAAS_BASELINES_VENV/bin/python"
export DRLAAS_ENV_PYTHON="$DRLAAS_BASELINES_PYTHON"
unset _baselines_key _baselines_site
