"""Run a drill in this process (no Prefect) and SIGKILL ourselves at a chosen journal boundary.

Usage: python -m tests.crash_harness PLAYBOOK ENV RUNS BOUNDARY INDEX
BOUNDARY is a record type to die right after (``preflight.passed`` = before any intent,
``fault.intent`` = after intent / before apply, ``fault.applied``) or ``mid-revert`` (die
inside a revert, after the revert call, before it is journaled). INDEX picks the n-th one.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from engine.plugins import resolve_parts
from engine.record.runstore import create_run_dir, new_run_id
from engine.run.runner import DrillRun, RunOptions
from engine.spec.loader import load_environment, load_playbook


def main(playbook: str, env: str, runs: str, boundary: str, index: int) -> None:
    """Run until the boundary, then die without any cleanup."""
    seen = {"n": 0}

    def die_after(record: Mapping[str, Any]) -> None:
        if record["type"] == boundary:
            if seen["n"] == index:
                os.kill(os.getpid(), signal.SIGKILL)
            seen["n"] += 1

    def revert_then_die(call: Callable[[], None], _fault_id: str) -> None:
        call()
        if boundary == "mid-revert":
            if seen["n"] == index:
                os.kill(os.getpid(), signal.SIGKILL)
            seen["n"] += 1

    pb = load_playbook(Path(playbook))
    run_dir = create_run_dir(new_run_id(pb.id), Path(runs))
    drill = DrillRun(
        pb,
        load_environment(Path(env)),
        run_dir,
        RunOptions(responders="auto"),
        resolve_parts("auto", False),
        listeners=(die_after,),
        revert_hook=revert_then_die,
    )
    drill.execute()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
