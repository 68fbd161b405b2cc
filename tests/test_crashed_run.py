"""A journal without ``run.ended`` is a crashed run: void, never history, and ``recover`` finishes it.

A kill -9 can land while no fault is open (preflight, the wait for the secret moment, the
hotwash): there is nothing to revert, yet the run must still be closed, debriefed void and sealed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.record.journal import JOURNAL_NAME, read_journal
from engine.record.signing import SIG_NAME, init_key
from engine.run.recovery import recover_run
from reports.debrief.history import counts_for_history
from reports.testing import ScriptedRun, run_started
from tests.conftest import REPO
from tests.journal_helpers import types
from tests.test_scoring import debrief_of

ENVIRONMENT = REPO / "tests" / "corpus" / "valid" / "environment.yaml"


def _tear(run: ScriptedRun, partial: bytes) -> None:
    """kill -9 mid-write: the journal ends in half a record."""
    run.journal.close()
    with run.path.open("ab") as journal:
        journal.write(partial)


def test_a_journal_cut_during_the_drill_is_void_and_not_history(tmp_path: Path) -> None:
    run = ScriptedRun(tmp_path).start()  # an official drill
    run.at(1).probe("web", "up").at(10).inject("f1").at(11).probe("web", "down")
    run.at(40).step("msp.acknowledge")
    _tear(run, b'{"seq": 6, "type": "step.rec')
    debrief = debrief_of(run)
    assert debrief.outcome == "void" and not counts_for_history(debrief)
    assert debrief.void_reason is not None and "stopped unexpectedly" in debrief.void_reason
    assert [(s.id, s.status) for s in debrief.steps] == [
        ("acknowledge", "on_time"),  # recorded before the crash: graded as usual
        ("restore", "not_reached"),
        ("report", "not_reached"),
    ]
    assert debrief.objectives.rto.met is None


def test_a_journal_cut_in_preflight_is_void(tmp_path: Path) -> None:
    run = ScriptedRun(tmp_path).start()
    run.at(1).probe("web", "up")
    _tear(run, b'{"seq": 3, "ty')
    debrief = debrief_of(run)
    assert debrief.outcome == "void" and not counts_for_history(debrief)
    assert {s.status for s in debrief.steps} == {"not_reached"}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BCDRILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BCDRILL_SIGNING_KEY", raising=False)
    init_key()
    return tmp_path / "home"


def test_recover_finishes_a_run_that_crashed_with_nothing_to_revert(tmp_path: Path, home: Path) -> None:
    run = ScriptedRun(tmp_path / "run")
    run.start()
    shutil.copyfile(ENVIRONMENT, run.run_dir / "environment.yaml")
    run.at(1).probe("web", "up")  # killed while waiting for the secret moment
    _tear(run, b'{"seq": 3, "ty')

    report = recover_run(run.run_dir)

    assert (report.reverted, report.failed, report.finished, report.torn_tail_set_aside) == (
        (),
        (),
        True,
        True,
    )
    assert types(run.run_dir)[-3:] == ["recover.started", "run.ended", "recover.finished"]
    debrief = json.loads((run.run_dir / "debrief.json").read_text(encoding="utf-8"))
    assert debrief["outcome"] == "void"
    assert (run.run_dir / SIG_NAME).exists()
    records = len(read_journal(run.run_dir / JOURNAL_NAME).records)
    assert recover_run(run.run_dir).finished is False  # twice is a no-op
    assert len(read_journal(run.run_dir / JOURNAL_NAME).records) == records


def test_recover_says_it_finished_such_a_run(tmp_path: Path, home: Path) -> None:
    from tests.conftest import run_cli

    run = ScriptedRun(tmp_path / "runs" / "20260101T000000Z-crashed")
    run.start()
    shutil.copyfile(ENVIRONMENT, run.run_dir / "environment.yaml")
    run.at(1).probe("web", "up")
    _tear(run, b'{"seq": 3, "ty')
    result = run_cli("recover", "--runs", str(tmp_path / "runs"), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    said = " ".join(result.stdout.split())  # the console wraps long lines
    assert "never ended it: ended now and debriefed as void" in said and "nothing to recover" not in said
    assert (run.run_dir / "debrief.json").exists(), result.stderr[-2000:]


def test_recover_without_the_key_the_run_names_says_it_stays_unsigned_and_out_of_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The faults come first: recover finishes the run all the same, says why it is not
    signed, and the client's history leaves it out (a signature gone is no evidence)."""
    from reports.debrief_writer import read_summary

    monkeypatch.setenv("BCDRILL_HOME", str(tmp_path / "home"))  # no key made here
    monkeypatch.delenv("BCDRILL_SIGNING_KEY", raising=False)
    run = ScriptedRun(tmp_path / "run")
    run.record("run.started", **{**run_started(), "signing_key": "SHA256:gone"})
    run.record("preflight.passed", targets=[], probes={})
    shutil.copyfile(ENVIRONMENT, run.run_dir / "environment.yaml")
    run.at(1).probe("web", "up")
    _tear(run, b'{"seq": 3, "ty')

    report = recover_run(run.run_dir)

    assert report.finished and "key SHA256:gone was to sign it" in report.unsigned
    assert (run.run_dir / "debrief.json").exists() and not (run.run_dir / SIG_NAME).exists()
    assert read_summary(run.run_dir) is None


