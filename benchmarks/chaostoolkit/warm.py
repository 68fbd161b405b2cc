"""Run the Chaos Toolkit experiment several times in one process (the warm case).

.venv-ctk/bin/python warm.py EXPERIMENT COUNT   → one JSON line: per-run wall seconds
"""

from __future__ import annotations

import json
import sys
import time

from chaoslib.experiment import ensure_experiment_is_valid, run_experiment
from chaoslib.loader import load_experiment


def main() -> None:
    path, count = sys.argv[1], min(int(sys.argv[2]), 50)
    walls = []
    for _ in range(count):
        started = time.monotonic()
        experiment = load_experiment(path)
        ensure_experiment_is_valid(experiment)
        journal = run_experiment(experiment, settings={})
        walls.append(time.monotonic() - started)
        if journal.get("status") != "completed":
            raise SystemExit(f"experiment status {journal.get('status')!r}")
    print(json.dumps({"walls": walls}))


if __name__ == "__main__":
    main()
