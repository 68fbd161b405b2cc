"""kill -9 the engine at every journal boundary, then `bcdrill recover`: nothing may remain.

Randomised trials over the boundaries (before intent, after intent/before apply, after
apply, mid-revert) and over which fault (two on containers, one on an SSH host). After
recover, the containers and the hosts (iptables, qdiscs, processes) match a census taken
before; no journal record is lost (the chain verifies, every record written before the kill
is still there); and a second recover is a no-op.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

from engine.lab.hosts import host_prefix
from engine.record.journal import read_journal
from tests.conftest import LAB_NAME, REPO, run_cli

pytestmark = pytest.mark.docker

PLAYBOOK = REPO / "tests" / "data" / "crash-mix.yaml"  # two container faults and one SSH host fault
BOUNDARIES = [
    ("preflight.passed", 0),
    *((kind, n) for kind in ("fault.intent", "fault.applied", "mid-revert") for n in range(3)),
]
# every boundary once in the suite (each fault at each of its boundaries); BCDRILL_CRASH_TRIALS=200
# for a longer soak
TRIALS = int(os.environ.get("BCDRILL_CRASH_TRIALS", str(len(BOUNDARIES))))
TICK = re.compile(r"^sleep \d+$")  # the lab services' own loop ticks come and go


def _host_census() -> dict[str, Any]:
    """iptables rules (no counters), qdiscs and processes inside each lab host's namespace."""
    prefix, _ = host_prefix(LAB_NAME)
    census: dict[str, Any] = {}
    for namespace in (f"{prefix}-app1", f"{prefix}-app2"):

        def run(*argv: str, ns: str = namespace) -> str:
            return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True).stdout

        rules = [
            re.sub(r"\[\d+:\d+\]", "", ln) for ln in run("iptables-save").splitlines() if _meaningful(ln)
        ]
        pids = subprocess.run(
            ["ip", "netns", "pids", namespace], capture_output=True, text=True
        ).stdout.split()
        commands = sorted(_cmdline(pid) for pid in pids)
        census[namespace] = (
            rules,
            run("tc", "qdisc", "show"),
            [c for c in commands if c and "sshd: " not in c and not TICK.match(c)],
        )
    return census


def _meaningful(line: str) -> bool:
    """Rules and non-default chains; a table that merely got loaded (empty, ACCEPT) is no change."""
    if line.startswith("-"):
        return True
    builtin_accept = re.match(r"^:(INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) ACCEPT", line)
    return line.startswith(":") and not builtin_accept


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def _census() -> dict[str, Any]:
    client = docker.from_env()
    out: dict[str, Any] = {"hosts": _host_census()}
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
        # killed just after an intent, recover first waits out the inject (a host's: ~38 s here)
        recovered = run_cli("recover", run_dir.name, "--runs", str(runs), timeout=120)
        assert recovered.returncode == 0, recovered.stderr
        after = read_journal(run_dir / "journal.jsonl").records
        lost += sum(1 for a, b in zip(written, after, strict=False) if a != b) + max(
            0, len(written) - len(after)
        )
        now = _census()
        if now != before:
            left_behind += 1
            diff = {k: (before.get(k), now.get(k)) for k in before | now if before.get(k) != now.get(k)}
            print(f"trial {number} ({boundary}#{index}) left: {diff}")
        journal_size = len(after)
        again = run_cli("recover", run_dir.name, "--runs", str(runs), timeout=60)
        second_recover_changes += len(read_journal(run_dir / "journal.jsonl").records) != journal_size
        assert again.returncode == 0
    print(
        f"\ncrash trials: {TRIALS}, faults left behind: {left_behind}, journal records lost: {lost}, "
        f"second recover changed something: {second_recover_changes}"
    )
    assert (left_behind, lost, second_recover_changes) == (0, 0, 0)
