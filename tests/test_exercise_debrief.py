"""The debrief's people side, from a scripted journal: injects, reactions, decisions, entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.record.records import RecordType
from reports.debrief.compose import debrief_from_journal
from reports.debrief.exercise import UNEXPECTED_CHOICE_FACTOR, cadence_intervals
from reports.debrief.validation import debrief_errors
from reports.renderers import render
from reports.renderers.common import RenderOptions
from reports.testing import ScriptedRun, run_started, step

STEPS = (
    step("msp", "acknowledge", 300),
    step("msp", "choose", 600, recorded_by="decision", title="Recovery path decided"),
    step("client", "report", 600, title="Report through the service desk"),
)
LAYOUT = {
    "players": "blind",
    "injects": [],
    "decisions": {"msp.choose": {"options": ["restart", "fail-over"], "expected": ["restart"]}},
}


def _journal(tmp_path: Path, choice: str) -> Path:
    run = ScriptedRun(tmp_path / "run")
    data = run_started(steps=STEPS)
    data["exercise"] = LAYOUT
    run.record(RecordType.RUN_STARTED, **data).record(RecordType.PREFLIGHT_PASSED, targets=[], probes={})
    run.at(10).inject("stop-web")
    sent = {"kind": "alert", "to": ["msp"], "recipients": ["Alex"], "sender": "monitoring", "adhoc": False}
    run.record(
        RecordType.INJECT_SENT,
        inject="alert",
        channel="desk",
        text={"en": "EXERCISE EXERCISE EXERCISE — web down — EXERCISE EXERCISE EXERCISE"},
        trigger="at +0s",
        expect={"step": "msp.acknowledge", "within_s": 120.0},
        **sent,
    )
    run.record(RecordType.INJECT_SENT, inject="alert", kind="alert", channel="alertmanager", to=["msp"])
    run.record(
        RecordType.INJECT_FAILED, inject="alert", kind="alert", channel="apprise", reason="apprise: refused"
    )
    run.at(70).step("msp.acknowledge")
    run.at(100).record(
        RecordType.INJECT_SENT,
        inject="customer-calls",
        channel="desk",
        text={"zh-CN": "演练 演练 演练 — 网店报错 — 演练 演练 演练"},
        trigger="at +90s",
        expect={"step": "client.report", "within_s": 60.0},
        **{**sent, "kind": "inject", "to": ["client"]},
    )
    run.at(130).record(RecordType.ENTRY_LOGGED, by="Li Wei", party="client", text="phoned the bank")
    run.at(310).record(
        RecordType.STEP_RECORDED,
        step="msp.choose",
        party="msp",
        by="Alex",
        source="desk",
        note="standby is warm",
        out_of_order=False,
        choice=choice,
    )
    run.at(400).step("client.report")
    run.at(420).revert("stop-web").end()
    return run.path


@pytest.mark.parametrize(("choice", "factor"), [("restart", 1.0), ("fail-over", UNEXPECTED_CHOICE_FACTOR)])
def test_decisions_score_on_time_and_choice_and_show_their_rationale(
    tmp_path: Path, choice: str, factor: float
) -> None:
    debrief = debrief_from_journal(_journal(tmp_path, choice))
    ex = debrief.exercise
    assert ex is not None and ex.players == "blind"
    (decision,) = ex.decisions
    assert decision.choice == choice and decision.rationale == "standby is warm" and decision.by == "Alex"
    assert decision.actual_s == 300.0 and decision.time_score == 100.0
    assert decision.score == 100.0 * factor
    step_score = next(s.score for s in debrief.steps if s.id == "choose")
    assert step_score == 100.0 * factor, "the party score uses the decision's score"
    assert debrief_errors(debrief.to_json()) == []


def test_injects_show_deliveries_and_whether_the_expected_reaction_came(tmp_path: Path) -> None:
    debrief = debrief_from_journal(_journal(tmp_path, "restart"))
    assert debrief.exercise is not None
    alert, call = debrief.exercise.injects
    assert alert.sent_s == 0.0 and alert.kind == "alert"
    assert [(d.channel, d.status) for d in alert.deliveries] == [
        ("desk", "sent"),
        ("alertmanager", "sent"),
        ("apprise", "failed"),
    ]
    assert alert.reaction_s == 60.0 and alert.reaction_met is True
    assert call.reaction_s == 300.0 and call.reaction_met is False and call.text.startswith("演练")
    (entry,) = debrief.exercise.entries
    assert entry.by == "Li Wei" and entry.at_s == 120.0

    markdown = render(debrief, "md", RenderOptions())
    assert isinstance(markdown, str)
    assert "## Alerts and injects" in markdown and "apprise: FAILED (apprise: refused)" in markdown
    assert "## Decisions" in markdown and "standby is warm" in markdown and "restart (as planned)" in markdown
    assert "phoned the bank" in markdown and "Players saw no answer key" in markdown
    html = render(debrief, "html", RenderOptions(lang="zh-CN"))
    assert isinstance(html, str)
    assert "告警与注入消息" in html and "决策" in html and "standby is warm" in html
    assert '"exercise"' in str(render(debrief, "json", RenderOptions()))


def test_a_drill_without_a_script_has_no_exercise_key(tmp_path: Path) -> None:
    run = ScriptedRun(tmp_path / "plain").start()
    run.at(1).inject("stop-web").at(50).step("msp.acknowledge").at(60).revert("stop-web").end()
    debrief = debrief_from_journal(run.path)
    assert debrief.exercise is None and "exercise" not in debrief.to_json()


def test_cadence_intervals_are_met_or_missed_by_the_documented_rule() -> None:
    # first update at 100 s, every 60 s, until 400 s: deadlines 160, 220 (missed), 280, 340, 400
    intervals = cadence_intervals(100.0, [150.0, 250.0, 300.0, 390.0], 400.0, 60.0)
    assert [(i.due_s, i.update_s, i.met) for i in intervals] == [
        (160.0, 150.0, True),
        (210.0, 250.0, False),  # nothing by 210: missed (the update came at 250)
        (270.0, 250.0, True),  # the missed deadline starts the next interval
        (310.0, 300.0, True),
        (360.0, 390.0, False),
    ]
    assert cadence_intervals(100.0, [], 150.0, 60.0) == [], "no deadline before the end: nothing due"


def test_cadence_is_scored_and_shown(tmp_path: Path) -> None:
    steps = (*STEPS, step("msp", "inform", 300, title="Client informed"), step("msp", "restore", 900))
    run = ScriptedRun(tmp_path / "run")
    data = run_started(steps=steps)
    data["exercise"] = {**LAYOUT, "cadences": {"msp.inform": {"every_s": 100.0, "until": "msp.restore"}}}
    run.record(RecordType.RUN_STARTED, **data).record(RecordType.PREFLIGHT_PASSED, targets=[], probes={})
    run.at(10).inject("stop-web").at(60).step("msp.inform")  # +50 s: on time
    update = {"step": "msp.inform", "party": "msp", "by": "Alex", "source": "desk", "note": "ETA 10 min"}
    run.at(150).record(RecordType.STEP_UPDATE, **update)  # within 100 s: met
    run.at(400).step("msp.restore")  # nothing between 150 and 250 and 350: two missed
    run.at(410).revert("stop-web").end()
    debrief = debrief_from_journal(run.path)
    assert debrief.exercise is not None
    (cadence,) = debrief.exercise.cadences
    assert (cadence.met, cadence.missed) == (1, 2)
    assert [i.due_s for i in cadence.intervals] == [150.0, 240.0, 340.0]  # from impact start
    assert cadence.cadence_score == pytest.approx(100 / 3) and cadence.score == pytest.approx(
        (100 + 100 / 3) / 2
    )
    assert next(s.score for s in debrief.steps if s.id == "inform") == pytest.approx(cadence.score)
    assert debrief_errors(debrief.to_json()) == []
    markdown = render(debrief, "md", RenderOptions())
    assert "## Update cadence" in markdown and "1 / 3" in markdown and "MISSED" in markdown


def test_evaluator_ratings_can_lower_the_rating_and_internal_observations_stay_internal(
    tmp_path: Path,
) -> None:
    run = ScriptedRun(tmp_path / "run")
    data = run_started(steps=STEPS)
    data["exercise"] = LAYOUT
    run.record(RecordType.RUN_STARTED, **data).record(RecordType.PREFLIGHT_PASSED, targets=[], probes={})
    run.at(10).inject("stop-web").at(60).step("msp.acknowledge").at(100).step("client.report")
    choice = {"party": "msp", "by": "Alex", "source": "desk", "note": "warm", "out_of_order": False}
    run.record(RecordType.STEP_RECORDED, step="msp.choose", choice="restart", **choice)
    seen = {"by": "Eve", "step": "client.report", "capability": "communication"}
    run.at(120).record(
        RecordType.OBSERVATION_RECORDED, kind="improvement", text="no ETA given", internal=False, **seen
    )
    run.record(RecordType.OBSERVATION_RECORDED, kind="strength", text="MSP lead calm", internal=True, **seen)
    for capability, grade in (
        ("communication", "P"),
        ("communication", "M"),
        ("escalation", "S"),
        ("recovery", "U"),
    ):
        run.record(
            RecordType.RATING_RECORDED, by="Eve", capability=capability, rating=grade, rationale="seen"
        )
    run.at(130).revert("stop-web").end()
    debrief = debrief_from_journal(run.path)
    ex = debrief.exercise
    assert ex is not None and debrief.rating == "P", "every step on time: timing alone says P"
    # latest per capability: communication M, escalation S, recovery U → median M; worse of P and M
    assert ex.combined_rating == "M"
    assert [o.text for o in ex.observations] == ["no ETA given", "MSP lead calm"]
    assert debrief_errors(debrief.to_json()) == []
    internal = render(debrief, "md", RenderOptions())
    client = render(debrief, "md", RenderOptions(audience="client"))
    assert isinstance(internal, str) and isinstance(client, str)
    assert "MSP lead calm" in internal and "MSP lead calm" not in client
    assert "no ETA given" in client and "Combined rating (timing and evaluators): M" in client
    assert "评估员评级与观察" in str(render(debrief, "html", RenderOptions(lang="zh-CN")))


def test_an_evaluators_mapping_and_correction_count_in_the_score(tmp_path: Path) -> None:
    run = ScriptedRun(tmp_path / "run")
    data = run_started(steps=STEPS)
    data["exercise"] = LAYOUT
    run.record(RecordType.RUN_STARTED, **data).record(RecordType.PREFLIGHT_PASSED, targets=[], probes={})
    run.at(10).inject("stop-web")
    run.at(100).record(RecordType.ENTRY_LOGGED, by="Li Wei", party="client", text="phoned the desk")
    run.at(110).record(RecordType.ENTRY_LOGGED, by="Li Wei", party="client", text="made tea")
    run.at(120).record(
        RecordType.STEP_RECORDED,
        step="msp.choose",
        party="msp",
        by="Alex",
        source="desk",
        note="",
        out_of_order=False,
        choice="restart",
    )
    run.at(130).record(
        RecordType.STEP_RECORDED,
        step="msp.acknowledge",
        party="msp",
        by="Alex",
        source="desk",
        note="pressed the wrong button",
        out_of_order=False,
    )
    wrong = 7  # seq of msp.acknowledge's record (entries are 4 and 5)
    run.at(900).record(RecordType.ENTRY_MAPPED, entry=4, step="client.report", by="Eve")
    run.record(
        RecordType.STEP_RECORDED,
        step="client.report",
        party="client",
        by="Li Wei",
        source="evaluator",
        note="mapped by evaluator Eve",
        out_of_order=False,
        acted_t=100.0,
    )
    run.record(RecordType.ENTRY_MAPPED, entry=5, step="", by="Eve")
    run.record(RecordType.STEP_CORRECTED, step="msp.acknowledge", record=wrong, to="msp.choose", by="Eve")
    run.at(950).revert("stop-web").end()
    debrief = debrief_from_journal(run.path)
    report = next(s for s in debrief.steps if s.id == "report")
    assert report.actual_s == 90.0 and report.score == 100.0, "at the entry's time, not the mapping's"
    acknowledge = next(s for s in debrief.steps if s.id == "acknowledge")
    assert acknowledge.actual_s is None, "the corrected record no longer counts for its old step"
    assert "pressed the wrong button" not in [n.text for n in debrief.notes]
    assert "mapped by evaluator Eve" in [n.text for n in debrief.notes]
    assert debrief.exercise is not None
    assert [(e.text, e.mapped_to, e.mapped_by) for e in debrief.exercise.entries] == [
        ("phoned the desk", "client.report", "Eve"),
        ("made tea", "", "Eve"),
    ]
    markdown = render(debrief, "md", RenderOptions())
    assert (
        isinstance(markdown, str)
        and "| client.report (Eve) |" in markdown
        and "| no step (Eve) |" in markdown
    )
    assert debrief_errors(debrief.to_json()) == []


def test_the_participants_view_shows_hotwash_answers_and_mean_confidence_per_party(tmp_path: Path) -> None:
    run = ScriptedRun(tmp_path / "run")
    data = run_started(steps=STEPS)
    data["exercise"] = {**LAYOUT, "hotwash": {"window_s": 600.0}}
    run.record(RecordType.RUN_STARTED, **data).record(RecordType.PREFLIGHT_PASSED, targets=[], probes={})
    run.at(10).inject("stop-web").at(400).revert("stop-web")
    run.at(410).record(RecordType.HOTWASH_OPENED, window_s=600.0, participants=["Alex", "Sam", "Li Wei"])
    answers = [
        ("Alex", "msp", "en", "<b>fast</b> alert", "ETA sooner", 4, False),
        ("Sam", "msp", "en", "runbook worked", "our pager is too quiet", 2, True),
        ("Li Wei", "client", "zh-CN", "电话订单很顺利", "更早通知我们", 5, False),
    ]
    for by, party, lang, well, improve, confidence, internal in answers:
        run.record(RecordType.HOTWASH_ANSWERED, by=by, party=party, role="", language=lang, went_well=well,
                   improve=improve, confidence=confidence, internal=internal)  # fmt: skip
    run.at(420).end()
    debrief = debrief_from_journal(run.path)
    assert debrief.exercise is not None and debrief.exercise.hotwash is not None
    assert debrief.exercise.hotwash.confidence == {"msp": 3.0, "client": 5.0}
    assert debrief_errors(debrief.to_json()) == []
    html = render(debrief, "html", RenderOptions())
    assert isinstance(html, str) and "Participants&#39; view (hotwash)" in html
    assert (
        "&lt;b&gt;fast&lt;/b&gt; alert" in html and "<b>fast" not in html and "our pager is too quiet" in html
    )
    client = render(debrief, "md", RenderOptions(audience="client"))
    assert isinstance(client, str) and "## Participants' view (hotwash)" in client
    assert "our pager is too quiet" not in client and "MSP 4.0/5" in client and "电话订单很顺利" in client
    zh = render(debrief, "html", RenderOptions(lang="zh-CN"))
    assert isinstance(zh, str) and "参演人员的看法" in zh and "平均信心" in zh
    as_json = json.loads(str(render(debrief, "json", RenderOptions(audience="client"))))
    assert [a["by"] for a in as_json["exercise"]["hotwash"]["answers"]] == ["Alex", "Li Wei"]
