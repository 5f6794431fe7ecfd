#!/usr/bin/env bash
# Sets up (if needed) and runs the test suite: fast, CPU-only, tiny configs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The browser test drives Debian's Chromium (Playwright's own browser download is not possible here).
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test: installing chromium for the browser test"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test: chromium is missing, so the browser test is skipped (sudo apt-get install chromium)" >&2
  fi
fi
export OMP_WAIT_POLICY=PASSIVE
.venv/bin/ruff check liveworld tests --select F,E9   # unused names, syntax errors
exec .venv/bin/python -m pytest tests -q "$@"
