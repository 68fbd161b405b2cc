#!/usr/bin/env bash
# Benchmarks: set up like the tests (scripts/setup.sh), install Chaos Toolkit in its own venv
# (benchmarks/.venv-ctk), then run `python -m benchmarks` with any arguments given, e.g.
#   bash scripts/bench.sh                 # everything, ~10 minutes on 2 cores
#   bash scripts/bench.sh --quick         # < 1 minute
#   bash scripts/bench.sh --only fanout --only latency
# Prints a table and writes benchmarks/results/latest.json. Needs root (lab hosts in namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash benchmarks/chaostoolkit/setup.sh
# Profilers for `--profile` and by hand; not project dependencies.
.venv/bin/python -m pip install -q pyinstrument psutil >/dev/null
exec .venv/bin/python -m benchmarks "$@"
