"""Score the people side of a drill from its journal: injects, reactions, decisions, entries.

Pure functions of the journal. The documented rule for decisions (docs/exercise.md): a
decision's score is its time score (the usual late-credit curve against its deadline) times
1.0 when the choice is one the plan expects, and times :data:`UNEXPECTED_CHOICE_FACTOR`
otherwise; that score replaces the step's score in its party's score.

And for update cadences: from the step's first record, each interval of ``every`` seconds
whose deadline falls before the ``until`` step (or the run's end) is met when an update came
inside it; a missed interval's deadline starts the next one. The step's score is the mean
of its time score and the share of intervals met (0–100).

Evaluators' HSEEP ratings can lower the drill's rating, never raise it: the **combined
rating** is the worse of the timing rating (score bands) and the median of the capability
ratings (each capability's latest rating; an even count takes the worse middle one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from engine.record.journal import JournalContents
from engine.record.records import RecordType
from engine.record.steps import current_step_records
from reports.debrief.exercise_model import (
    CadenceInterval,
    CadenceResult,
    DecisionResult,
    Delivery,
    EntryResult,
    ExerciseResults,
    HotwashAnswer,
    HotwashResult,
    InjectResult,
    ObservationResult,
    RatingResult,
    mean_confidence,
)
from reports.debrief.model import StepResult

__all__ = [
    "UNEXPECTED_CHOICE_FACTOR",
    "cadence_intervals",
    "combined_rating",
    "exercise_results",
    "with_decision_scores",
]

UNEXPECTED_CHOICE_FACTOR = 0.5


def _layout(contents: JournalContents) -> Mapping[str, Any]:
    started = next(contents.of_type(RecordType.RUN_STARTED), None)
    layout = started["data"].get("exercise") if started else None
    return layout if isinstance(layout, dict) else {}


def _first_steps(contents: JournalContents) -> dict[str, dict[str, Any]]:
    first: dict[str, dict[str, Any]] = {}
    for record in current_step_records(contents.records):  # at the moment acted (a mapped entry's time)
        first.setdefault(record["data"]["step"], {**record, "t": record["data"].get("acted_t", record["t"])})
    return first


def exercise_results(
    contents: JournalContents, anchor: float | None, steps: tuple[StepResult, ...]
) -> ExerciseResults | None:
    """The exercise part of the debrief; None for a drill with no script and no entries."""
    layout = _layout(contents)
    sent = list(contents.of_type(RecordType.INJECT_SENT, RecordType.INJECT_FAILED))
    entries = list(contents.of_type(RecordType.ENTRY_LOGGED))
    evaluations = list(contents.of_type(RecordType.OBSERVATION_RECORDED, RecordType.RATING_RECORDED))
    scripted = layout.get("injects") or layout.get("decisions") or layout.get("cadences")
    if not scripted and not sent and not entries and not evaluations:
        return None

    def offset(t: float) -> float | None:
        return None if anchor is None else t - anchor

    first = _first_steps(contents)
    updates = [(r["data"]["step"], float(r["t"])) for r in contents.of_type(RecordType.STEP_UPDATE)]
    ended = next(contents.of_type(RecordType.RUN_ENDED), None)
    end_t = float(ended["t"]) if ended else max((float(r["t"]) for r in contents.records), default=0.0)
    return ExerciseResults(
        players=str(layout.get("players", "checklist")),
        injects=tuple(_injects(sent, first, offset)),
        decisions=tuple(_decisions(layout, first, steps)),
        entries=tuple(_entries(contents, entries, offset)),
        hotwash=_hotwash(layout, contents, offset),
        cadences=tuple(_cadences(layout, first, updates, end_t, anchor, steps)),
        observations=tuple(
            ObservationResult(
                offset(r["t"]),
                str(r["data"]["by"]),
                str(r["data"]["kind"]),
                str(r["data"].get("step", "")),
                str(r["data"].get("capability", "")),
                str(r["data"]["text"]),
                bool(r["data"].get("internal", False)),
            )
            for r in evaluations
            if r["type"] == RecordType.OBSERVATION_RECORDED
        ),
        ratings=tuple(
            RatingResult(
                offset(r["t"]),
                str(r["data"]["by"]),
                str(r["data"]["capability"]),
                str(r["data"]["rating"]),
                str(r["data"].get("rationale", "")),
            )
            for r in evaluations
            if r["type"] == RecordType.RATING_RECORDED
        ),
    )


def _hotwash(layout: Mapping[str, Any], contents: JournalContents, offset: Any) -> HotwashResult | None:
    """The participants' view: the hotwash answers (None when the playbook has no hotwash)."""
    spec = layout.get("hotwash")
    if not isinstance(spec, dict):
        return None
    answers = tuple(
        _hotwash_answer(r["data"], offset(r["t"])) for r in contents.of_type(RecordType.HOTWASH_ANSWERED)
    )
    return HotwashResult(float(spec.get("window_s") or 0.0), answers, mean_confidence(answers))


