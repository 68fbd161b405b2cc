"""Signed evidence on real drills (in-process, real containers, no Prefect): a fresh official
drill verifies; the same journal re-chained after moving a step record fails, naming it; a
watchdog-aborted official drill is void and still signed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.plugins import resolve_parts
from engine.record.journal import JOURNAL_NAME, read_journal
from engine.record.runstore import create_run_dir, new_run_id
from engine.record.signing import SIG_NAME, EvidenceError, init_key, verify_run
from engine.run.runner import DrillRun, RunOptions, RunResult
from engine.spec.loader import load_environment, load_playbook
from tests.conftest import REPO
from tests.test_evidence import rechain_with_moved_ack

pytestmark = pytest.mark.docker
DATA = REPO / "tests" / "data"


@pytest.fixture
def key_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BCDRILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BCDRILL_SIGNING_KEY", raising=False)
    fp, _ = init_key()
    return fp


def _run(name: str, lab_env: Path, runs: Path, responders: str, run_class: str) -> RunResult:
    playbook = load_playbook(DATA / f"{name}.yaml")
    run_dir = create_run_dir(new_run_id(playbook.id), runs)
    options = RunOptions(responders=responders, run_class=run_class)
    parts = resolve_parts(responders, desk=False)
    return DrillRun(playbook, load_environment(lab_env), run_dir, options, parts).execute()


def test_a_fresh_signed_run_verifies_and_a_rechained_one_does_not(
    lab_env: Path, tmp_path: Path, key_home: str
) -> None:
    result = _run("two-faults", lab_env, tmp_path / "runs", "auto", "ci")
    assert result.debrief is not None and result.debrief["class"] == "ci"
    verified = verify_run(result.run_dir)
    evidence = result.debrief["evidence"]
    assert (verified.head_hash, verified.records, verified.key_fingerprint) == (
        evidence["head_hash"],
        evidence["records"],
        key_home,
    )
    started = read_journal(result.run_dir / JOURNAL_NAME).records[0]["data"]
    assert started["class"] == "ci" and started["signing_key"] == key_home

    seq = rechain_with_moved_ack(result.run_dir / JOURNAL_NAME, "msp.restore", 0.5)
    read_journal(result.run_dir / JOURNAL_NAME)  # the chain itself is consistent again
    with pytest.raises(EvidenceError, match=rf"record seq {seq} \(step.recorded\) differs from the signed"):
        verify_run(result.run_dir)


def test_a_watchdog_abort_of_an_official_drill_is_void_and_signed(
    lab_env: Path, tmp_path: Path, key_home: str
) -> None:
    result = _run("watchdog", lab_env, tmp_path / "runs", "manual", "drill")
    assert result.exit_code == 3  # the exit code stays that of the cause
    assert result.debrief is not None
    assert result.debrief["outcome"] == "void" and "max_duration" in result.debrief["void_reason"]
    assert {s["status"] for s in result.debrief["steps"]} == {"not_reached"}
    assert [f for f in result.debrief["findings"] if f["party"] in ("msp", "client")] == []
    sig = json.loads((result.run_dir / SIG_NAME).read_text())
    assert (sig["head"]["outcome"], sig["head"]["class"]) == ("void", "drill")
    assert verify_run(result.run_dir).outcome == "void"
