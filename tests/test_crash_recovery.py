"""kill -9 the engine at every journal boundary, then `bcdrill recover`: nothing may remain.

Randomised trials over the boundaries (before intent, after intent/before apply, after apply,
mid-revert) and over which fault; after recover the containers match a census taken before,
no journal record is lost (the chain verifies, every record written before the kill is
still there), and a second recover is a no-op.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

from engine.journal import read_journal
from tests.conftest import LAB_NAME, REPO, run_cli

pytestmark = pytest.mark.docker

PLAYBOOK = REPO / "tests" / "data" / "two-faults.yaml"
BOUNDARIES = [
    ("preflight.passed", 0),
    ("fault.intent", 0),
    ("fault.intent", 1),
    ("fault.applied", 0),
    ("fault.applied", 1),
    ("mid-revert", 0),
    ("mid-revert", 1),
]
TRIALS = 50


def _census() -> dict[str, Any]:
    client = docker.from_env()
    out = {}
    for container in client.containers.list(all=True, filters={"label": f"bcdrill.lab={LAB_NAME}"}):
        state = container.attrs["State"]
        out[container.name] = (
            state["Running"],
            state["Paused"],
            sorted(container.attrs["NetworkSettings"]["Networks"]),
        )
    return out


def test_kill_9_at_every_boundary_then_recover_leaves_nothing(lab_env: Path, tmp_path: Path) -> None:
    rng = random.Random(20261128)
    before = _census()
    trials = [BOUNDARIES[i % len(BOUNDARIES)] for i in range(TRIALS)]
    rng.shuffle(trials)
    left_behind = lost = second_recover_changes = 0
    for number, (boundary, index) in enumerate(trials):
        runs = tmp_path / f"trial-{number}"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.crash_harness",
                str(PLAYBOOK),
                str(lab_env),
                str(runs),
                boundary,
                str(index),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == -9, f"{boundary}#{index} did not die: {proc.stderr[-2000:]}"
        (run_dir,) = list(runs.iterdir())
        written = read_journal(run_dir / "journal.jsonl").records
        recovered = run_cli("recover", run_dir.name, "--runs", str(runs), timeout=60)
        assert recovered.returncode == 0, recovered.stderr
        after = read_journal(run_dir / "journal.jsonl").records
        lost += sum(1 for a, b in zip(written, after, strict=False) if a != b) + max(
            0, len(written) - len(after)
        )
        left_behind += _census() != before
        journal_size = len(after)
        again = run_cli("recover", run_dir.name, "--runs", str(runs), timeout=60)
        second_recover_changes += len(read_journal(run_dir / "journal.jsonl").records) != journal_size
        assert again.returncode == 0
    print(
        f"\ncrash trials: {TRIALS}, faults left behind: {left_behind}, journal records lost: {lost}, "
        f"second recover changed something: {second_recover_changes}"
    )
    assert (left_behind, lost, second_recover_changes) == (0, 0, 0)
