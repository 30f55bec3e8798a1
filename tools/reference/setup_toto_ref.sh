#!/usr/bin/env bash
# Build the PyTorch reference environment for Toto parity fixtures (docs/models.md#toto-reference-env).
# Usage: bash tools/reference/setup_toto_ref.sh [VENV_DIR]   (default .venv-ref-toto)
# CPU only; torch is installed first so pip never pulls a CUDA wheel. Never installs into system Python.
set -euo pipefail
VENV="${1:-.venv-ref-toto}"
mkdir -p "$(dirname "$VENV")"
python3 -m venv "$VENV"
"$VENV/bin/pip" install torch==2.13.0
"$VENV/bin/pip" install --no-deps toto-ts==0.2.0
"$VENV/bin/pip" install numpy==1.26.4 einops==0.7.0 jaxtyping==0.2.29 rotary-embedding-torch==0.8.6 \
    safetensors "huggingface_hub<1.0" gluonts==0.16.2 lightning scipy
"$VENV/bin/python" -c "import torch, toto; from toto.model.toto import Toto; print('torch', torch.__version__, 'ok')"
