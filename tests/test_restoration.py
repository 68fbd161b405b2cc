"""Who restored the service, when the fault took effect, and what the RTO then measures.

Pure logic: scripted journals (fake clock) through the real debrief; the daemon-event
choice of the Docker faults on recorded event lists; runbook validation by the real loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.errors import PlaybookError
from engine.faults.docker_lifecycle import fatal_moment
from engine.record.records import RecordType
from engine.spec.loader import load_playbook
from reports.debrief.compose import debrief_from_journal
from reports.debrief.model import Debrief
from reports.debrief.validation import debrief_errors
from reports.testing import ScriptedRun, run_started, step
from tests.conftest import REPO

STEPS = (
    step("msp", "acknowledge", 100),
    step("msp", "mitigate", 300),
    step("msp", "restore", 600, recorded_by="probe", probe="web", state="up"),
)


def _run(tmp_path: Path, restore: str, responders: str = "simulate", runbook: bool = False) -> ScriptedRun:
    """Started with one ``until: msp.mitigate`` fault; web up at 1 s; the fault takes effect
    at 9.8 s by the daemon's clock and is journaled applied at 10 s; down seen from 9.81 s."""
    data: dict[str, Any] = run_started(steps=STEPS, responders=responders, rto_s=60.0)
    fault = {"id": "stop-web", "action": "docker.stop", "until": "msp.mitigate", "restore": restore}
    data["faults"] = [fault]
    if runbook:
        data["steps"][1]["runbook"] = "docker start web"
    run = ScriptedRun(tmp_path)
    run.record(RecordType.RUN_STARTED, **data).record(RecordType.PREFLIGHT_PASSED, targets=[], probes={})
    run.at(1).probe("web", "up")
    run.at(9.9).intend("stop-web")
    run.at(10).record(
        RecordType.FAULT_APPLIED,
        fault="stop-web",
        effective_t=9.8,
        effective_at="2026-03-02T09:00:09.800Z",
        effective_source="docker daemon event 'kill' (the fatal signal)",
    )
    run.at(10.2).record(RecordType.PROBE_CHANGED, probe="web", state="down", detail="", observed_t=9.81)
    return run


def _debrief(run: ScriptedRun) -> Debrief:
    debrief = debrief_from_journal(run.path)
    assert debrief_errors(debrief.to_json()) == []
    return debrief


def _up(run: ScriptedRun, at: float, observed: float) -> None:
    run.at(at).record(RecordType.PROBE_CHANGED, probe="web", state="up", detail="", observed_t=observed)


def test_impact_start_is_the_daemon_time_and_recovery_the_observed_time(tmp_path: Path) -> None:
    run = _run(tmp_path, "responders")
    run.at(20).step("msp.acknowledge").at(40).step("msp.mitigate")
    run.record(RecordType.FAULT_HANDED_OVER, fault="stop-web", step="msp.mitigate", restore="responders")
    _up(run, 41.3, observed=40.95)  # the check began before 40.95, returned at 41.3
    run.step("msp.restore", by="probe:web", source="probe")
    run.at(50).record(RecordType.FAULT_REVERTED, fault="stop-web", verified=True, already_restored=True)
    debrief = _debrief(run.at(51).end())
    steps = {s.id: s.actual_s for s in debrief.steps}
    assert steps["acknowledge"] == pytest.approx(10.2)  # from 9.8, not from the 10 s record
    rto = debrief.objectives.rto
    assert rto.actual_s == pytest.approx(31.15)  # 40.95 − 9.8
    assert rto.met is True
    assert "restored by the responders" in rto.note
    assert "docker daemon event 'kill'" in rto.note and "every 1000 ms" in rto.note
    assert debrief.outcome == "passed"


def test_responders_who_never_restored_do_not_get_the_engines_recovery(tmp_path: Path) -> None:
    run = _run(tmp_path, "responders")
    run.at(20).step("msp.acknowledge").at(40).step("msp.mitigate")  # acked, but nothing done
    run.record(RecordType.FAULT_HANDED_OVER, fault="stop-web", step="msp.mitigate", restore="responders")
    run.at(50).record(RecordType.FAULT_REVERTED, fault="stop-web", verified=True, already_restored=False)
    _up(run, 50.5, observed=50.4)  # up only because the engine reverted it
    debrief = _debrief(run.at(51).end())
    rto = debrief.objectives.rto
    assert (rto.actual_s, rto.met) == (None, False)
    assert rto.note.startswith("not restored by the responders")
    assert debrief.outcome == "failed"


def test_engine_restoration_says_it_measured_the_signal(tmp_path: Path) -> None:
    run = _run(tmp_path, "engine")
    run.at(20).step("msp.acknowledge").at(40).step("msp.mitigate")
    run.at(40.3).record(RecordType.FAULT_REVERTED, fault="stop-web", verified=True, already_restored=False)
    _up(run, 41, observed=40.6)
    rto = _debrief(run.at(42).end()).objectives.rto
    assert rto.actual_s == pytest.approx(30.8)
    assert "restored by the engine at the responders' signal (msp.mitigate)" in rto.note


