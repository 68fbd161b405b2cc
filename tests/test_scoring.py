"""Scoring v1 and the debrief model, from real hash-chained journals written with a fake clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.errors import JournalError, JournalTamperedError
from engine.record.journal import read_journal
from reports.debrief.compose import Debrief, debrief_from_journal
from reports.debrief.facts import ScoringSpec
from reports.debrief.scoring import grade, rating
from reports.debrief.validation import debrief_errors
from reports.debrief_writer import write_debrief
from reports.renderers import RenderOptions, render_text
from reports.testing import ScriptedRun, run_started, step

ONE_STEP = (step("msp", "acknowledge", 100, title="Acknowledge"),)


def debrief_of(run: ScriptedRun) -> Debrief:
    """Build the debrief and check it against the published schema on the way."""
    debrief = debrief_from_journal(run.path)
    assert debrief_errors(debrief.to_json()) == []
    return debrief


def simple_run(tmp_path: Path, **start: object) -> ScriptedRun:
    """Started, web up at 1 s, fault applied at 10 s (the anchor)."""
    run = ScriptedRun(tmp_path)
    run.start(**start)
    run.at(1).probe("web", "up")
    return run.at(10).inject("stop-web").at(10.5).probe("web", "down")


def finish(run: ScriptedRun, at: float, recovered: bool = True) -> ScriptedRun:
    """Revert at ``at``, probe back up right after, end."""
    run.at(at).revert("stop-web")
    if recovered:
        run.at(at + 1).probe("web", "up")
    return run.at(at + 2).end()


# ------------------------------------------------------------------ grading rules


@pytest.mark.parametrize(
    ("actual", "status", "score"),
    [
        (-5.0, "on_time", 100.0),  # recorded before impact start still counts as on time
        (0.0, "on_time", 100.0),
        (100.0, "on_time", 100.0),  # exactly on target
        (100.001, "late", pytest.approx(99.9995)),
        (200.0, "late", 50.0),  # halfway to the late limit (3 x 100 s)
        (300.0, "late", 0.0),  # at the late limit: late, no credit
        (300.001, "missed", 0.0),
        (None, "missed", 0.0),
    ],
)
def test_grade_is_linear_between_target_and_late_limit(
    actual: float | None, status: str, score: float
) -> None:
    assert grade(actual, 100.0, 3.0) == (status, score)


def test_grade_without_a_late_window_misses_anything_after_target() -> None:
    assert grade(100.0, 100.0, 1.0) == ("on_time", 100.0)
    assert grade(100.1, 100.0, 1.0) == ("missed", 0.0)


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (100.0, "P"),
        (90.0, "P"),
        (89.9999, "P"),  # reported at 3 places: 90.000
        (89.999, "S"),
        (70.0, "S"),
        (69.99, "M"),
        (40.0, "M"),
        (39.9, "U"),
        (0.0, "U"),
        (None, None),
    ],
)
def test_rating_bands(score: float | None, band: str | None) -> None:
    spec = ScoringSpec(0.5, 0.5, 3.0, 90.0, 70.0, 40.0, 70.0)
    assert rating(score, spec) == band


@pytest.mark.parametrize(
    ("ack_at", "score", "band", "outcome"),
    [
        (100.0, 100.0, "P", "passed"),
        (150.0, 75.0, "S", "passed"),
        (200.0, 50.0, "M", "failed"),
        (280.0, 10.0, "U", "failed"),
    ],
)
def test_each_rating_band_end_to_end(
    tmp_path: Path, ack_at: float, score: float, band: str, outcome: str
) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP)
    run.at(10 + ack_at).step("msp.acknowledge")
    debrief = debrief_of(finish(run, 300))
    assert debrief.steps[0].actual_s == pytest.approx(ack_at)
    assert debrief.score == pytest.approx(score)
    assert debrief.rating == band
    assert debrief.parties.msp.rating == band
    assert debrief.outcome == outcome  # pass mark 70


def test_first_record_of_a_step_wins_and_duplicates_are_ignored(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP)
    run.at(60).step("msp.acknowledge", by="alice").at(400).step("msp.acknowledge", by="bob")
    debrief = debrief_of(finish(run, 450))
    assert debrief.steps[0].actual_s == 50.0
    assert debrief.steps[0].status == "on_time"
    assert debrief.timeline.steps[0].by == "alice"


def test_unknown_step_keys_are_ignored(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP)
    run.at(20).step("msp.nonexistent").at(30).step("msp.acknowledge")
    debrief = debrief_of(finish(run, 100))
    assert [s.id for s in debrief.steps] == ["acknowledge"]
    assert debrief.score == 100.0


def test_party_score_is_the_weighted_mean_of_its_steps(tmp_path: Path) -> None:
    steps = (
        step("msp", "acknowledge", 100, weight=3.0),
        step("msp", "declare", 100, weight=1.0),
    )
    run = simple_run(tmp_path, steps=steps)
    run.at(50).step("msp.acknowledge").at(210).step("msp.declare")  # 100 and 50
    debrief = debrief_of(finish(run, 300))
    assert [s.score for s in debrief.steps] == [100.0, 50.0]
    assert debrief.parties.msp.score == pytest.approx(87.5)
    assert debrief.parties.msp.rating == "S"


def test_overall_score_weights_the_parties(tmp_path: Path) -> None:
    steps = (step("msp", "acknowledge", 100), step("client", "report", 100))
    run = simple_run(tmp_path, steps=steps, weights=(0.7, 0.3))
    run.at(50).step("msp.acknowledge").at(210).step("client.report")  # 100 and 50
    debrief = debrief_of(finish(run, 300))
    assert debrief.parties.client.score == 50.0
    assert debrief.score == pytest.approx(0.7 * 100 + 0.3 * 50)


def test_unrecorded_ack_step_is_missed_when_people_respond(tmp_path: Path) -> None:
    steps = (step("msp", "acknowledge", 100), step("client", "report", 100))
    run = simple_run(tmp_path, steps=steps, responders="manual")
    run.at(50).step("msp.acknowledge")
    debrief = debrief_of(finish(run, 300))
    client = debrief.steps[1]
    assert (client.status, client.actual_s, client.score) == ("missed", None, 0.0)
    assert debrief.parties.client.score == 0.0
    assert debrief.score == 50.0
    assert debrief.outcome == "failed"
    finding = debrief.findings[0]
    assert (finding.severity, finding.party) == ("high", "client")
    assert "never recorded" in finding.evidence
    assert debrief.improvements[0].owner_party == "client"


# ------------------------------------------------------------------ auto mode


def test_auto_mode_does_not_count_unexercised_human_steps(tmp_path: Path) -> None:
    steps = (
        step("msp", "acknowledge", 100),
        step("msp", "restore", 200, recorded_by="probe", probe="web", state="up"),
        step("msp", "escalate", 100, recorded_by="webhook"),
        step("client", "report", 100, recorded_by="webhook"),
    )
    run = simple_run(tmp_path, steps=steps, responders="auto")
    run.at(160).probe("web", "up").step("msp.restore", by="probe", source="probe")
    debrief = debrief_of(run.at(170).revert("stop-web").at(171).end())
    statuses = {s.id: (s.status, s.score) for s in debrief.steps}
    assert statuses == {
        "acknowledge": ("not_exercised", None),
        "restore": ("on_time", 100.0),
        "escalate": ("not_exercised", None),
        "report": ("not_exercised", None),
    }
    assert debrief.parties.client.score is None
    assert debrief.parties.client.rating is None
    assert debrief.score == 100.0  # only the party with counted steps
    assert debrief.outcome == "passed"
    assert debrief.findings == ()


def test_auto_mode_still_misses_an_unrecorded_probe_step(tmp_path: Path) -> None:
    steps = (step("msp", "restore", 50, recorded_by="probe", probe="web", state="up"),)
    run = simple_run(tmp_path, steps=steps, responders="auto")
    debrief = debrief_of(finish(run, 300))
    assert debrief.steps[0].status == "missed"
    assert debrief.score == 0.0
    assert debrief.outcome == "failed"


def test_auto_mode_counts_a_human_step_that_was_recorded(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP, responders="auto")
    run.at(30).step("msp.acknowledge", source="simulated")
    debrief = debrief_of(finish(run, 100))
    assert debrief.steps[0].status == "on_time"
    assert debrief.parties.msp.score == 100.0


# ------------------------------------------------------------------ objectives


def test_rto_is_the_last_up_of_all_steady_state_probes(tmp_path: Path) -> None:
    run = ScriptedRun(tmp_path)
    run.start(steps=ONE_STEP, probes=(("web", 2.0), ("db", 0.5)), steady_state=("web", "db"), rto_s=100.0)
    run.at(1).probe("web", "up").probe("db", "up")
    run.at(10).inject("stop-web").at(11).probe("web", "down").probe("db", "down")
    run.at(30).probe("db", "up").at(40).probe("web", "up")
    run.at(50).probe("web", "down").at(70).probe("web", "up")  # a relapse counts
    run.at(75).step("msp.acknowledge").at(80).revert("stop-web").at(90).end()
    debrief = debrief_of(run)
    assert debrief.objectives.rto.actual_s == 60.0
    assert debrief.objectives.rto.met is True
    assert debrief.resolution_s == 0.5


def test_missed_rto_fails_the_run(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP, rto_s=60.0)
    run.at(20).step("msp.acknowledge")
    debrief = debrief_of(finish(run, 100))  # up at 101: 91 s after impact
    rto = debrief.objectives.rto
    assert (rto.target_s, rto.actual_s, rto.met) == (60.0, 91.0, False)
    assert debrief.score == 100.0
    assert debrief.outcome == "failed"
    assert [f.title for f in debrief.findings] == ["Recovery time objective missed"]
    assert "1m31s" in debrief.findings[0].evidence


def test_not_recovered_by_run_end_misses_rto_and_costs_until_run_end(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP, rto_s=60.0, impact=(30, 600.0, "EUR"))
    run.at(20).step("msp.acknowledge")
    debrief = debrief_of(finish(run, 3590, recovered=False))  # ends at 3592, 3582 s of outage
    rto = debrief.objectives.rto
    assert (rto.actual_s, rto.met) == (None, False)
    assert "down at run end" in rto.note
    assert debrief.impact.outage_basis == "until_run_end"
    assert debrief.impact.outage_s == 3582.0
    assert debrief.impact.person_hours == pytest.approx(30 * 3582 / 3600)
    assert debrief.impact.cost == pytest.approx(600 * 3582 / 3600)
    assert debrief.outcome == "failed"


def test_no_outage_seen_gives_zero_rto(tmp_path: Path) -> None:
    run = ScriptedRun(tmp_path)
    run.start(steps=ONE_STEP)
    run.at(1).probe("web", "up").at(10).inject("stop-web").at(20).step("msp.acknowledge")
    debrief = debrief_of(run.at(30).revert("stop-web").at(31).end())
    assert debrief.objectives.rto.actual_s == 0.0
    assert debrief.objectives.rto.met is True
    assert debrief.impact.outage_s == 0.0


def test_rpo_is_reported_as_not_measured(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP, rpo_s=300.0)
    run.at(20).step("msp.acknowledge")
    debrief = debrief_of(finish(run, 100))
    rpo = debrief.objectives.rpo
    assert (rpo.target_s, rpo.actual_s, rpo.met) == (300.0, None, None)
    assert rpo.note.startswith("not measured")
    assert debrief.outcome == "passed"


def test_impact_in_person_hours_and_money(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP, impact=(120, 3000.0, "CHF"))
    run.at(20).step("msp.acknowledge")
    debrief = debrief_of(finish(run, 1799))  # up at 1800: 1790 s outage
    impact = debrief.impact
    assert (impact.outage_basis, impact.outage_s) == ("recovered", 1790.0)
    assert impact.person_hours == round(120 * 1790 / 3600, 2)  # rounded once, here
    assert impact.cost == round(3000 * 1790 / 3600, 2)
    assert impact.currency == "CHF"


# ------------------------------------------------------------------ faults, abort, preflight


def test_anchor_is_the_first_applied_fault_of_a_multi_target_fault(tmp_path: Path) -> None:
    run = ScriptedRun(tmp_path)
    run.start(steps=ONE_STEP)
    run.at(1).probe("web", "up")
    run.at(9).intend("stop-web@lab-web-1", target="lab-web-1")
    run.at(9.2).intend("stop-web@lab-web-2", target="lab-web-2")
    run.at(10).record("fault.applied", fault="stop-web@lab-web-1")
    run.at(12).record("fault.applied", fault="stop-web@lab-web-2")
    run.at(40).step("msp.acknowledge")
    run.at(60).revert("stop-web@lab-web-1").revert("stop-web@lab-web-2").end()
    debrief = debrief_of(run)
    assert debrief.steps[0].actual_s == 30.0
    assert [(f.id, f.target, f.applied_at, f.reverted_at) for f in debrief.faults] == [
        ("stop-web@lab-web-1", "lab-web-1", 0.0, 50.0),
        ("stop-web@lab-web-2", "lab-web-2", 2.0, 50.0),
    ]
    assert debrief.timeline.origin == "impact_start"
    assert debrief.timeline.start_s == -10.0


def test_failed_revert_fails_the_run_with_a_critical_finding(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP)
    run.at(20).step("msp.acknowledge")
    run.at(100).record(
        "fault.revert_failed", fault="stop-web", error="daemon timeout", manual="docker start web-1"
    )
    debrief = debrief_of(run.at(101).end())
    fault = debrief.faults[0]
    assert (fault.status, fault.reverted_at, fault.revert_verified) == ("revert_failed", None, False)
    assert debrief.outcome == "failed"
    finding = debrief.findings[0]
    assert (finding.severity, finding.party) == ("critical", "drill")
    assert "daemon timeout" in finding.evidence
    assert debrief.improvements[0].due_in_days == 1
    assert "bcdrill recover" in debrief.improvements[0].action


def test_unverified_or_missing_revert_fails_the_run(tmp_path: Path) -> None:
    run = ScriptedRun(tmp_path)
    run.start(steps=ONE_STEP)
    run.at(1).probe("web", "up").at(10).inject("a").inject("b").at(20).step("msp.acknowledge")
    debrief = debrief_of(run.at(30).revert("a", verified=False).at(31).end())
    assert [(f.id, f.status, f.revert_verified) for f in debrief.faults] == [
        ("a", "reverted", False),
        ("b", "applied", None),
    ]
    assert debrief.outcome == "failed"
    assert [f.evidence.split(": ", 1)[1] for f in debrief.findings] == [
        "revert ran but could not be verified",
        "no revert was recorded",
    ]


def test_an_abort_before_the_steps_were_due_voids_the_run(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP)
    run.at(20).record("run.aborted", reason="max duration reached", by="safety")
    debrief = debrief_of(finish(run, 21))
    assert (debrief.outcome, debrief.void_reason) == ("void", "max duration reached")
    assert debrief.findings[0].title == "The drill was aborted"
    assert debrief.findings[0].evidence == "run.aborted by safety: max duration reached"
    assert debrief.steps[0].status == "not_reached"
    assert [f.party for f in debrief.findings] == ["drill"]


def test_an_abort_after_every_step_settled_is_aborted_not_void(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP)
    run.at(400).record("run.aborted", reason="max duration reached", by="safety")
    debrief = debrief_of(finish(run, 401))
    assert (debrief.outcome, debrief.void_reason) == ("aborted", None)
    assert debrief.steps[0].status == "missed"


def test_preflight_failure_measures_nothing_and_is_void(tmp_path: Path) -> None:
    run = ScriptedRun(tmp_path)
    run.record("run.started", **run_started())
    run.at(2).record("preflight.failed", reason="target 'web' did not answer")
    debrief = debrief_of(run.at(3).end("preflight failed"))
    assert {s.status for s in debrief.steps} == {"not_reached"}
    assert (debrief.score, debrief.rating, debrief.outcome) == (None, None, "void")
    assert (debrief.objectives.rto.actual_s, debrief.objectives.rto.met) == (None, None)
    assert debrief.impact.outage_basis == "none"
    assert debrief.timeline.origin == "run_start"
    assert debrief.outcome == "void"
    assert debrief.findings[0].title.startswith("Preflight failed")


def test_inject_failure_without_any_applied_fault_fails(tmp_path: Path) -> None:
    run = ScriptedRun(tmp_path)
    run.start(steps=ONE_STEP)
    run.at(1).probe("web", "up").at(10).intend("stop-web")
    run.record("fault.inject_failed", fault="stop-web", error="no such container")
    debrief = debrief_of(run.at(11).revert("stop-web").at(12).end())
    assert debrief.faults[0].status == "reverted"
    assert debrief.faults[0].applied_at is None
    assert debrief.outcome == "failed"
    assert "no such container" in debrief.findings[0].evidence


def test_restore_failure_fails_the_run(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP)
    run.at(20).step("msp.acknowledge").at(30).revert("stop-web")
    run.at(40).record("restore.failed", probes={"web": "down"}, reason="web still down")
    debrief = debrief_of(run.at(41).end())
    assert debrief.outcome == "failed"
    assert any(f.evidence == "restore.failed: web still down" for f in debrief.findings)


def test_score_at_the_pass_mark_passes_and_below_fails(tmp_path: Path) -> None:
    for name, ack_at, outcome in (("at", 170.0, "passed"), ("below", 170.5, "failed")):
        run = simple_run(tmp_path / name, steps=ONE_STEP, pass_score=65.0)
        run.at(10 + ack_at).step("msp.acknowledge")
        debrief = debrief_of(finish(run, 300))
        assert debrief.outcome == outcome, (name, debrief.score)


def test_a_score_just_below_the_pass_mark_never_reads_as_the_mark(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP, pass_score=65.0)
    run.at(10 + 170.08).step("msp.acknowledge")  # 64.96: one decimal rounded would read 65.0
    debrief = debrief_of(finish(run, 300))
    assert debrief.outcome == "failed" and debrief.score is not None and 64.9 < debrief.score < 65.0
    text = render_text(debrief, "md", RenderOptions())
    assert "score 64.9, rated" in text and "65.0" not in text


# ------------------------------------------------------------------ model and determinism


def test_same_journal_gives_byte_identical_json(tmp_path: Path) -> None:
    texts = []
    for name in ("one", "two"):
        run = simple_run(tmp_path / name, steps=ONE_STEP, time_scale=0.1)
        run.at(10 + 100 / 3).step("msp.acknowledge")
        texts.append(debrief_of(finish(run, 77.7777)).dumps())
    assert texts[0] == texts[1]
    data = json.loads(texts[0])
    assert data["steps"][0]["actual_s"] == 33.333  # rounded to three places
    assert data["time_scale"] == 0.1
    assert list(data) == sorted(data)
    assert debrief_from_journal(tmp_path / "one" / "journal.jsonl").dumps() == texts[0]


def test_debrief_carries_the_run_identity(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP, run_id="20260302-090000-abcd")
    run.at(20).step("msp.acknowledge")
    data = debrief_of(finish(run, 50)).to_json()
    assert data["schema"] == "bcdrill/debrief/v1"
    assert data["run_id"] == "20260302-090000-abcd"
    assert data["playbook"] == {"id": "web-down", "title": "Storefront web server dies"}
    assert data["environment"] == {"name": "lab", "kind": "test"}
    assert data["client"] == "Acme Ltd"
    assert data["started_at"] == "2026-03-02T09:00:00.000Z"
    assert data["ended_at"] == "2026-03-02T09:00:52.000Z"


def test_schema_rejects_a_broken_debrief(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP)
    data = debrief_of(finish(run.at(20).step("msp.acknowledge"), 50)).to_json()
    data["outcome"] = "great"
    del data["steps"][0]["status"]
    errors = debrief_errors(data)
    assert any(e.startswith("$.outcome") for e in errors)
    assert any(e.startswith("$.steps[0]") and "status" in e for e in errors)


def test_a_journal_without_run_started_is_rejected(tmp_path: Path) -> None:
    run = ScriptedRun(tmp_path)
    run.at(1).probe("web", "up").end()
    with pytest.raises(JournalError, match=r"run\.started"):
        debrief_from_journal(run.path)


def test_a_tampered_journal_is_rejected(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP)
    finish(run.at(300).step("msp.acknowledge"), 400)
    text = run.path.read_text().replace('"t": 300.0', '"t": 30.0')
    run.path.write_text(text)
    with pytest.raises(JournalTamperedError):
        debrief_from_journal(run.path)


def test_write_debrief_writes_all_files_and_returns_the_json(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP)
    finish(run.at(20).step("msp.acknowledge"), 50)
    result = write_debrief(tmp_path)
    assert result == json.loads((tmp_path / "debrief.json").read_text())
    for name in ("debrief.md", "debrief.html", "junit.xml"):
        assert (tmp_path / name).read_text().strip()
    assert not list(tmp_path.glob(".*.tmp"))
    assert len(read_journal(run.path).records) == 10  # the journal itself is untouched


# ------------------------------------------------------------------ engine errors and recovery


def test_run_failed_record_fails_the_run(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP)
    run.at(20).step("msp.acknowledge")
    run.record("run.failed", reason="fault 'x' (docker.kill) failed: boom")
    debrief = debrief_of(finish(run, 30))
    assert debrief.outcome == "void"
    assert debrief.void_reason == "engine error: fault 'x' (docker.kill) failed: boom"
    assert debrief.findings[0].evidence == "run.failed: fault 'x' (docker.kill) failed: boom"


def test_recover_after_a_crash_uses_wall_time_for_its_records(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP)
    run.at(20).step("msp.acknowledge")
    run.journal.close()  # the engine dies here; `bcdrill recover` comes an hour later
    later = ScriptedRun(tmp_path, start=datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    later.at(1).record("recover.started", open_faults=["stop-web"]).revert("stop-web")
    later.record("run.ended", reason="recovered after the engine stopped unexpectedly")
    later.record("recover.finished", reverted=["stop-web"], failed=[])
    later.journal.close()
    debrief = debrief_of(later)
    fault = debrief.faults[0]
    assert (fault.status, fault.reverted_at, fault.revert_verified) == ("reverted", 3591.0, True)
    assert debrief.ended_at == "2026-03-02T10:00:01.000Z"
    assert debrief.timeline.end_s == 3591.0
    assert debrief.outcome == "void"  # the crash was nobody's doing
    finding = debrief.findings[0]
    assert finding.severity == "high"
    assert finding.title == "Fault 'stop-web' was not reverted by the run"
    assert "`bcdrill recover` did" in finding.evidence


def test_failed_revert_later_recovered_is_reported_as_both(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP)
    run.at(20).step("msp.acknowledge")
    run.at(30).record("fault.revert_failed", fault="stop-web", error="timeout", manual="...")
    run.at(31).end()
    later = ScriptedRun(tmp_path, start=datetime(2026, 3, 2, 9, 5, tzinfo=UTC))
    later.at(0).record("recover.started", open_faults=["stop-web"]).revert("stop-web")
    later.journal.close()
    debrief = debrief_of(later)
    assert debrief.faults[0].status == "reverted"
    assert debrief.faults[0].reverted_at == 290.0
    assert debrief.outcome == "failed"
    assert debrief.findings[0].evidence.endswith(
        "revert failed during the run (timeout); reverted by `bcdrill recover`"
    )


def test_debrief_round_trips_through_json(tmp_path: Path) -> None:
    run = simple_run(tmp_path, steps=ONE_STEP, rpo_s=60.0)
    debrief = debrief_of(finish(run.at(200).step("msp.acknowledge"), 300))
    data = json.loads(debrief.dumps())
    again = Debrief.from_json(data)
    assert again.dumps() == debrief.dumps()
    with pytest.raises(ValueError, match="schema"):
        Debrief.from_json({**data, "schema": "bcdrill/debrief/v0"})
    del data["steps"][0]["status"]
    with pytest.raises(ValueError, match=r"\$\.steps\[0\]: missing field 'status'"):
        Debrief.from_json(data)


def test_a_run_that_applied_nothing_says_so(tmp_path: Path) -> None:
    run = ScriptedRun(tmp_path)
    run.start(steps=ONE_STEP)
    debrief = debrief_of(run.at(1).probe("web", "up").at(5).end())
    assert debrief.outcome == "failed"
    assert debrief.score is None
    assert [f.title for f in debrief.findings] == ["No fault was applied: the drill tested nothing"]


# ------------------------------------------------------------------ RPO from data probes


def data_run(tmp_path: Path, rpo_s: float = 60.0, time_scale: float = 1.0) -> ScriptedRun:
    """A run whose RPO is measured by the data probe 'orders' (web is the steady state)."""
    run = ScriptedRun(tmp_path)
    data = run_started(
        steps=ONE_STEP, rpo_s=rpo_s, time_scale=time_scale, probes=(("web", 1.0), ("orders", 0.2))
    )
    data["objectives"]["rpo_probe"] = "orders"
    run.record("run.started", **data).record("preflight.passed", targets=[], probes={})
    run.at(1).probe("web", "up").probe("orders", "up", "newest record 40")
    return run.at(10).inject("stop-web").at(10.5).probe("web", "down")


def measured(run: ScriptedRun, rpo_s: float, surviving_seq: int | None = 41) -> ScriptedRun:
    """The data probe 'orders' journals a recovery-point measurement (``probe.measured``)."""
    surviving = None if surviving_seq is None else {"seq": surviving_seq, "ts": 1700000000.1}
    measurement = {
        "rpo_s": rpo_s,
        "surviving": surviving,
        "seen": {"seq": 45, "ts": 1700000004.1},
        "failed_at": 1700000004.5,
    }
    return run.record("probe.measured", probe="orders", measurement=measurement)


def test_rpo_is_measured_from_the_data_probe_measurement(tmp_path: Path) -> None:
    run = data_run(tmp_path, rpo_s=60.0)
    run.at(10.6).probe("orders", "down", "unreadable: HTTP 503")
    measured(run.at(30), 4.4).probe("orders", "up", "newest record 42")
    debrief = debrief_of(finish(run.at(31).step("msp.acknowledge"), 40))
    rpo = debrief.objectives.rpo
    assert (rpo.target_s, rpo.actual_s, rpo.met) == (60.0, 4.4, True)
    assert "41@1700000000.1" in rpo.note and "45@1700000004.1" in rpo.note


def test_a_rollback_without_an_outage_is_measured(tmp_path: Path) -> None:
    # The store stayed readable (no probe.changed): the measurement alone gives the RPO.
    run = data_run(tmp_path, rpo_s=60.0)
    measured(run.at(12), 7.25)
    debrief = debrief_of(finish(run.at(31).step("msp.acknowledge"), 40))
    rpo = debrief.objectives.rpo
    assert (rpo.actual_s, rpo.met) == (7.25, True)
    assert "newest surviving record 41@1700000000.1" in rpo.note


def test_a_malformed_measurement_names_its_record(tmp_path: Path) -> None:
    run = data_run(tmp_path, rpo_s=60.0)
    run.at(12).record("probe.measured", probe="orders", measurement={"rpo_s": "lots", "seen": None})
    with pytest.raises(JournalError, match=r"seq \d+ \('probe.measured'\): bad data measurement"):
        debrief_of(finish(run.at(31).step("msp.acknowledge"), 40))


def test_rpo_takes_the_worst_loss_and_can_be_missed(tmp_path: Path) -> None:
    run = data_run(tmp_path, rpo_s=3.0)
    run.at(20).probe("orders", "down", "unreadable")
    measured(run.at(21), 0.0, surviving_seq=45).probe("orders", "up", "newest record 46")
    measured(run.at(25), 4.4)
    debrief = debrief_of(finish(run.at(31).step("msp.acknowledge"), 40))
    assert (debrief.objectives.rpo.actual_s, debrief.objectives.rpo.met) == (4.4, False)
    assert debrief.outcome == "failed"  # an objective missed fails the drill


def test_rpo_target_is_not_time_scaled(tmp_path: Path) -> None:
    # The engine scales rpo_s like every duration (900 s × 0.01 = 9 s); data loss is real
    # seconds, so the debrief compares against the unscaled 900 s.
    run = data_run(tmp_path, rpo_s=9.0, time_scale=0.01)
    measured(run.at(20), 12.0)
    debrief = debrief_of(finish(run.at(21).step("msp.acknowledge"), 40))
    assert (debrief.objectives.rpo.target_s, debrief.objectives.rpo.met) == (900.0, True)


def test_rpo_without_a_loss_or_outage_is_not_measured(tmp_path: Path) -> None:
    run = data_run(tmp_path)
    debrief = debrief_of(finish(run.at(21).step("msp.acknowledge"), 40))
    rpo = debrief.objectives.rpo
    assert (rpo.actual_s, rpo.met) == (None, None)
    assert rpo.note.startswith("not measured: data probe 'orders'")


def test_data_measurements_before_impact_start_do_not_count(tmp_path: Path) -> None:
    run = ScriptedRun(tmp_path)
    data = run_started(steps=ONE_STEP, rpo_s=60.0, probes=(("web", 1.0), ("orders", 0.2)))
    data["objectives"]["rpo_probe"] = "orders"
    run.record("run.started", **data).record("preflight.passed", targets=[], probes={})
    measured(run.at(1).probe("web", "up").probe("orders", "up", "newest record 42"), 99.0)
    run.at(10).inject("stop-web").at(10.5).probe("web", "down")
    debrief = debrief_of(finish(run.at(21).step("msp.acknowledge"), 40))
    assert debrief.objectives.rpo.actual_s is None
