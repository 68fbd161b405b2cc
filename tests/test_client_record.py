"""The client's record: run classes, void runs, and history made of completed official drills only."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.record.records import RecordType, RunClass, resolve_run_class, run_class_of
from reports.debrief.compose import debrief_from_journal
from reports.debrief.summary import RunSummary
from reports.debrief.trend import build_trend, trend_json
from reports.debrief.validation import debrief_errors
from reports.debrief_writer import ImprovementStore, debrief_of_run, summaries
from reports.i18n import translator
from reports.renderers import RenderOptions, render_text
from reports.renderers.comparison import comparison_sentences
from reports.testing import ScriptedRun, run_started, sealed_debrief, step

STEPS = (
    step("msp", "acknowledge", 120, title="Acknowledge the alert"),
    step("msp", "restore", 720, title="Restore the service", recorded_by="probe", probe="web", state="up"),
    step("client", "report", 300, title="Report through the service desk"),
)
CLIENT = "Shanghai Bakery"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BCDRILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BCDRILL_RUNS", raising=False)
    return tmp_path / "home"


def _started(run_id: str, **options: Any) -> dict[str, Any]:
    data = run_started(run_id=run_id, steps=STEPS, rto_s=480.0, impact=(40, 1200.0, "EUR"), **options)
    data["environment"]["client"] = CLIENT
    return data


def full_run(
    root: Path, run_id: str, start: datetime, ack: float, report: float, restore: float, **options: Any
) -> Path:
    """A run that goes to its end (class ``drill`` unless ``run_class=`` says otherwise)."""
    run = ScriptedRun(root / run_id, start=start)
    run.record(RecordType.RUN_STARTED, **_started(run_id, **options))
    run.record(RecordType.PREFLIGHT_PASSED, targets=[], probes={})
    run.at(1).probe("web", "up").at(10).inject("stop-web").at(11).probe("web", "down")
    for offset, key in sorted([(ack, "msp.acknowledge"), (report, "client.report")]):
        run.at(10 + offset).step(key)
    run.at(10 + restore).revert("stop-web").at(11 + restore).probe("web", "up")
    run.step("msp.restore", by="probe", source="probe")
    run.at(20 + restore).end()
    return run.run_dir


def aborted_run(root: Path, run_id: str, start: datetime, abort_at: float, **options: Any) -> Path:
    """Impact at 10 s, the client reports at +60 s, then an operator aborts at ``abort_at``."""
    run = ScriptedRun(root / run_id, start=start)
    run.record(RecordType.RUN_STARTED, **_started(run_id, **options))
    run.record(RecordType.PREFLIGHT_PASSED, targets=[], probes={})
    run.at(1).probe("web", "up").at(10).inject("stop-web").at(11).probe("web", "down")
    run.at(70).step("client.report")
    run.at(abort_at).record(RecordType.RUN_ABORTED, reason="aborted by ops: stop word", by="ops")
    run.revert("stop-web").probe("web", "up").end("aborted by ops: stop word")
    return run.run_dir


def refused_run(root: Path, run_id: str, start: datetime, **options: Any) -> Path:
    run = ScriptedRun(root / run_id, start=start)
    run.record(RecordType.RUN_STARTED, **_started(run_id, **options))
    run.at(1).probe("web", "down")
    run.record(RecordType.PREFLIGHT_FAILED, reason="steady state does not hold: probe 'web' is down")
    run.end("steady state does not hold")
    return run.run_dir


def crashed_run(root: Path, run_id: str, start: datetime, **options: Any) -> Path:
    """The engine dies at +200 s (the MSP had acknowledged late); ``recover`` finishes the run."""
    run = ScriptedRun(root / run_id, start=start)
    run.record(RecordType.RUN_STARTED, **_started(run_id, **options))
    run.record(RecordType.PREFLIGHT_PASSED, targets=[], probes={})
    run.at(1).probe("web", "up").at(10).inject("stop-web").at(11).probe("web", "down")
    run.at(190).step("msp.acknowledge")  # 180 s after impact: late (target 120 s)
    run.at(210).probe("web", "down")
    run.at(900).record(RecordType.RECOVER_STARTED, open_faults=["stop-web"])
    run.revert("stop-web")
    run.record(RecordType.RUN_ENDED, reason="recovered after the engine stopped unexpectedly")
    run.record(RecordType.RECOVER_FINISHED, reverted=["stop-web"], failed=[])
    run.journal.close()
    return run.run_dir


# ---------------------------------------------------------------- run class


def test_run_class_defaults() -> None:
    assert resolve_run_class(None, "manual", from_plan=False) is RunClass.REHEARSAL
    assert resolve_run_class(None, "simulate", from_plan=False) is RunClass.REHEARSAL
    assert resolve_run_class(None, "auto", from_plan=False) is RunClass.CI
    assert resolve_run_class(None, "auto", from_plan=True) is RunClass.CI
    assert resolve_run_class(None, "manual", from_plan=True) is RunClass.DRILL
    assert resolve_run_class("drill", "manual", from_plan=False) is RunClass.DRILL
    assert resolve_run_class("rehearsal", "manual", from_plan=True) is RunClass.REHEARSAL
    assert resolve_run_class("ci", "simulate", from_plan=False) is RunClass.CI
    with pytest.raises(ValueError, match="drill, rehearsal, ci"):
        resolve_run_class("official", "manual", from_plan=False)


def test_an_official_drill_is_people_answering_in_real_time() -> None:
    """Simulated or automatic responders, or a scaled clock, cannot make the client's record:
    a plan's run becomes a rehearsal (or ci), and asking for ``drill`` is refused."""
    assert resolve_run_class(None, "simulate", from_plan=True) is RunClass.REHEARSAL
    assert resolve_run_class(None, "manual", from_plan=True, time_scale=0.01) is RunClass.REHEARSAL
    refused = [("auto", 1.0, "responders auto"), ("simulate", 1.0, "responders simulate"),
               ("manual", 0.5, "time scale 0.5")]  # fmt: skip
    for responders, scale, named in refused:
        with pytest.raises(ValueError, match=f"answered by people in real time.*not with {named}"):
            resolve_run_class("drill", responders, from_plan=False, time_scale=scale)


