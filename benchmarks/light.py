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


def _measure(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run one process to its end: (wall s, CPU s — user + system, what load cannot inflate)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        err.seek(0)
        if code != 0:
            raise RuntimeError(f"{argv[:2]} exited {code}: {err.read().decode(errors='replace')[-1000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def _live_run(root: Path) -> Path:
    """A run folder that accepts acks: an inbox and this process as its live owner."""
    run_dir = root / "20261129T000000Z-bench-ack"
    (run_dir / "inbox").mkdir(parents=True)
    (run_dir / "journal.jsonl").touch()  # what makes a folder a run; the ack never reads it
    (run_dir / "owner.json").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    return run_dir


def _ack_once(run_dir: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """One ``bcdrill ack``: (answer wall s, CPU s, claimed stamp − start s)."""
    argv = [str(VENV_BIN / "bcdrill"), "ack", run_dir.name, "msp.acknowledge", "--by", "bench"]
    argv += ["--runs", str(run_dir.parent)]
    started = time.time()
    wall, cpu = _measure(argv, REPO, env)
    files = sorted((run_dir / "inbox").glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    claimed = float(json.loads(files[-1].read_text())["claimed_at"])
    for path in files:
        path.unlink()
    return wall, cpu, claimed - started


def run(report: Report, quick: bool) -> None:
    """Alternate ``bcdrill validate`` and ``chaos validate``; then time ``bcdrill ack``."""
    reps = 3 if quick else 8
    # The experiment reads these from the environment and its provider module from PYTHONPATH.
    provider = os.pathsep.join(filter(None, (str(BENCH_DIR / "chaostoolkit"), os.environ.get("PYTHONPATH"))))
    env = {
        **os.environ,
        "PYTHONPATH": provider,
        "BCDRILL_PDF": "off",
        "BENCH_CONTAINER": "storefront",
        "BENCH_URL": "http://127.0.0.1/",
    }
    have_ctk = (CTK_VENV / "bin" / "chaos").exists()
    if not have_ctk:
        report.notes.append("Chaos Toolkit not installed: run benchmarks/chaostoolkit/setup.sh")
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    work = Path(tempfile.mkdtemp(prefix="bcdrill-bench-light-"))
    for _ in range(reps):
        ours.append(_measure([str(VENV_BIN / "bcdrill"), "validate", str(SCENARIO)], REPO, env))
        if have_ctk:
            ctk = [str(CTK_VENV / "bin" / "chaos"), "--no-version-check", "--no-log-file", "validate"]
            theirs.append(_measure([*ctk, str(EXPERIMENT)], work, env))
    for tool, samples in (("bcdrill validate", ours), ("chaos validate", theirs)):
        if samples:
            report.add(figure(FAMILY, f"validate: {tool}, wall", [w for w, _ in samples], unit="ms"))
            report.add(figure(FAMILY, f"validate: {tool}, CPU", [c for _, c in samples], unit="ms"))
    run_dir = _live_run(work / "runs")
    acks = [_ack_once(run_dir, env) for _ in range(reps)]
    walls = [w for w, _, _ in acks]
    report.add(figure(FAMILY, "ack: bcdrill ack answers, wall", walls, unit="ms", goal_max=GOAL_ACK_S * 1000))
    report.add(figure(FAMILY, "ack: bcdrill ack, CPU", [c for _, c, _ in acks], unit="ms"))
    report.add(
        figure(
            FAMILY,
            "ack: stamp − command start",
            [e for _, _, e in acks],
            unit="ms",
            goal_max=50,
            on="abs_p95",
        )
    )
