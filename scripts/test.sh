#!/usr/bin/env bash
# Set everything up, then run the whole test suite (unit + integration on real components).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