def test_old_runs_without_a_class_read_as_rehearsal_unless_a_plan_started_them() -> None:
    assert run_class_of({}) is RunClass.REHEARSAL
    assert run_class_of({"plan": None}) is RunClass.REHEARSAL
    assert run_class_of({"plan": "/plans/acme.yaml"}) is RunClass.DRILL
    assert run_class_of({"class": "ci", "plan": "/plans/acme.yaml"}) is RunClass.CI


def test_class_is_in_the_debrief_and_a_rehearsal_is_visibly_marked(tmp_path: Path) -> None:
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    official = full_run(tmp_path, "r1", start, ack=60, report=100, restore=300)
    rehearsal = full_run(tmp_path, "r2", start, ack=60, report=100, restore=300, run_class="rehearsal")
    old = full_run(tmp_path, "r3", start, ack=60, report=100, restore=300, run_class=None)
    d1, d2, d3 = (debrief_from_journal(p / "journal.jsonl") for p in (official, rehearsal, old))
    assert (d1.to_json()["class"], d2.to_json()["class"], d3.to_json()["class"]) == (
        "drill",
        "rehearsal",
        "rehearsal",
    )
    assert debrief_errors(d2.to_json()) == []
    for fmt in ("md", "html"):
        marked = render_text(d2, fmt, RenderOptions(audience="client"))
        clean = render_text(d1, fmt, RenderOptions(audience="client"))
        assert "NOT AN OFFICIAL DRILL" in marked and "Rehearsal" in marked
        assert "NOT AN OFFICIAL DRILL" not in clean and "Official drill" in clean
    zh = render_text(d2, "md", RenderOptions(lang="zh-CN"))
    assert "非正式演练（排练）" in zh


