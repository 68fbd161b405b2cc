#!/usr/bin/env bash
# Set everything up, then run the demo drill on the local lab with simulated responders.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/bcdrill demo "$@"
