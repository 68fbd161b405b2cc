"""The controller's and evaluator's desk: both parties live, observations and HSEEP ratings.

A participant whose role is ``controller`` or ``evaluator`` gets this view instead of the
player's: the script (both parties' steps with their targets and status), the live
timeline (faults, probes, steps, updates, injects, decisions, players' entries), and two
forms. An **observation** is a strength or an area for improvement, tied to a step or a
capability, optionally marked internal (left out of the client's debrief); a **rating** is
the HSEEP rating (P/S/M/U) of a capability with a rationale. Both are journaled at once.

A controller or evaluator outside the MSP (party ``client``) gets what the client's debrief
shows: no internal observations or hotwash answers and no notes on MSP steps, filtered here
on the server, not in the template.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drills.desk.participants import Holder
from drills.desk.recording import DeskRecorder, Outcome, clean_note
from engine.record.records import RecordType

__all__ = [
    "EVALUATOR_ROLES",
    "RATINGS",
    "TimelineRow",
    "client_view",
    "correct",
    "is_evaluator",
    "is_internal",
    "map_entry",
    "observe",
    "rate",
    "timeline",
]

EVALUATOR_ROLES = ("controller", "evaluator")
RATINGS = ("P", "S", "M", "U")
OBSERVATION_KINDS = ("strength", "improvement")
NO_STEP = "-"  # the mapping form's "no step" (an empty field is not sent at all)


def is_evaluator(holder: Holder) -> bool:
    """Controllers and evaluators see both parties and the script."""
    return holder.role.casefold() in EVALUATOR_ROLES


@dataclass(frozen=True)
class TimelineRow:
    """One event of the live timeline, in seconds from impact start."""

    elapsed_s: float | None
    kind: str
    party: str
    text: str


def _summary(kind: str, d: dict[str, Any]) -> tuple[str, str, str] | None:
    """(kind label, party, text) of one journal record worth showing, or None."""
    g = d.get
    if kind in (RecordType.STEP_RECORDED, RecordType.STEP_UPDATE):
        verb = "update" if kind == RecordType.STEP_UPDATE else "step"
        extra = (f" → {g('choice')}" if g("choice") else "") + (f" — {g('note')}" if g("note") else "")
        return verb, str(g("party", "")), f"{verb} {g('step')} by {g('by')}{extra}"
    if kind == RecordType.INJECT_SENT and g("channel") == "desk":
        texts = g("text") or {}
        text = texts.get("en") or next(iter(texts.values()), "")
        return str(g("kind", "inject")), "", f"{g('inject')} → {', '.join(g('to', []))}: {text}"
    simple = {
        RecordType.INJECT_FAILED: (
            "inject failed",
            lambda: f"{g('inject')} via {g('channel')}: {g('reason')}",
        ),
        RecordType.PROBE_CHANGED: ("probe", lambda: f"{g('probe')} {g('state')}"),
        RecordType.FAULT_APPLIED: ("fault", lambda: f"{g('fault')} applied"),
        RecordType.FAULT_REVERTED: ("fault", lambda: f"{g('fault')} reverted"),
        RecordType.OBSERVATION_RECORDED: ("observation", lambda: f"{g('kind')}: {g('text')} ({g('by')})"),
        RecordType.RATING_RECORDED: ("rating", lambda: f"{g('capability')}: {g('rating')} ({g('by')})"),
        RecordType.ENTRY_MAPPED: (
            "mapping",
            lambda: f"entry #{g('entry')} → {g('step') or 'no step'} ({g('by')})",
        ),
        RecordType.STEP_CORRECTED: ("correction", lambda: f"{g('step')} → {g('to')} ({g('by')})"),
        RecordType.HOTWASH_OPENED: ("hotwash", lambda: "ENDEX: the hotwash survey is open"),
        RecordType.HOTWASH_ANSWERED: (
            "hotwash",
            lambda: f"{g('by')}: {g('confidence')}/5 — {g('went_well')} / {g('improve')}",
        ),
    }
    if kind == RecordType.ENTRY_LOGGED:
        return "entry", str(g("party", "")), f"{g('by')}: {g('text')}"
    if kind in simple:
        label, text_of = simple[kind]  # type: ignore[index]
        return label, "", text_of()
    return None


def _row(record: dict[str, Any], anchor: float | None) -> TimelineRow | None:
    summary = _summary(str(record.get("type")), record.get("data", {}))
    if summary is None:
        return None
    elapsed = None if anchor is None else float(record["t"]) - anchor
    return TimelineRow(elapsed, *summary)


def is_internal(record: dict[str, Any]) -> bool:
    """A record the client's debrief leaves out: an observation or hotwash answer marked internal."""
    kind, data = record.get("type"), record.get("data") or {}
    if kind in (RecordType.OBSERVATION_RECORDED, RecordType.HOTWASH_ANSWERED):
        return bool(data.get("internal"))
    return False