def _hotwash_answer(d: Mapping[str, Any], at_s: float | None) -> HotwashAnswer:
    return HotwashAnswer(
        at_s=at_s,
        by=str(d["by"]),
        party=str(d["party"]),
        role=str(d.get("role", "")),
        language=str(d.get("language", "en")),
        went_well=str(d.get("went_well", "")),
        improve=str(d.get("improve", "")),
        confidence=int(d["confidence"]),
        internal=bool(d.get("internal", False)),
    )


def _entries(contents: JournalContents, entries: list[dict[str, Any]], offset: Any) -> list[EntryResult]:
    mapped = {r["data"]["entry"]: r["data"] for r in contents.of_type(RecordType.ENTRY_MAPPED)}
    results = []
    for r in entries:
        data, mapping = r["data"], mapped.get(r["seq"])
        results.append(
            EntryResult(
                offset(r["t"]),
                str(data["by"]),
                str(data["party"]),
                str(data["text"]),
                None if mapping is None else str(mapping.get("step", "")),
                "" if mapping is None else str(mapping.get("by", "")),
            )
        )
    return results


def _injects(
    records: list[dict[str, Any]], first: dict[str, dict[str, Any]], offset: Any
) -> list[InjectResult]:
    desk = [r for r in records if r["type"] == RecordType.INJECT_SENT and r["data"].get("channel") == "desk"]
    results = []
    for record in desk:
        data = record["data"]
        inject_id = data["inject"]
        deliveries = [Delivery("desk", "sent", "")] + [
            Delivery(
                str(r["data"]["channel"]),
                "sent" if r["type"] == RecordType.INJECT_SENT else "failed",
                str(r["data"].get("reason", "")),
            )
            for r in records
            if r["data"]["inject"] == inject_id and r["data"].get("channel") != "desk"
        ]
        expect = data.get("expect") or {}
        reaction_s, met = _reaction(record, expect, first)
        texts = data.get("text") or {}
        results.append(
            InjectResult(
                id=inject_id,
                kind=str(data.get("kind", "inject")),
                to=", ".join(data.get("to", [])),
                sender=str(data.get("sender", "")),
                trigger=str(data.get("trigger", "")),
                adhoc=bool(data.get("adhoc", False)),
                sent_s=offset(record["t"]),
                text=str(texts.get("en") or next(iter(texts.values()), "")),
                deliveries=tuple(deliveries),
                expect_step=expect.get("step"),
                expect_within_s=expect.get("within_s"),
                reaction_s=reaction_s,
                reaction_met=met,
            )
        )
    return results


def _reaction(
    sent: dict[str, Any], expect: Mapping[str, Any], first: dict[str, dict[str, Any]]
) -> tuple[float | None, bool | None]:
    """Seconds from the inject to its expected step (recorded before it counts as 0), and if met."""
    if not expect:
        return None, None
    step = first.get(str(expect.get("step")))
    if step is None:
        return None, False
    reaction = max(0.0, step["t"] - sent["t"])
    return reaction, reaction <= float(expect.get("within_s") or 0)