def test_debriefs_written_before_classes_existed_still_read() -> None:
    from reports.debrief.model import Debrief

    path = Path(__file__).parent / "golden"
    olds = sorted(path.glob("*.json"))
    assert olds, "golden debriefs are the old-format samples"
    for old in olds:
        data = json.loads(old.read_text())
        if data.get("schema") != "bcdrill/debrief/v1":
            continue
        data.pop("class", None)
        data.pop("evidence", None)
        data.pop("void_reason", None)
        assert Debrief.from_json(data).run_class == "rehearsal"
        assert RunSummary.from_json(data).counts is False


# ---------------------------------------------------------------- void runs


def test_an_aborted_drill_is_void_and_blames_nobody_for_steps_not_reached(tmp_path: Path) -> None:
    run_dir = aborted_run(tmp_path, "a1", datetime(2026, 3, 2, 9, tzinfo=UTC), abort_at=100)
    debrief = debrief_from_journal(run_dir / "journal.jsonl")
    status = {f"{s.party}.{s.id}": s.status for s in debrief.steps}
    assert debrief.outcome == "void"
    assert debrief.void_reason == "aborted by ops: stop word"
    assert status == {
        "msp.acknowledge": "not_reached",
        "msp.restore": "not_reached",
        "client.report": "on_time",
    }
    assert [f for f in debrief.findings if f.party in ("msp", "client")] == []
    assert debrief.objectives.rto.met is None
    assert debrief_errors(debrief.to_json()) == []
    text = render_text(debrief, "html", RenderOptions(audience="client"))
    assert "VOID — no party is blamed: aborted by ops: stop word" in text


def test_a_step_due_and_late_before_the_stop_still_counts(tmp_path: Path) -> None:
    # impact at 10, ack target 120 s (limit 360 s): the abort comes 240 s after impact, unacked
    run_dir = aborted_run(tmp_path, "a2", datetime(2026, 3, 2, 9, tzinfo=UTC), abort_at=250)
    debrief = debrief_from_journal(run_dir / "journal.jsonl")
    ack = next(s for s in debrief.steps if s.id == "acknowledge")
    assert debrief.outcome == "void"
    assert ack.status == "late" and ack.score == pytest.approx(50.0)
    assert [f.subject for f in debrief.findings if f.party == "msp"] == ["step:msp.acknowledge"]
    restore = next(s for s in debrief.steps if s.id == "restore")
    assert restore.status == "not_reached" and restore.score is None


def test_a_refused_run_is_void_with_every_step_not_reached(tmp_path: Path) -> None:
    debrief = debrief_from_journal(
        refused_run(tmp_path, "p1", datetime(2026, 3, 2, 9, tzinfo=UTC)) / "journal.jsonl"
    )
    assert debrief.outcome == "void"
    assert debrief.void_reason is not None and debrief.void_reason.startswith("preflight refused:")
    assert {s.status for s in debrief.steps} == {"not_reached"}
    assert debrief.score is None
    assert all(f.party == "drill" for f in debrief.findings)


def test_a_crashed_official_drill_is_void_and_no_party_is_blamed(tmp_path: Path) -> None:
    debrief = debrief_from_journal(
        crashed_run(tmp_path, "c1", datetime(2026, 3, 2, 9, tzinfo=UTC)) / "journal.jsonl"
    )
    status = {f"{s.party}.{s.id}": s.status for s in debrief.steps}
    assert debrief.run_class == "drill" and debrief.outcome == "void"
    assert "recover" in (debrief.void_reason or "")
    # the late ack was recorded before the crash and counts; the rest was cut off
    assert status == {"msp.acknowledge": "late", "msp.restore": "not_reached", "client.report": "not_reached"}
    assert not any(f.subject == "step:client.report" and "never" in f.evidence for f in debrief.findings)
    assert not any(s.status == "missed" for s in debrief.steps)


def test_a_completed_run_is_not_void(tmp_path: Path) -> None:
    run_dir = full_run(tmp_path, "f1", datetime(2026, 3, 2, 9, tzinfo=UTC), ack=60, report=100, restore=300)
    debrief = debrief_from_journal(run_dir / "journal.jsonl")
    assert debrief.outcome == "passed" and debrief.void_reason is None


# ---------------------------------------------------------------- history: like with like


