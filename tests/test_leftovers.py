"""Which dead runs still carry faults on an environment (what ``bcdrill run`` refuses on)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from engine.errors import JournalTamperedError
from engine.record.leftovers import stale_runs
from engine.record.records import RecordType
from reports.testing import ScriptedRun, run_started
from tests.conftest import REPO, run_cli


def _run(runs: Path, name: str, environment: str = "lab") -> ScriptedRun:
    data = run_started(run_id=name)
    data["environment"]["name"] = environment
    return ScriptedRun(runs / name).record(RecordType.RUN_STARTED, **data)


def test_only_dead_runs_on_the_environment_with_open_faults_are_stale(tmp_path: Path) -> None:
    _run(tmp_path, "1-crashed").inject("stop-web").inject("stop-db")
    _run(tmp_path, "2-reverted").inject("stop-web").revert("stop-web")
    _run(tmp_path, "3-other-environment", environment="other").inject("stop-web")
    live = _run(tmp_path, "4-live").inject("stop-web")
    (live.run_dir / "owner.json").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    _run(tmp_path, "5-revert-failed").inject("stop-web").revert("stop-db").record(
        RecordType.RUN_ENDED, reason="revert failed: stop-web"
    )

    found = {run.name: faults for run, faults in stale_runs("lab", tmp_path)}

    assert found == {"1-crashed": ["stop-web", "stop-db"], "5-revert-failed": ["stop-web"]}
    assert [run.name for run, _ in stale_runs("other", tmp_path)] == ["3-other-environment"]


def test_a_dead_owner_whose_pid_another_process_took_is_dead(tmp_path: Path) -> None:
    """A run's owner is its pid and the moment that process started: after a kill -9 the pid
    may be given to another process, which must not make the dead run look live (recover would
    skip it, and its faults would stay)."""
    from engine.orchestration.slot import SlotHolder
    from engine.record.runstore import owner_alive, process_start, write_owner

    run = _run(tmp_path, "1-owned").inject("stop-web")
    write_owner(run.run_dir)
    assert owner_alive(run.run_dir)
    owner = json.loads((run.run_dir / "owner.json").read_text())
    assert owner["pid"] == os.getpid() and owner["pid_start"] == process_start(os.getpid())
    (run.run_dir / "owner.json").write_text(json.dumps({**owner, "pid_start": "1"}))  # another process
    assert not owner_alive(run.run_dir)
    assert [r.name for r, _ in stale_runs("lab", tmp_path)] == ["1-owned"]
    del owner["pid_start"]  # written before the start was kept: the pid alone
    (run.run_dir / "owner.json").write_text(json.dumps(owner))
    assert owner_alive(run.run_dir)

    holder = SlotHolder("lab", "1-owned", os.getpid(), socket.gethostname(), "", pid_start="1")
    assert holder.dead()
    assert not SlotHolder("lab", "1-owned", os.getpid(), socket.gethostname(), "").dead()


def test_a_journal_whose_first_line_is_unreadable_is_read_in_full(tmp_path: Path) -> None:
    """The first-record shortcut never hides a run: a journal it cannot read is read in full,
    and a damaged one is reported, not skipped."""
    run = _run(tmp_path, "1-crashed").inject("stop-web")
    run.path.write_bytes(b"\n" + run.path.read_bytes())  # no record on the first line

    with pytest.raises(JournalTamperedError, match="1-crashed"):
        stale_runs("lab", tmp_path)


def test_bcdrill_run_refuses_an_environment_a_dead_run_left_faults_on(tmp_path: Path) -> None:
    """Before anything starts (no Prefect, no target contacted): the crashed run is named, with
    the command that recovers it."""
    _run(tmp_path, "20260101T000000Z-web-down-0001").inject("stop-web")
    playbook, env = (
        REPO / "playbooks" / "storefront-down.yaml",
        REPO / "playbooks" / "plans" / "demo-bakery-lab.environment.yaml",
    )

    result = run_cli(
        "run", str(playbook), "--env", str(env),
        "--runs", str(tmp_path), "--in-process", timeout=60,
    )  # fmt: skip

    assert result.returncode == 4, result.stderr
    assert "bcdrill recover 20260101T000000Z-web-down-0001" in result.stderr
    assert "stop-web" in result.stderr and "Traceback" not in result.stderr