def client_view(record: dict[str, Any]) -> dict[str, Any] | None:
    """``record`` as a holder outside the MSP may see it: None when it is internal, and an
    MSP step's (or update's) note left out, as in the client's debrief."""
    if is_internal(record):
        return None
    data = record.get("data") or {}
    steps = (RecordType.STEP_RECORDED, RecordType.STEP_UPDATE)
    if record.get("type") in steps and data.get("party") != "client" and data.get("note"):
        return {**record, "data": {**data, "note": ""}}
    return record


def timeline(recorder: DeskRecorder, show_internal: bool = True) -> list[TimelineRow]:
    """Everything that happened so far, both parties, oldest first; without what is internal
    to the MSP unless ``show_internal`` (holders of the MSP)."""
    anchor = recorder.context.anchor()
    records = recorder.journal_records()
    shown = records if show_internal else (client_view(r) for r in records)
    rows = (_row(r, anchor) for r in shown if r is not None)
    return [r for r in rows if r is not None]


def observe(recorder: DeskRecorder, holder: Holder, form: dict[str, str]) -> Outcome:
    """Journal an observation from the evaluator's form."""
    if not is_evaluator(holder):
        return Outcome("forbidden")
    kind, step = form.get("kind", ""), form.get("step", "")
    text, capability = clean_note(form.get("text")), clean_note(form.get("capability"))[:80]
    known = {s.key for s in recorder.context.steps}
    if kind not in OBSERVATION_KINDS or (step and step not in known) or not text:
        return Outcome("rejected", "", "an observation needs a kind, a known step (or none) and a text")
    data = {
        "kind": kind,
        "step": step,
        "capability": capability,
        "text": text,
        "internal": "internal" in form,
    }
    if not recorder.context.evaluate(RecordType.OBSERVATION_RECORDED, holder.name, data):
        return Outcome("rejected", "", "no drill is in progress")
    return Outcome("recorded", "observation")


def rate(recorder: DeskRecorder, holder: Holder, form: dict[str, str]) -> Outcome:
    """Journal an HSEEP rating of a capability from the evaluator's form."""
    if not is_evaluator(holder):
        return Outcome("forbidden")
    capability, rating = clean_note(form.get("capability"))[:80], form.get("rating", "")
    rationale = clean_note(form.get("rationale"))
    if not capability or rating not in RATINGS or not rationale:
        return Outcome("rejected", "", "a rating needs a capability, P/S/M/U and a rationale")
    data = {"capability": capability, "rating": rating, "rationale": rationale}
    if not recorder.context.evaluate(RecordType.RATING_RECORDED, holder.name, data):
        return Outcome("rejected", "", "no drill is in progress")
    return Outcome("recorded", "rating")


def map_entry(recorder: DeskRecorder, holder: Holder, form: dict[str, str]) -> Outcome:
    """Map a player's entry to a step of their party (or to "no step") from the evaluator's form."""
    if not is_evaluator(holder):
        return Outcome("forbidden")
    entry, step = form.get("entry", ""), form.get("step", "")
    if not entry.isdigit() or len(entry) > 9 or not step:
        return Outcome("rejected", "", "choose an entry and a step (or no step)")
    step = "" if step == NO_STEP else step
    reason = recorder.context.map_entry(holder.name, int(entry), step)
    if reason:
        return Outcome("rejected", step, reason)
    return Outcome("recorded", step or f"entry #{entry}: no step")


def correct(recorder: DeskRecorder, holder: Holder, form: dict[str, str]) -> Outcome:
    """Move a wrongly recorded step to the right step (same time, same author)."""
    if not is_evaluator(holder):
        return Outcome("forbidden")
    step, to = form.get("step", ""), form.get("to", "")
    if not step or not to or step == to:
        return Outcome("rejected", "", "choose the recorded step and the step it should have been")
    reason = recorder.context.correct_step(holder.name, step, to)
    if reason:
        return Outcome("rejected", to, reason)
    return Outcome("recorded", f"{step} → {to}")
