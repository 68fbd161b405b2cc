#!/usr/bin/env bash
# Install Chaos Toolkit for the side-by-side benchmark in its own virtualenv,
# benchmarks/.venv-ctk (git-ignored), so it never mixes with bcdrill's dependencies.
# Idempotent; needs only PyPI. 1.19.0 is the last release for Python 3.11 (1.20+ need 3.12).
set -euo pipefail
cd "$(dirname "$0")/.."
CTK_VERSION=${CTK_VERSION:-1.19.0}
PYTHON=${PYTHON:-python3}
if [ ! -x .venv-ctk/bin/python ]; then
  "$PYTHON" -m venv .venv-ctk
fi
if ! .venv-ctk/bin/chaos --version 2>/dev/null | grep -q "$CTK_VERSION"; then
  .venv-ctk/bin/python -m pip install -q --upgrade pip >/dev/null
  # docker: the experiment's python provider kills and starts the container like bcdrill does
  .venv-ctk/bin/python -m pip install -q "chaostoolkit==$CTK_VERSION" "docker>=7"
fi
echo "chaostoolkit: $(.venv-ctk/bin/chaos --version 2>&1 | tail -1)"