def test_a_run_recover_cannot_go_through_is_named_and_the_others_are_still_recovered(
    tmp_path: Path, home: Path
) -> None:
    """A run with an open fault and no environment snapshot (nothing says how to reach its
    target) stopped ``recover`` at the first such run: the runs after it stayed unfinished."""
    from tests.conftest import run_cli

    broken = ScriptedRun(tmp_path / "runs" / "20260101T000000Z-broken").start()
    broken.at(1).probe("web", "up").at(10).inject("stop-web")
    _tear(broken, b'{"seq": 5, "ty')
    crashed = ScriptedRun(tmp_path / "runs" / "20260102T000000Z-crashed").start()
    shutil.copyfile(ENVIRONMENT, crashed.run_dir / "environment.yaml")
    crashed.at(1).probe("web", "up")
    _tear(crashed, b'{"seq": 3, "ty')

    result = run_cli("recover", "--runs", str(tmp_path / "runs"), timeout=120)

    assert result.returncode == 5, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    said = " ".join(result.stderr.split())
    assert "20260101T000000Z-broken: could NOT recover — " in said and "no environment snapshot" in said
    assert "run.ended" in types(crashed.run_dir) and (crashed.run_dir / "debrief.json").exists()


def test_recover_waits_until_an_inject_the_crash_interrupted_has_surely_ended(tmp_path: Path) -> None:
    """A fault intended but neither applied nor failed was being injected when the engine died;
    the inject runs on (a host command until its timeout, a docker stop for its grace): recover
    reverts it only once that is over, or the rest of the inject would undo the revert."""
    from datetime import UTC, datetime, timedelta

    from engine.record.records import RecordType
    from engine.run.recovery import interrupted_inject_wait_s
    from engine.spec.loader import load_environment

    environment = load_environment(ENVIRONMENT)  # app1: command timeout 20 s, connect timeout 3 s
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    run = ScriptedRun(tmp_path / "run", start=start).start()
    host = {"name": "app", "kind": "host", "ref": "app1", "label": "ops@app1"}
    container = {"name": "web", "kind": "container", "ref": "c0ffee", "label": "web-1"}
    run.at(10).record(RecordType.FAULT_INTENT, fault="enc", action="host.encrypt_files", target=host,
                      params={}, prior={})  # fmt: skip
    records = read_journal(run.path).records
    now = start + timedelta(seconds=15)
    # its timeout, a reconnect before it, the kill grace; 2 s of margin; 5 s have passed
    assert interrupted_inject_wait_s(records, environment, now) == pytest.approx(20 + 3 + 1 + 2 - 5)
    assert interrupted_inject_wait_s(records, environment, start + timedelta(seconds=40)) == 0
    # this clock was set back an hour since the intent: no longer than the inject can last
    assert interrupted_inject_wait_s(records, environment, start - timedelta(hours=1)) == 20 + 3 + 1 + 2

    run.record(RecordType.FAULT_APPLIED, fault="enc")  # the inject was over before the crash
    run.at(11).record(RecordType.FAULT_INTENT, fault="stop", action="docker.stop", target=container,
                      params={"timeout": 5}, prior={})  # fmt: skip
    records = read_journal(run.path).records
    assert interrupted_inject_wait_s(records, environment, now) == pytest.approx(5 + 2 - 4)  # its grace
    run.record(RecordType.FAULT_INJECT_FAILED, fault="stop", error="refused")
    assert interrupted_inject_wait_s(read_journal(run.path).records, environment, now) == 0
    run.record(RecordType.FAULT_INTENT, fault="exec", action="docker.exec", target=container,
               params={}, prior={})  # fmt: skip
    assert interrupted_inject_wait_s(read_journal(run.path).records, environment, now) == pytest.approx(
        30 + 2 - 4
    )
