#!/usr/bin/env bash
# Creates .venv-tools/ with the Python packages tools/ needs (torch, transformers, tokenizers,
# safetensors, gguf, numpy) to regenerate the committed reference fixtures. CI never needs it.
#   tools/venv.sh && .venv-tools/bin/python tools/reference/make_models.py
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-tools/bin/python ]; then
  python3 -m venv .venv-tools
fi
.venv-tools/bin/pip install -q -r tools/reference/requirements.txt
echo "tools venv ready: .venv-tools/bin/python"
