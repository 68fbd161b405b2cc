"""CI: the Markdown job summary (``summary.md``, ``--summary FILE``, ``$GITHUB_STEP_SUMMARY``)
and JUnit "skipped" cases that say why they are no cause for worry."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import typer

from engine.cli import _finish
from reports.debrief.compose import debrief_from_journal
from reports.debrief_writer import write_debrief
from reports.renderers import render_text
from reports.terminal import print_scorecard
from reports.testing import ScriptedRun, step

STEPS = (
    step("msp", "acknowledge", 120, title="Acknowledge the alert"),
    step("msp", "restore", 600, title="Restore the service", recorded_by="probe", probe="web", state="up"),
    step("client", "report", 300, title="Report through the service desk"),
)


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bcdrill home of its own (the improvement plans), outside the test's folder."""
    path = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("BCDRILL_HOME", str(path))
    monkeypatch.delenv("BCDRILL_RUNS", raising=False)
    return path


def ci_run(run_dir: Path) -> ScriptedRun:
    """A CI run (``--responders auto``): only the probe-derived step is recorded."""
    run = ScriptedRun(run_dir)
    run.start(steps=STEPS, responders="auto", impact=(25, 3000.0, "CNY"))
    run.at(1).probe("web", "up").at(10).inject("stop-web").at(11).probe("web", "down")
    run.at(70).revert("stop-web").probe("web", "up").step("msp.restore", by="probe", source="probe")
    return run.at(71).end()


def test_finish_writes_the_job_summary_where_ci_asks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    run_dir = tmp_path / "run"
    ci_run(run_dir)
    debrief = write_debrief(run_dir)
    step_summary = tmp_path / "step-summary.md"
    step_summary.write_text("earlier step\n", encoding="utf-8")  # GitHub's file collects every step
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    chosen = tmp_path / "summary.md"
    result = {
        "run_dir": str(run_dir),
        "debrief": debrief,
        "outcome": debrief["outcome"],
        "reason": "test",
        "exit_code": 0,
        "unreverted": [],
    }
    with pytest.raises(typer.Exit):
        _finish(result, False, None, print_scorecard, chosen)
    summary = (run_dir / "summary.md").read_text(encoding="utf-8")
    assert step_summary.read_text(encoding="utf-8") == "earlier step\n" + summary
    assert chosen.read_text(encoding="utf-8") == summary
    assert summary.startswith("## bcdrill: Storefront web server dies")
    assert "Service “web” was unavailable for 1m00s" in summary
    assert "| MSP | Restore the service | 10m00s | 1m00s | on time |" in summary


def test_no_summary_file_without_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    run_dir = tmp_path / "run"
    ci_run(run_dir)
    debrief = write_debrief(run_dir)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    result = {"run_dir": str(run_dir), "debrief": debrief, "outcome": "passed", "reason": "", "exit_code": 0}
    with pytest.raises(typer.Exit):
        _finish(result, False, None, print_scorecard)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_junit_skipped_cases_say_why(tmp_path: Path) -> None:
    debrief = debrief_from_journal(ci_run(tmp_path).path)
    root = ET.fromstring(render_text(debrief, "junit"))
    cases = {c.get("name"): c.find("skipped") for c in root.iter("testcase")}
    skipped = {name: element for name, element in cases.items() if element is not None}
    ack, report = "acknowledge: Acknowledge the alert", "report: Report through the service desk"
    assert set(skipped) == {ack, report, "rpo"}
    for name, element in skipped.items():
        reason = element.text or ""
        assert reason == element.get("message"), name
        assert "nothing failed" in reason or "not counted as missed" in reason, name
    assert "--responders auto" in (skipped[ack].text or "")
    assert root.get("skipped") == "3"
