#!/usr/bin/env bash
# Sets up liveworld on a fresh Linux machine: the system library ViZDoom needs for sound, a
# virtual environment in .venv, a CPU build of torch on machines without an NVIDIA GPU (never
# the multi-GB CUDA build), and the package with its test dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libopenal\.so\.1'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing libopenal1 (ViZDoom's audio)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenal1 >/dev/null
  elif command -v sudo >/dev/null && command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenal1 >/dev/null
  else
    echo "setup: WARNING libopenal1 is missing, so ViZDoom will record silence. Install it: sudo apt-get install libopenal1" >&2
  fi
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip

if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    .venv/bin/python -m pip install -q torch          # a GPU machine: the CUDA build is the right one
  elif .venv/bin/python -m pip install -q --dry-run --report /tmp/liveworld-torch.json torch==2.13.0 >/dev/null 2>&1 \
       && grep -qE '(\+|%2B)cpu' /tmp/liveworld-torch.json; then
    .venv/bin/python -m pip install -q torch==2.13.0  # a CPU wheel is at hand (a local wheel or index)
  else
    .venv/bin/python -m pip install -q torch==2.13.0 --index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
  fi
fi
.venv/bin/python -m pip install -q -e ".[dev]"
echo "setup: done ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
