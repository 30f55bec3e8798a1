#!/usr/bin/env bash
# Build the PyTorch reference environment for Kronos parity fixtures (docs/models.md#kronos-reference-env).
# Default location .venv-ref-kronos in the repository root (git-ignored); jaxsim never imports it.
# Usage: bash tools/reference/setup_kronos_ref.sh [VENV_DIR]
set -euo pipefail
VENV="${1:-.venv-ref-kronos}"
PY="${PYTHON:-python3}"
mkdir -p "$(dirname "$VENV")"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
# torch==2.13.0 resolves to the local CPU wheel on these machines; never a CUDA build.
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q --no-deps kronos-finance==0.1.5
"$VENV/bin/pip" install -q numpy==2.4.6 pandas==3.1.1 einops==0.8.2 huggingface_hub==2.4.0 \
    tqdm==4.70.1 safetensors==0.8.0
"$VENV/bin/python" -c "from kronos_finance._vendor.kronos_model import Kronos, KronosTokenizer, KronosPredictor; import torch; print('kronos reference ok, torch', torch.__version__)"
