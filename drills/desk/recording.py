"""What the desk does when someone says "done": check the party, record, explain the outcome.

Every path (desk page, JSON API, webhook) ends in :meth:`DeskRecorder.ack` or
:meth:`DeskRecorder.webhook`, which call the engine's ``context.record`` — the engine stamps
the receipt time and journals ``step.recorded`` or ``step.rejected`` with its reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, cast

from drills.desk.participants import Holder
from drills.desk.webhooks import Delivery, field, matches, ticket_time
from engine.clock import iso
from engine.model.types import Participant, Party, ResponseStep
from engine.record.journal import JOURNAL_NAME
from engine.record.records import RecordType
from engine.record.steps import current_step_records
from engine.run.hotwash import HotwashAnswer, HotwashState
from engine.run.injects import recipients
from engine.run.responses import Ack, ResponderContext

MAX_NOTE = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
Status = Literal["recorded", "duplicate", "rejected", "forbidden", "ignored"]


@dataclass(frozen=True)
class Outcome:
    """What happened to one ack: recorded, a duplicate, rejected (with the engine's reason),
    forbidden (not this person's step: answered like any invalid request) or ignored."""

    status: Status
    step: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Arrival:
    """When an ack reached the desk, and the moment the person says they acted, if they say."""

    received: float  # UTC epoch seconds, the desk's clock at the request's arrival
    claimed_at: float | None = None  # UTC epoch seconds, their client's clock


@dataclass(frozen=True)
class StepView:
    """One step as the desk page shows it."""

    key: str
    title: str
    kind: str
    within_s: float
    elapsed_s: float | None
    by: str
    source: str
    note: str
    out_of_order: bool
    choice: str = ""
    updating: bool = False  # done, and now takes status updates (update cadence)

    @property
    def done(self) -> bool:
        """Recorded already."""
        return self.elapsed_s is not None

    @property
    def manual(self) -> bool:
        """A person (or service desk) records it; probe steps record themselves."""
        return self.kind in ("ack", "webhook")


@dataclass(frozen=True)
class MessageView:
    """An inject as its recipient sees it on the desk: marked text in their language."""

    inject: str
    sender: str
    text: str
    elapsed_s: float | None


@dataclass(frozen=True)
class DecisionView:
    """A decision point the holder's party must take."""

    key: str
    title: str
    question: str
    options: tuple[str, ...]
    choice: str


@dataclass(frozen=True)
class EntryView:
    """A player's free-text entry on the evaluator's page, with its mapping so far."""

    seq: int
    elapsed_s: float | None
    by: str
    party: str
    text: str
    mapped_to: str | None  # a step key, "" for "no step", None while unmapped
    mapped_by: str = ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def clean_note(note: Any) -> str:
    """A note as stored: text, no control characters, at most 500 characters."""
    return _CONTROL.sub(" ", str(note or ""))[:MAX_NOTE].strip()


class DeskRecorder:
    """Turns a participant's or service desk's "done" into a journaled step."""

    def __init__(self, context: ResponderContext) -> None:
        self.context = context
        self._steps = {s.key: s for s in context.steps}

    # ---------------------------------------------------------------- state

    def drill_live(self) -> bool:
        """True once the first fault is applied (before that the drill is still a surprise)."""
        return self.context.anchor() is not None

    def elapsed(self) -> float | None:
        """Seconds since impact start, None before it."""
        anchor = self.context.anchor()
        return None if anchor is None else self.context.clock.now() - anchor

    def messages(self, holder: Holder, language: str) -> list[MessageView]:
        """Injects sent to the desk for ``holder`` (by party, role or name), oldest first."""
        anchor = self.context.anchor()
        me = (Participant(holder.name, cast(Party, holder.party), holder.role),)
        views = []
        for record in self._journal_records():
            data = record.get("data", {})
            if record.get("type") != RecordType.INJECT_SENT or data.get("channel") != "desk":
                continue
            if not recipients(tuple(data.get("to", ())), me):
                continue
            texts: dict[str, str] = data.get("text", {})
            text = texts.get(language) or texts.get("en") or next(iter(texts.values()), "")
            elapsed = float(record["t"]) - anchor if anchor is not None else None
            senders = data.get("sender_text") or {}
            sender = str(senders.get(language) or data.get("sender", ""))
            views.append(MessageView(str(data.get("inject")), sender, text, elapsed))
        return views

    def decisions(self, party: str, language: str) -> list[DecisionView]:
        """The party's decision points, with the choice made so far."""
        recorded = self._recorded_records()
        views = []
        for key, decision in self.context.exercise.decisions.items():
            step = self._steps.get(key)
            if step is None or step.party != party:
                continue
            title = self.context.exercise.title_in(key, step.title, language)
            question = decision.question.get(language) or decision.question.get("en") or title
            choice = str(recorded.get(key, {}).get("data", {}).get("choice", ""))
            views.append(DecisionView(key, title, question, decision.options, choice))
        return views

    def decide(self, holder: Holder, step: str, choice: str, rationale: str, source: str) -> Outcome:
        """Record a decision: the chosen option and a one-line rationale."""
        closed = self.context.closed_reason()
        if closed:  # the same answer for every step, real or guessed: no answer key
            return Outcome("rejected", "", closed)
        key = self.step_key(holder, step, decision=True)
        if key is None:
            return Outcome("forbidden")
        note = clean_note(rationale)[:200]
        return self._record(
            Ack(key, by=holder.name, source=source, note=note, choice=clean_note(choice)[:64])
        )

    def log_entry(self, holder: Holder, text: str) -> Outcome:
        """A free-text entry (what the player did, in their words) for the evaluator to map."""
        text = clean_note(text)
        if not text:
            return Outcome("rejected", "", "write what you did")
        if not self.context.log_entry(holder.name, holder.party, text):
            return Outcome("rejected", "", "no drill is in progress")
        return Outcome("recorded", "entry")

    def step_key(self, holder: Holder, step: str, decision: bool = False) -> str | None:
        """The full key of ``step`` if ``holder`` may record it (own party, manual), else None."""
        key = step if "." in step else f"{holder.party}.{step}"
        found = self._steps.get(key)
        if found is None or found.party != holder.party or found.recorded_by.kind == "probe":
            return None
        if (found.recorded_by.kind == "decision") != decision:
            return None
        return key

    def board(self, party: str) -> list[StepView]:
        """The party's steps in playbook order, with what has been recorded so far."""
        anchor = self.context.anchor()
        recorded = self._recorded_records()
        views = []
        for step in (s for s in self.context.steps if s.party == party and s.recorded_by.kind != "decision"):
            views.append(self._view(step, anchor, recorded.get(step.key)))
        return views

    def actions(self, party: str, language: str = "en") -> list[StepView]:
        """The blind players' list: the party's manual actions in alphabetical order (in their
        language) — no targets, no order, nothing about what comes next or what monitoring records."""
        exercise = self.context.exercise
        views = [
            replace(v, title=exercise.title_in(v.key, v.title, language))
            for v in self.board(party)
            if v.manual
        ]
        return sorted(views, key=lambda v: v.title.casefold())

    def entries(self) -> list[EntryView]:
        """Players' free-text entries, oldest first, with the evaluator's mapping if any."""
        anchor = self.context.anchor()
        records = self._journal_records()
        mapped = {
            int(r["data"]["entry"]): r["data"] for r in records if r.get("type") == RecordType.ENTRY_MAPPED
        }
        views = []
        for record in (r for r in records if r.get("type") == RecordType.ENTRY_LOGGED):
            data, seq = record["data"], int(record["seq"])
            mapping = mapped.get(seq, {})
            elapsed = None if anchor is None else float(record["t"]) - anchor
            step = None if seq not in mapped else str(mapping.get("step", ""))
            by, party, text = str(data["by"]), str(data["party"]), str(data["text"])
            views.append(EntryView(seq, elapsed, by, party, text, step, str(mapping.get("by", ""))))
        return views

    def hotwash_state(self, holder: Holder) -> HotwashState:
        """Whether ``holder`` has a hotwash survey to answer now (see :mod:`engine.run.hotwash`)."""
        return self.context.hotwash_state(holder.name)

    def answer_hotwash(self, holder: Holder, language: str, answers: dict[str, Any]) -> Outcome:
        """Journal ``holder``'s hotwash answers (texts cleaned and bounded, confidence 1–5)."""
        confidence = answers.get("confidence")
        if isinstance(confidence, str) and confidence.strip() in ("1", "2", "3", "4", "5"):
            confidence = int(confidence)
        if isinstance(confidence, bool) or not isinstance(confidence, int):
            confidence = 0  # refused by the engine with the reason
        answer = HotwashAnswer(
            by=holder.name,
            party=holder.party,
            role=holder.role,
            language=language,
            went_well=_text(answers.get("went_well")),  # the engine cleans, bounds and validates
            improve=_text(answers.get("improve")),
            confidence=confidence,
            internal=bool(answers.get("internal")) and holder.party == "msp",
        )
        reason = self.context.answer_hotwash(answer)
        return Outcome("rejected", "hotwash", reason) if reason else Outcome("recorded", "hotwash")

    # ---------------------------------------------------------------- recording

    def ack(self, holder: Holder, step: str, note: str, source: str, arrival: Arrival) -> Outcome:
        """Record ``step`` for ``holder``; forbidden when it is not theirs to record.

        ``arrival``: when the request reached the desk, the receipt the engine counts; with the
        person's own stamp in it, the engine may count that instead (inside the transit window;
        otherwise the receipt, and the journal says why). Outside the drill (before the first
        fault, after ENDEX) every step gets the same answer, so nobody learns which exist.
        """
        closed = self.context.closed_reason()
        if closed:
            return Outcome("rejected", "", closed)
        key = self.step_key(holder, step)
        if key is None:
            return Outcome("forbidden")
        ack = Ack(
            key,
            by=holder.name,
            source=source,
            note=clean_note(note),
            claimed_at=arrival.claimed_at,
            sent_at=arrival.received,
            arrived_at=arrival.received,
        )
        return self._record(ack)

    def webhook(self, delivery: Delivery) -> Outcome:
        """Record the hook's step when the payload matches this run; ignore it otherwise."""
        hook = delivery.hook
        if not matches(hook, delivery.payload, self.context.run_id):
            return Outcome("ignored", hook.step, "the delivery does not match this drill")
        by_value = field(delivery.payload, hook.by_field) if hook.by_field else None
        by = clean_note(by_value)[:100] if isinstance(by_value, str) and by_value.strip() else ""
        note = f"service desk {hook.name!r}, delivery {clean_note(delivery.delivery_id)[:80]}"
        note += self._ticket_note(ticket_time(hook, delivery.payload))
        return self._record(Ack(hook.step, by=by or f"service desk {hook.name}", source="webhook", note=note))

    def _ticket_note(self, created: datetime | None) -> str:
        """The ticket's own time, kept when it lies inside the drill and not in the future."""
        anchor = self.context.anchor()
        if created is None or anchor is None:
            return ""
        start, now = self.context.clock.utc(anchor), self.context.clock.utc()
        if not start <= created <= now:
            return f"; ticket time {iso(created)} ignored (outside the drill or in the future)"
        offset = (created - start).total_seconds()
        return f"; ticket created {iso(created)} (+{offset:.3f}s after impact start)"

    def _record(self, ack: Ack) -> Outcome:
        if self.context.updating(ack.step):
            if self.context.record(ack):
                return Outcome("recorded", ack.step, "update")
            return Outcome("rejected", ack.step, self._rejection_reason(ack))
        if self.context.recorded_at(ack.step) is not None:
            return Outcome("duplicate", ack.step, "already recorded")
        if self.context.record(ack):
            return Outcome("recorded", ack.step)
        if self.context.recorded_at(ack.step) is not None:
            return Outcome("duplicate", ack.step, "already recorded")
        return Outcome("rejected", ack.step, self._rejection_reason(ack))

    # ---------------------------------------------------------------- journal

    def journal_records(self) -> list[dict[str, Any]]:
        """The journal so far (a line being written is skipped)."""
        return self._journal_records()

    def _journal_records(self) -> list[dict[str, Any]]:
        path = self.context.run_dir / JOURNAL_NAME
        try:
            lines = path.read_text().splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line being written right now
        return out

    def _recorded_records(self) -> dict[str, dict[str, Any]]:
        return {r["data"]["step"]: dict(r) for r in current_step_records(self._journal_records())}

    def _rejection_reason(self, ack: Ack) -> str:
        for record in reversed(self._journal_records()):
            data = record.get("data", {})
            if (
                record.get("type") == RecordType.STEP_REJECTED
                and data.get("step") == ack.step
                and data.get("by") == ack.by
            ):
                return str(data.get("reason", "rejected"))
        return "rejected by the engine"

    def _view(self, step: ResponseStep, anchor: float | None, record: dict[str, Any] | None) -> StepView:
        data = record["data"] if record else {}
        acted = record["data"].get("acted_t", record["t"]) if record else None
        elapsed = float(acted) - anchor if acted is not None and anchor is not None else None
        return StepView(
            key=step.key,
            title=step.title,
            kind=step.recorded_by.kind,
            within_s=step.within_s,
            elapsed_s=elapsed,
            by=str(data.get("by", "")),
            source=str(data.get("source", "")),
            note=str(data.get("note", "")),
            out_of_order=bool(data.get("out_of_order", False)),
            choice=str(data.get("choice", "")),
            updating=record is not None and self.context.updating(step.key),
        )