def _decisions(
    layout: Mapping[str, Any], first: dict[str, dict[str, Any]], steps: tuple[StepResult, ...]
) -> list[DecisionResult]:
    by_key = {f"{s.party}.{s.id}": s for s in steps}
    results = []
    for key, spec in (layout.get("decisions") or {}).items():
        step = by_key.get(key)
        if step is None:
            continue
        record = first.get(key)
        data = record["data"] if record else {}
        choice = str(data.get("choice", ""))
        expected = tuple(spec.get("expected", ()))
        choice_ok = None if not choice else choice in expected
        score = step.score
        if score is not None and choice_ok is False:
            score *= UNEXPECTED_CHOICE_FACTOR
        results.append(
            DecisionResult(
                step=key,
                party=step.party,
                title=step.title,
                options=tuple(spec.get("options", ())),
                expected=expected,
                choice=choice,
                rationale=str(data.get("note", "")),
                by=str(data.get("by", "")),
                actual_s=step.actual_s,
                target_s=step.target_s,
                time_score=step.score,
                choice_expected=choice_ok,
                score=score,
            )
        )
    return results


def cadence_intervals(
    first_t: float, updates: list[float], end_t: float, every_s: float
) -> list[CadenceInterval]:
    """The intervals of an update cadence (times as given: journal offsets), by the module's rule."""
    intervals: list[CadenceInterval] = []
    start, pending = first_t, sorted(updates)
    deadline = start + every_s
    while every_s > 0 and deadline <= end_t:
        hit = next((u for u in pending if start < u <= deadline), None)
        if hit is not None:
            intervals.append(CadenceInterval(deadline, hit, True))
            start = hit
        else:
            late = next((u for u in pending if u > deadline), None)
            intervals.append(
                CadenceInterval(deadline, late if late is not None and late <= end_t else None, False)
            )
            start = deadline
        deadline = start + every_s
    return intervals


def _cadences(
    layout: Mapping[str, Any],
    first: dict[str, dict[str, Any]],
    updates: list[tuple[str, float]],
    end_t: float,
    anchor: float | None,
    steps: tuple[StepResult, ...],
) -> list[CadenceResult]:
    by_key = {f"{s.party}.{s.id}": s for s in steps}
    origin = anchor or 0.0
    results = []
    for key, spec in (layout.get("cadences") or {}).items():
        step = by_key.get(key)
        record = first.get(key)
        if step is None:
            continue
        until = first.get(str(spec["until"]))
        stop = float(until["t"]) if until else end_t
        every = float(spec["every_s"])
        raw = (
            []
            if record is None
            else cadence_intervals(float(record["t"]), [t for k, t in updates if k == key], stop, every)
        )
        intervals = tuple(
            CadenceInterval(i.due_s - origin, None if i.update_s is None else i.update_s - origin, i.met)
            for i in raw
        )
        met = sum(i.met for i in intervals)
        share = 100.0 * met / len(intervals) if intervals else None
        score = step.score if share is None or step.score is None else (step.score + share) / 2
        results.append(
            CadenceResult(
                key,
                step.party,
                step.title,
                every,
                str(spec["until"]),
                intervals,
                met,
                len(intervals) - met,
                share,
                score,
            )
        )
    return results


def with_decision_scores(
    steps: tuple[StepResult, ...], exercise: ExerciseResults | None
) -> tuple[StepResult, ...]:
    """The steps with each decision's score (time × choice) and each cadence step's score
    (time and intervals met), by the module's rules."""
    if exercise is None:
        return steps
    scores = {d.step: d.score for d in exercise.decisions}
    scores.update({c.step: c.score for c in exercise.cadences})
    return tuple(
        replace(s, score=scores[f"{s.party}.{s.id}"]) if f"{s.party}.{s.id}" in scores else s for s in steps
    )


RATING_ORDER = ("P", "S", "M", "U")  # best to worst


def combined_rating(timing: str | None, ratings: tuple[RatingResult, ...]) -> str | None:
    """The worse of the timing rating and the median evaluator rating (see the module rule)."""
    latest = {r.capability: r.rating for r in ratings if r.rating in RATING_ORDER}
    if not latest:
        return timing
    ranks = sorted(RATING_ORDER.index(r) for r in latest.values())
    median = RATING_ORDER[ranks[len(ranks) // 2]]
    if timing not in RATING_ORDER:
        return median
    return RATING_ORDER[max(RATING_ORDER.index(str(timing)), RATING_ORDER.index(median))]
