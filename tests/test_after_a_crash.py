"""After a kill -9, the next drill just works: no manual step, nothing left behind.

* a real ``bcdrill run`` (through Prefect, default mode: no ``PREFECT_API_URL``, so the run
  starts its own temporary server) is killed with SIGKILL during its fault; ``bcdrill
  recover`` reverts the fault and frees the environment's Prefect slot; the next ``bcdrill
  run`` on the same environment completes, and no Prefect process of the killed run is left;
* a run killed with a torn last journal line: ``recover`` sets the torn bytes aside as
  evidence before it appends, and ``report`` and the hash chain pass afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from engine.record.journal import read_journal
from engine.record.runstore import pid_alive
from tests.conftest import BCDRILL, LAB_NAME, REPO
from tests.journal_helpers import types, wait_for_record

PLAYBOOK = REPO / "playbooks" / "storefront-down.yaml"
STOREFRONT = f"bcdrill-{LAB_NAME}-storefront"
PREFECT_START_S = 400  # a temporary Prefect server's cold start on a loaded 2-core machine

pytestmark = pytest.mark.docker


def _running(name: str) -> bool:
    return bool(docker.from_env().containers.get(name).attrs["State"]["Running"])


def _default_mode_env(prefect_home: Path) -> dict[str, str]:
    """The environment of a user who configured no Prefect server (a private Prefect home)."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return {**env, "PREFECT_HOME": str(prefect_home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def _bcdrill(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BCDRILL, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env, check=False
    )


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _processes_using(prefect_home: Path) -> list[str]:
    """Live processes whose environment points at this Prefect home (our servers and clients)."""
    marker = f"PREFECT_HOME={prefect_home}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        pid = int(environ.parent.name)
        try:
            if pid != os.getpid() and marker in environ.read_bytes().split(b"\0") and pid_alive(pid):
                found.append((environ.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def _wait_until_dead(pids: set[int], timeout_s: float) -> set[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive = {pid for pid in pids if pid_alive(pid)}
        if not alive:
            return set()
        time.sleep(0.1)
    return alive


@pytest.mark.prefect
def test_kill_9_during_a_fault_then_recover_and_the_next_run_just_works(
    lab_env: Path, tmp_path: Path
) -> None:
    prefect_home = tmp_path / "prefect-home"
    env = _default_mode_env(prefect_home)
    runs = tmp_path / "runs"
    common = ("--env", str(lab_env), "--runs", str(runs))
    proc = subprocess.Popen(
        [BCDRILL, "run", str(PLAYBOOK), *common, "--responders", "manual", "--time-scale", "0.5"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        run_dir = wait_for_record(runs, "fault.applied", timeout_s=PREFECT_START_S)
    except AssertionError:
        proc.kill()
        raise AssertionError(proc.communicate(timeout=30)[1][-3000:]) from None
    below = _descendants(proc.pid)
    assert below, "the run started its temporary Prefect server as its child"
    os.kill(proc.pid, signal.SIGKILL)  # the run only: its server must not outlive it
    proc.communicate(timeout=30)
    assert _wait_until_dead(below, timeout_s=15) == set(), "a process of the killed run is left"
    assert not _running(STOREFRONT)  # nothing ran after the kill: the fault remains

    recovered = _bcdrill("recover", run_dir.name, "--runs", str(runs), env=env, timeout=PREFECT_START_S)
    assert recovered.returncode == 0, recovered.stderr[-3000:]
    assert "reverted stop-web" in recovered.stdout
    assert "released the Prefect slot" in recovered.stdout
    assert _running(STOREFRONT)

    following = _bcdrill(
        "run", str(PLAYBOOK), *common, "--responders", "simulate", "--seed", "3", "--time-scale", "0.005",
        env=env,
        timeout=2 * PREFECT_START_S,
    )  # fmt: skip
    assert following.returncode in (0, 1), following.stderr[-3000:]
    assert "Traceback" not in following.stderr
    assert _processes_using(prefect_home) == []


def test_a_torn_last_line_is_set_aside_by_recover_and_the_journal_stays_valid(
    lab_env: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    harness = [sys.executable, "-m", "tests.crash_harness", str(PLAYBOOK), str(lab_env), str(runs)]
    killed = subprocess.run(
        [*harness, "fault.applied", "0"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert killed.returncode == -9, killed.stderr[-3000:]
    (run_dir,) = list(runs.iterdir())
    journal = run_dir / "journal.jsonl"
    written = read_journal(journal).records
    torn = b'{"at": "2026-11-29T10:00:00.000Z", "data": {"fault": "stop-web", "verif'
    with journal.open("ab") as stream:
        stream.write(torn)  # the kill hit the engine mid-write

    env = {k: v for k, v in os.environ.items()}
    recovered = _bcdrill("recover", run_dir.name, "--runs", str(runs), env=env, timeout=120)
    assert recovered.returncode == 0, recovered.stderr[-3000:]
    assert "reverted stop-web" in recovered.stdout and "torn last record set aside" in recovered.stdout
    assert _running(STOREFRONT)

    contents = read_journal(journal)  # the whole chain verifies
    assert not contents.torn_tail
    assert contents.records[: len(written)] == written  # nothing written before the kill was lost
    assert types(run_dir)[len(written)] == "journal.tail_repaired"
    assert types(run_dir)[-1] == "recover.finished"
    (side,) = run_dir.glob("journal.jsonl.torn-*")
    assert side.read_bytes() == torn

    report = _bcdrill("report", run_dir.name, "--runs", str(runs), "--format", "json", env=env, timeout=120)
    assert report.returncode == 0, report.stderr[-3000:]
    assert json.loads(report.stdout)["run_id"] == run_dir.name
    again = _bcdrill("recover", run_dir.name, "--runs", str(runs), env=env, timeout=120)
    assert again.returncode == 0 and "nothing to recover" in again.stdout
