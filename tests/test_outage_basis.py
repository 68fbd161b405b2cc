"""The outage ends when the service came back, not when the run ended after a hotwash.

When the responders never restored the service, the engine's revert at ENDEX brought it back;
a post-drill survey (hotwash) may then keep the run open for half an hour. The outage, the
person-hours and the cost end at the return of the steady-state probes, and every text says
the engine, not the responders, restored the service.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.record.records import RecordType
from reports.debrief.compose import Debrief
from reports.renderers import RenderOptions, render_text
from reports.testing import ScriptedRun, run_started, step
from tests.test_scoring import debrief_of


def _handed_over_run(tmp_path: Path, back_up: bool = True) -> ScriptedRun:
    """The responders ack the restore at 100 s but never restart the container; ENDEX at 100.5 s."""
    run = ScriptedRun(tmp_path)
    data = run_started(steps=(step("msp", "restore", 300.0),), rto_s=600.0, impact=(50, 1000.0, "EUR"))
    data["faults"] = [
        {"id": "stop-web", "action": "docker.stop", "target": "web", "at_s": 0.0, "duration_s": None,
         "until": "msp.restore", "restore": "responders"},
    ]  # fmt: skip
    run.record(RecordType.RUN_STARTED, **data).record(RecordType.PREFLIGHT_PASSED, targets=[], probes={})
    run.at(1).probe("web", "up")
    run.at(10).inject("stop-web", action="docker.stop").at(10.1).probe("web", "down")
    run.at(100).step("msp.restore")
    run.record(RecordType.FAULT_HANDED_OVER, fault="stop-web", step="msp.restore", restore="responders")
    run.at(100.5).record(RecordType.FAULT_REVERTED, fault="stop-web", verified=True, already_restored=False)
    if back_up:
        run.at(101).probe("web", "up").at(102).record(RecordType.RESTORE_VERIFIED, probes={"web": "up"})
    return run.at(1902).end()  # after a 30-minute hotwash


def _text(debrief: Debrief, lang: str) -> str:
    return render_text(debrief, "md", RenderOptions(lang=lang))


def test_an_outage_the_engine_ended_stops_at_the_return_not_at_run_end(tmp_path: Path) -> None:
    debrief = debrief_of(_handed_over_run(tmp_path))
    assert debrief.objectives.rto.actual_s is None and debrief.objectives.rto.met is False
    impact = debrief.impact
    assert (impact.outage_basis, impact.outage_s) == ("restored_by_engine", pytest.approx(91.0))
    assert impact.person_hours == round(50 * 91 / 3600, 2)
    assert impact.cost == round(1000 * 91 / 3600, 2)


def test_the_texts_say_the_engine_restored_the_service(tmp_path: Path) -> None:
    debrief = debrief_of(_handed_over_run(tmp_path))
    english = _text(debrief, "en")
    assert "drill engine's revert brought the service back" in english
    assert "only when the drill engine undid the fault, not through a recovery by the responders" in english
    assert "before it recovered" not in english and "until the service recovered" not in english
    assert "演练引擎撤销故障" in _text(debrief, "zh-CN")


def test_a_service_still_down_at_run_end_costs_until_run_end(tmp_path: Path) -> None:
    impact = debrief_of(_handed_over_run(tmp_path, back_up=False)).impact
    assert (impact.outage_basis, impact.outage_s) == ("until_run_end", pytest.approx(1892.0))