def test_auto_mode_without_runbook_does_not_claim_the_rto(tmp_path: Path) -> None:
    run = _run(tmp_path, "responders", responders="auto")
    run.at(10.5).record(RecordType.FAULT_REVERTED, fault="stop-web", verified=True, already_restored=False)
    _up(run, 11, observed=10.9)
    debrief = _debrief(run.at(12).end())
    rto = debrief.objectives.rto
    assert (rto.actual_s, rto.met) == (None, None)
    assert rto.note.startswith("not measured: step msp.mitigate") and "runbook" in rto.note
    assert debrief.outcome == "failed"  # the exit code claims no pass on an unmeasured RTO
    assert {s.id: s.status for s in debrief.steps}["mitigate"] == "not_exercised"


def test_auto_mode_with_a_runbook_measures_the_runbooks_recovery(tmp_path: Path) -> None:
    run = _run(tmp_path, "responders", responders="auto", runbook=True)
    _up(run, 12.5, observed=12.3)
    run.at(12.6).step("msp.mitigate", by="runbook", source="runbook")
    run.record(RecordType.FAULT_HANDED_OVER, fault="stop-web", step="msp.mitigate", restore="responders")
    run.at(12.7).step("msp.restore", by="probe:web", source="probe")
    run.at(13).record(RecordType.FAULT_REVERTED, fault="stop-web", verified=True, already_restored=True)
    debrief = _debrief(run.at(14).end())
    assert debrief.objectives.rto.actual_s == pytest.approx(2.5)
    assert debrief.objectives.rto.met is True
    assert debrief.outcome == "passed"


# ------------------------------------------------------------------ the daemon's fatal event


def test_the_fatal_event_is_the_last_kill_before_die() -> None:
    # docker stop -t 0: SIGTERM (ignored by a PID 1 without handler), SIGKILL, die, stop
    events = [("kill", 1_000_000_000), ("kill", 1_030_000_000), ("die", 1_090_000_000), ("stop", 13 * 10**8)]
    moment = fatal_moment(events)
    assert moment is not None and moment.unix == pytest.approx(1.03)
    assert "kill" in moment.source


def test_without_a_kill_the_first_event_counts() -> None:
    moment = fatal_moment([("pause", 2_000_000_000)])
    assert moment is not None and moment.unix == pytest.approx(2.0) and "pause" in moment.source
    assert fatal_moment([]) is None


# ------------------------------------------------------------------ runbook validation


def _playbook_with(tmp_path: Path, runbook: str) -> Path:
    text = (REPO / "playbooks" / "storefront-down.yaml").read_text()
    text = text.replace("runbook: {docker: start, target: storefront}", runbook)
    path = tmp_path / "pb.yaml"
    path.write_text(text)
    return path


def test_shipped_storefront_playbook_has_a_runbook_and_responders_restore() -> None:
    playbook = load_playbook(REPO / "playbooks" / "storefront-down.yaml")
    mitigate = playbook.step("msp.mitigate")
    assert mitigate.runbook is not None and mitigate.runbook.describe() == "docker start storefront"
    assert playbook.faults[0].restore == "responders"


@pytest.mark.parametrize(
    ("runbook", "message"),
    [
        ("runbook: {docker: start, command: x, target: storefront}", "exactly one of docker, command"),
        ("runbook: {docker: start}", "a docker runbook action needs a target"),
        ("runbook: {docker: start, target: nowhere}", "unknown target 'nowhere'"),
        ("runbook: {http: POST}", "an http runbook action needs a url"),
        ("runbook: {docker: stop, target: storefront}", "runbook.docker"),
    ],
)
def test_bad_runbooks_are_located(tmp_path: Path, runbook: str, message: str) -> None:
    with pytest.raises(PlaybookError) as caught:
        load_playbook(_playbook_with(tmp_path, runbook))
    text = str(caught.value)
    assert "pb.yaml:" in text and "response.msp[3].runbook" in text and message in text


# ------------------------------------------------------------------ a host's own clock


def test_a_host_fault_takes_effect_by_the_target_clock_corrected_by_its_offset() -> None:
    from engine.faults.target_clock import ClockOffset, effective_on_target, parse_unix

    assert parse_unix("stopped web\n1795987882.140713001\n") == pytest.approx(1795987882.140713)
    assert parse_unix("1795987882.%N\n") is None and parse_unix("") is None
    skewed = effective_on_target(1000.5, ClockOffset(offset_s=0.2, uncertainty_s=0.002), "app1")
    assert skewed is not None and skewed.unix == pytest.approx(1000.3) and "corrected" in skewed.source
    agreeing = effective_on_target(1000.5, ClockOffset(offset_s=0.019, uncertainty_s=0.044), "app1")
    assert agreeing is not None and agreeing.unix == 1000.5 and "agrees" in agreeing.source
    assert effective_on_target(None, ClockOffset(0.0, 0.001), "app1") is None


def test_the_start_reading_is_found_wherever_the_command_s_output_put_it() -> None:
    """``host.command``'s clock is read beside its command: its tagged line may come first,
    between the command's lines, or right after a partial line of theirs."""
    from engine.faults.target_clock import parse_started

    for output in (
        "bcdrill.started 1795987882.140713001\ndropped db\n",
        "dropping db\nbcdrill.started 1795987882.140713001\n1795990000.0\n",
        "dropping dbbcdrill.started 1795987882.140713001\n",
    ):
        assert parse_started(output) == pytest.approx(1795987882.140713), output
    assert parse_started("1795987882.140713001\n") is None
    assert parse_started("bcdrill.started 1795987882.%N\n") is None
