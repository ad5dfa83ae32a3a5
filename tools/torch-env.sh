# Source this file: installs the pinned PyTorch (for its libtorch) into a cached venv if it is not there
# yet, and exports what torch-sys needs to build and link against it (docs/architecture.md#toolchain: tch 0.26.0 needs
# exactly torch 2.13.0). The venv lives under $HOME/.cache so later runs on the same machine reuse it.
#   source tools/torch-env.sh
TORCH_VERSION=2.13.0
DRLAAS_TORCH_VENV="${DRLAAS_TORCH_VENV:-$HOME/.cache/drlaas/torch-$TORCH_VERSION}"

if [ ! -f "$DRLAAS_TORCH_VENV/.drlaas-ready" ]; then
  echo "== installing torch $TORCH_VERSION into $DRLAAS_TORCH_VENV (once per machine)"
  rm -rf "$DRLAAS_TORCH_VENV"
  mkdir -p "$(dirname "$DRLAAS_TORCH_VENV")"
  if ! python3 -m venv "$DRLAAS_TORCH_VENV" 2>/dev/null; then
    # Debian splits venv support out of python3.
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$DRLAAS_TORCH_VENV"
  fi
  "$DRLAAS_TORCH_VENV/bin/pip" install --quiet --disable-pip-version-check "torch==$TORCH_VERSION"
  # Triton is only for torch.compile on GPUs; the trainer never uses it (saves 0.7 GB).
  "$DRLAAS_TORCH_VENV/bin/pip" uninstall --quiet --yes triton || true
  "$DRLAAS_TORCH_VENV/bin/python" -W ignore -c "import torch; assert torch.__version__.startswith('$TORCH_VERSION'), torch.__version__"
  touch "$DRLAAS_TORCH_VENV/.drlaas-ready"
fi

export LIBTORCH_USE_PYTORCH=1
export PATH="$DRLAAS_TORCH_VENV/bin:$PATH"
