"""Light commands, side by side with Chaos Toolkit: ``bcdrill validate`` vs ``chaos validate``,
and how fast ``bcdrill ack`` answers and how close its stamp is to the moment it was started.

Needs no lab: validation is offline, and the ack goes into a run folder whose owner is this
benchmark process (the engine side is not needed to measure the client).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import BENCH_DIR, REPO, VENV_BIN, Report, figure

FAMILY = "light"
SCENARIO = BENCH_DIR / "scenarios" / "kill-web.yaml"
EXPERIMENT = BENCH_DIR / "chaostoolkit" / "kill-web.json"
CTK_VENV = BENCH_DIR / ".venv-ctk"
GOAL_ACK_S = 0.300


def _wall(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.monotonic()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=120, check=False)
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"{argv[:2]} exited {result.returncode}: {result.stderr.decode()[-1000:]}")
    return wall


def _live_run(root: Path) -> Path:
    """A run folder that accepts acks: an inbox and this process as its live owner."""
    run_dir = root / "20261129T000000Z-bench-ack"
    (run_dir / "inbox").mkdir(parents=True)
    (run_dir / "owner.json").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    return run_dir


def _ack_once(run_dir: Path, env: dict[str, str]) -> tuple[float, float]:
    """One ``bcdrill ack``: (answer wall s, claimed stamp − start s)."""
    argv = [str(VENV_BIN / "bcdrill"), "ack", run_dir.name, "msp.acknowledge", "--by", "bench"]
    argv += ["--runs", str(run_dir.parent)]
    started = time.time()
    wall = _wall(argv, REPO, env)
    files = sorted((run_dir / "inbox").glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    claimed = float(json.loads(files[-1].read_text())["claimed_at"])
    for path in files:
        path.unlink()
    return wall, claimed - started


def run(report: Report, quick: bool) -> None:
    """Alternate ``bcdrill validate`` and ``chaos validate``; then time ``bcdrill ack``."""
    reps = 3 if quick else 8
    env = {**os.environ, "BCDRILL_PDF": "off"}
    have_ctk = (CTK_VENV / "bin" / "chaos").exists()
    if not have_ctk:
        report.notes.append("Chaos Toolkit not installed: run benchmarks/chaostoolkit/setup.sh")
    ours: list[float] = []
    theirs: list[float] = []
    work = Path(tempfile.mkdtemp(prefix="bcdrill-bench-light-"))
    for _ in range(reps):
        ours.append(_wall([str(VENV_BIN / "bcdrill"), "validate", str(SCENARIO)], REPO, env))
        if have_ctk:
            ctk = [str(CTK_VENV / "bin" / "chaos"), "--no-version-check", "--no-log-file", "validate"]
            theirs.append(_wall([*ctk, str(EXPERIMENT)], work, env))
    report.add(figure(FAMILY, "validate: bcdrill validate, wall", ours, unit="ms"))
    if theirs:
        report.add(figure(FAMILY, "validate: chaos validate, wall", theirs, unit="ms"))
    run_dir = _live_run(work / "runs")
    samples = [_ack_once(run_dir, env) for _ in range(reps)]
    walls = [w for w, _ in samples]
    report.add(figure(FAMILY, "ack: bcdrill ack answers, wall", walls, unit="ms", goal_max=GOAL_ACK_S * 1000))
    report.add(
        figure(
            FAMILY,
            "ack: stamp − command start",
            [e for _, e in samples],
            unit="ms",
            goal_max=50,
            on="abs_p95",
        )
    )
