# shellcheck shell=bash
# Source this file: installs the environment server's Python (envserver/, drlaas-envserver) with pinned
# versions into a cached venv if it is not there yet, and exports DRLAAS_ENV_PYTHON, the python that
# runs `-m drlaas_envserver`, for the Rust tests that start a server. The venv lives under
# $HOME/.cache/drlaas (as the torch of tools/torch-env.sh), named by a hash of the pin list, so later
# runs on the same machine reuse it and a changed pin gets a fresh one.
#   source tools/envserver-env.sh
# The package itself is installed editable from this checkout, again whenever the venv's copy points at
# another checkout (CI's fresh clone) or envserver/pyproject.toml changed; that takes a second or two.
_envserver_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# numpy: the version pip resolves for the others (gymnasium and pettingzoo take any numpy >= 1.21).
# setuptools: the build backend of envserver/pyproject.toml, so the editable install needs no download.
DRLAAS_ENVSERVER_PINS="gymnasium[classic-control]==1.4.0 pettingzoo==1.27.0 numpy==2.4.6 pytest==9.2.0 ruff==0.17.5 setuptools==84.2.1"
_envserver_key="$(printf '%s\n' "$DRLAAS_ENVSERVER_PINS" "$(python3 --version 2>&1)" | sha256sum | cut -c1-12)"
DRLAAS_ENV_VENV="${DRLAAS_ENV_VENV:-$HOME/.cache/drlaas/envserver-$_envserver_key}"

if [ ! -f "$DRLAAS_ENV_VENV/.drlaas-ready" ] || [ "$(cat "$DRLAAS_ENV_VENV/.drlaas-ready")" != "$DRLAAS_ENVSERVER_PINS" ]; then
  echo "== installing the environment server's Python into $DRLAAS_ENV_VENV (once per machine)"
  rm -rf "$DRLAAS_ENV_VENV"
  mkdir -p "$(dirname "$DRLAAS_ENV_VENV")"
  if ! python3 -m venv "$DRLAAS_ENV_VENV" 2>/dev/null; then
    # Debian splits venv support out of python3.
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$DRLAAS_ENV_VENV"
  fi
  # shellcheck disable=SC2086 # the pin list is one word per package
  "$DRLAAS_ENV_VENV/bin/pip" install --quiet --disable-pip-version-check $DRLAAS_ENVSERVER_PINS
  echo "$DRLAAS_ENVSERVER_PINS" > "$DRLAAS_ENV_VENV/.drlaas-ready"
fi

# The editable install: where the venv's drlaas_envserver comes from, and which pyproject.toml it used.
_envserver_want="$_envserver_root/envserver $(sha256sum "$_envserver_root/envserver/pyproject.toml" | cut -d' ' -f1)"
if [ "$(cat "$DRLAAS_ENV_VENV/.drlaas-envserver" 2>/dev/null)" != "$_envserver_want" ] \
  || ! "$DRLAAS_ENV_VENV/bin/python" -c "import drlaas_envserver" 2>/dev/null; then
  echo "== installing envserver/ (editable) into $DRLAAS_ENV_VENV"
  "$DRLAAS_ENV_VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
    -e "$_envserver_root/envserver"
  echo "$_envserver_want" > "$DRLAAS_ENV_VENV/.drlaas-envserver"
fi

export DRLAAS_ENV_VENV
export DRLAAS_ENV_PYTHON="$DRLAAS_ENV_VENV/bin/python"
unset _envserver_root _envserver_key _envserver_want
