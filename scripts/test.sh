#!/usr/bin/env bash
# Sets up (if needed) and runs the test suite: fast, CPU-only, tiny configs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_WAIT_POLICY=PASSIVE
exec .venv/bin/python -m pytest tests -q "$@"