def _state(runs: Path, home: Path) -> tuple[str, str, list[str]]:
    trend = trend_json(build_trend(summaries(runs), CLIENT))
    plans = ImprovementStore(CLIENT).path
    plan_text = plans.read_text() if plans.exists() else ""
    return trend, plan_text, [p.name for p in sorted(runs.iterdir())]


def _next_drill(runs: Path) -> tuple[list[str], list[tuple[str, str, str]]]:
    """What the next official drill says: its comparison sentences and its follow-up."""
    run_dir = full_run(
        runs,
        "20260302T090000Z-web-down-next",
        datetime(2026, 3, 2, 9, tzinfo=UTC),
        ack=90,
        report=200,
        restore=500,
    )
    debrief = debrief_of_run(run_dir, runs)
    sentences = comparison_sentences(debrief, translator("en"))
    follow = [(f.from_run, f.subject, str(f.result)) for f in debrief.follow_up]
    import shutil

    shutil.rmtree(run_dir)
    return sentences, follow


def test_rehearsals_ci_refused_aborted_and_crashed_runs_leave_the_record_as_it_was(
    tmp_path: Path, home: Path
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    first = full_run(
        runs, "20250303T090000Z-web-down-0001", datetime(2025, 3, 3, 9, tzinfo=UTC), 200, 520, 700
    )
    sealed_debrief(first)
    before_state = _state(runs, home)
    before_next = _next_drill(runs)
    assert len(json.loads(before_state[0])["runs"]) == 1
    assert before_next[0] and "year on year" in before_next[0][0]
    assert before_next[1], "the first drill's findings are carried"

    day = datetime(2026, 1, 5, 9, tzinfo=UTC)
    others = [
        aborted_run(runs, "20260105T090000Z-web-down-0002", day, abort_at=100, run_class="rehearsal"),
        refused_run(runs, "20260106T090000Z-web-down-0003", day.replace(day=6)),
        full_run(
            runs,
            "20260107T090000Z-web-down-0004",
            day.replace(day=7),
            5,
            5,
            30,
            run_class="ci",
            responders="auto",
        ),
        crashed_run(runs, "20260108T090000Z-web-down-0005", day.replace(day=8)),
        full_run(runs, "20260109T090000Z-web-down-0006", day.replace(day=9), 5, 5, 30, run_class="rehearsal"),
        aborted_run(runs, "20260110T090000Z-web-down-0007", day.replace(day=10), abort_at=100),
    ]
    for run_dir in others:
        written = sealed_debrief(run_dir)
        assert written["class"] in ("drill", "rehearsal", "ci")
        assert written["follow_up"] == [] and written["comparison"] is None

    after_state = _state(runs, home)
    assert after_state[0] == before_state[0]  # trend
    assert after_state[1] == before_state[1]  # improvement plan file, byte for byte
    assert _next_drill(runs) == before_next  # comparison sentences and carried plan

    rehearsals = build_trend(summaries(runs), CLIENT, run_class="rehearsal")
    assert [p.run_id for p in rehearsals.points] == [
        "20260105T090000Z-web-down-0002",
        "20260109T090000Z-web-down-0006",
    ]


def test_no_comparison_across_time_scales(tmp_path: Path, home: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    first = full_run(
        runs, "20250303T090000Z-web-down-0001", datetime(2025, 3, 3, 9, tzinfo=UTC), 200, 520, 700
    )
    sealed_debrief(first)
    scaled = full_run(
        runs, "20260302T090000Z-web-down-0002", datetime(2026, 3, 2, 9, tzinfo=UTC), 2, 5, 7, time_scale=0.01
    )
    debrief = debrief_of_run(scaled, runs)
    assert debrief.comparison is None
    assert comparison_sentences(debrief, translator("en")) == []
    assert all(not f.retested and f.result == "not_retested" for f in debrief.follow_up)
    same = full_run(
        runs, "20260303T090000Z-web-down-0003", datetime(2026, 3, 3, 9, tzinfo=UTC), 100, 200, 300
    )
    assert debrief_of_run(same, runs).comparison is not None
