"""Response steps during a run: who did what, when — recorded once, in the journal.

:class:`StepBook` is the single place a step gets recorded (from an ack, a webhook or a probe
transition). The :class:`AckInbox` is the durable local hand-off used by ``bcdrill ack`` and
the simulated responders: a JSON file dropped atomically into ``<run>/inbox/``; the engine
stamps it with its own receipt time when it picks it up, or with the client's stamp of the
moment the person acted when that lies in the transit window (:mod:`engine.run.stamps`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from engine.clock import Clock, iso
from engine.logsetup import get_logger
from engine.model.exercise import Exercise
from engine.model.types import Participant, Playbook, ResponseStep, RunbookAction
from engine.record.inbox import Ack, read_ack, write_ack
from engine.record.journal import Journal
from engine.record.records import RecordType
from engine.run.hotwash import HotwashAnswer, HotwashState
from engine.run.stamps import CLOCK_GRAIN_S, decide_stamp

__all__ = ["Ack", "AckInbox", "ResponderContext", "Responders", "StepBook", "write_ack"]

log = get_logger(__name__)

INBOX_POLL_S = 0.02


class StepBook:
    """Tracks which steps are recorded; the only writer of ``step.recorded``."""

    def __init__(self, playbook: Playbook, journal: Journal, clock: Clock) -> None:
        self._steps = {s.key: s for s in playbook.steps}
        self._decisions = playbook.exercise.decisions
        self._cadences = playbook.exercise.cadences
        self._journal = journal
        self._clock = clock
        self._lock = threading.Lock()
        self._recorded: dict[str, float] = {}
        self._records: dict[str, dict[str, Any]] = {}  # the standing step.recorded record per step
        self._entries: dict[int, dict[str, Any]] = {}  # players' entry.logged records by seq
        self._mapped: set[int] = set()  # entries an evaluator has mapped (to a step or none)
        self._anchor: float | None = None
        self._closed = False
        self._evaluating = False  # evaluators may still record after the steps closed (hotwash)

    @property
    def anchor(self) -> float | None:
        """Run offset of the first applied fault (impact start), None before it."""
        return self._anchor

    def start_impact(self, t: float) -> None:
        """Note the first fault's application (only the first call counts)."""
        with self._lock:
            if self._anchor is None:
                self._anchor = t

    def close(self) -> None:
        """The drill is over: later acks are rejected (and evaluators' records too)."""
        with self._lock:
            self._closed = True
            self._evaluating = False

    def keep_evaluating(self) -> None:
        """ENDEX with a hotwash: steps stay closed to players, but evaluators still map entries,
        correct steps, observe and rate until :meth:`close` is called again."""
        with self._lock:
            self._evaluating = True

    def _evaluation_open(self) -> bool:
        return self._anchor is not None and (not self._closed or self._evaluating)

    def recorded_at(self, key: str) -> float | None:
        """Run offset at which ``key`` was recorded."""
        with self._lock:
            return self._recorded.get(key)

    def record(self, ack: Ack) -> bool:
        """Record ``ack`` if it is valid now; journal a rejection otherwise. True if recorded."""
        step = self._steps.get(ack.step)
        reason = self._rejection(ack, step)
        if reason:
            self._journal.append(
                RecordType.STEP_REJECTED, step=ack.step, by=ack.by, source=ack.source, reason=reason
            )
            log.info(RecordType.STEP_REJECTED, step=ack.step, reason=reason)
            return False
        assert step is not None
        with self._lock:
            if ack.step in self._recorded and self._updating(ack.step):
                self._journal.append(
                    RecordType.STEP_UPDATE, step=ack.step, party=step.party, by=ack.by, source=ack.source,
                    note=ack.note,
                )  # fmt: skip
                return True
            if ack.step in self._recorded:
                return False  # duplicates are idempotent
            stamp = self._stamp(ack)
            record = self._journal.append(
                RecordType.STEP_RECORDED,
                step=ack.step,
                party=step.party,
                by=ack.by,
                source=ack.source,
                note=ack.note,
                out_of_order=self._out_of_order(step),
                **({} if ack.observed_t is None else {"observed_t": ack.observed_t}),
                **({"choice": ack.choice} if ack.choice else {}),
                **stamp,
            )
            self._recorded[ack.step] = float(stamp.get("acted_t", record["t"]))
            self._records[ack.step] = record
        return True

    def _updating(self, key: str) -> bool:
        """True while a step with an update cadence takes updates (its ``until`` step not recorded)."""
        cadence = self._cadences.get(key)
        return cadence is not None and cadence.until not in self._recorded

    def updating(self, key: str) -> bool:
        """True when ``key`` has been recorded and now takes status updates (cadence)."""
        with self._lock:
            return key in self._recorded and self._updating(key)

    def evaluate(self, kind: str, by: str, data: Mapping[str, Any]) -> bool:
        """Journal an evaluator's observation or rating (``kind``); False when not live."""
        if kind not in (RecordType.OBSERVATION_RECORDED, RecordType.RATING_RECORDED):
            raise ValueError(f"not an evaluator record: {kind!r}")
        with self._lock:
            live = self._evaluation_open()
        if live:
            self._journal.append(kind, by=by, **data)
        return live

    def log_entry(self, by: str, party: str, text: str) -> bool:
        """Journal a player's free-text entry for the evaluator to map; False when not live."""
        with self._lock:
            live = self._anchor is not None and not self._closed
            if live:
                record = self._journal.append(RecordType.ENTRY_LOGGED, by=by, party=party, text=text)
                self._entries[int(record["seq"])] = record
        return live

    def live(self) -> bool:
        """True between impact start and the drill's end."""
        with self._lock:
            return self._anchor is not None and not self._closed

    def closed_reason(self) -> str:
        """Why no step can be recorded now: before the first fault, or after ENDEX; '' while live."""
        with self._lock:
            return self._closed_reason()

    def _closed_reason(self) -> str:
        if self._anchor is None:
            return "no fault has been applied yet"
        return "the drill has ended" if self._closed else ""

    def step(self, key: str) -> ResponseStep | None:
        """The response step called ``key``."""
        return self._steps.get(key)

    def entry(self, seq: int) -> tuple[dict[str, Any] | None, bool]:
        """The ``entry.logged`` record ``seq`` (None if there is none) and whether it is mapped."""
        with self._lock:
            return self._entries.get(seq), seq in self._mapped

    def record_of(self, key: str) -> dict[str, Any] | None:
        """The standing ``step.recorded`` record of ``key``."""
        with self._lock:
            return self._records.get(key)

    def reassign(
        self, ack: Ack, acted_t: float, preface: Mapping[str, Any], retract: str | None = None
    ) -> str:
        """An evaluator's mapping or correction: journal ``preface`` (its ``type`` and data), drop
        ``retract``'s record, record ``ack`` as done at ``acted_t``. '' when done, else the reason."""
        step = self._steps.get(ack.step)
        with self._lock:
            if not self._evaluation_open():
                return "no drill is in progress"
            if step is None or ack.step in self._recorded:
                return f"{ack.step} is already recorded" if step else f"unknown step {ack.step!r}"
            if retract is not None and retract not in self._records:
                return f"{retract} is not recorded"
            self._journal.append(str(preface["type"]), **{k: v for k, v in preface.items() if k != "type"})
            self._note_mapped(preface)
            if retract is not None:
                del self._recorded[retract], self._records[retract]
            record = self._journal.append(
                RecordType.STEP_RECORDED, step=ack.step, party=step.party, by=ack.by, source=ack.source,
                note=ack.note, out_of_order=self._out_of_order(step), acted_t=round(acted_t, 6),
            )  # fmt: skip
            self._recorded[ack.step], self._records[ack.step] = acted_t, record
        return ""

    def map_to_none(self, preface: Mapping[str, Any]) -> str:
        """Journal an evaluator's "no step" for an entry; '' when done, else the reason."""
        with self._lock:
            if not self._evaluation_open():
                return "no drill is in progress"
            self._journal.append(str(preface["type"]), **{k: v for k, v in preface.items() if k != "type"})
            self._note_mapped(preface)
        return ""

    def _note_mapped(self, preface: Mapping[str, Any]) -> None:
        if preface["type"] == RecordType.ENTRY_MAPPED:
            self._mapped.add(int(preface["entry"]))

    def _stamp(self, ack: Ack) -> dict[str, Any]:
        """The step's time fields: the probe's observation for a probe-derived step, else the
        client's stamp (``acted_t``) if believable, else why not.

        The receipt is the ack's arrival at bcdrill's front door when it says so (the desk's
        request, before the desk's thread got to the engine), else now; an arrival is counted as
        ``acted_t`` (never before impact start), so the engine's own queueing is not counted
        against the responder."""
        if ack.observed_t is not None:
            return self._observation(ack.observed_t)
        now = self._clock.now()
        received = self._clock.utc(now).timestamp()
        arrived = received if ack.arrived_at is None else min(ack.arrived_at, received)
        arrival = {} if ack.arrived_at is None else self._arrival(now - (received - arrived))
        if ack.claimed_at is None:
            return arrival
        decision = decide_stamp(ack.claimed_at, ack.sent_at, arrived)
        acted_t = now - (received - decision.at)
        fields: dict[str, Any] = {"claimed_at": iso(datetime.fromtimestamp(ack.claimed_at, UTC)), **arrival}
        if decision.source == "client" and self._anchor is not None and acted_t < self._anchor:
            if acted_t < self._anchor - CLOCK_GRAIN_S:
                return {**fields, "stamp": "receipt", "stamp_reason": "client stamp is before impact start"}
            acted_t = self._anchor  # within the clocks' grain of it: the impact start itself
        if decision.source == "client":
            return {**fields, "stamp": "client", "acted_t": round(acted_t, 6)}
        return {**fields, "stamp": "receipt", "stamp_reason": decision.reason}

    def _observation(self, observed_t: float) -> dict[str, Any]:
        """The time fields of a probe-derived step: when its probe first observed the state (the
        start of the check that saw it), never before impact start — not the later moment the
        check returned and the step was written, and the same instant the recovery time uses."""
        if self._anchor is not None:
            observed_t = max(observed_t, self._anchor)
        return {"stamp": "probe", "acted_t": round(observed_t, 6)}

    def _arrival(self, acted_t: float) -> dict[str, Any]:
        """The time fields of a receipt counted at the ack's arrival."""
        if self._anchor is not None:
            acted_t = max(acted_t, self._anchor)  # it arrived as the fault was being applied
        return {"stamp": "receipt", "acted_t": round(acted_t, 6)}

    def _rejection(self, ack: Ack, step: ResponseStep | None) -> str:
        if step is None:
            return f"unknown step {ack.step!r} (known: {', '.join(sorted(self._steps))})"
        if closed := self._closed_reason():
            return closed
        decision = self._decisions.get(ack.step)
        if decision is not None and ack.choice not in decision.options:
            return f"choose one of {', '.join(decision.options)} (got {ack.choice!r})"
        return ""

    def _out_of_order(self, step: ResponseStep) -> bool:
        if step.after is None:
            return False
        after_key = step.after if "." in step.after else f"{step.party}.{step.after}"
        return after_key not in self._recorded

    def settled(self, step: ResponseStep, now: float, late_limit: float, exercised: bool) -> bool:
        """Recorded, or past the point where it can only count as missed (or not exercised)."""
        if self.recorded_at(step.key) is not None or not exercised:
            return True
        return self._anchor is not None and now - self._anchor > step.within_s * late_limit


class AckInbox:
    """Polls ``<run>/inbox/`` and records each ack through the :class:`StepBook`."""

    def __init__(self, run_dir: Path, book: StepBook) -> None:
        self._inbox = run_dir / "inbox"
        self._done = self._inbox / "done"
        self._done.mkdir(parents=True, exist_ok=True)
        self._book = book
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ack-inbox", daemon=True)

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def stop(self) -> None:
        """Take in what is there, then stop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.drain()

    def drain(self) -> None:
        """Record every ack waiting in the inbox, oldest first. A file that cannot be taken in
        is logged and set aside with the others: the acks after it still count."""
        try:
            files = sorted(self._inbox.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        except OSError as exc:  # a file removed while listing; the next poll sees the rest
            log.warning("inbox.read_failed", error=str(exc))
            return
        for path in files:
            try:
                self._take(path)
            except OSError as exc:  # a half-removed file; the next poll sees the rest
                log.warning("inbox.read_failed", error=str(exc))
            except Exception as exc:  # one bad ack must not stop the inbox (nor the run's end)
                log.error("inbox.ack_failed", file=path.name, error=type(exc).__name__)

    def _take(self, path: Path) -> None:
        ack = read_ack(path)
        os.replace(path, self._done / path.name)
        if ack is not None:
            self._book.record(ack)

    def _loop(self) -> None:
        while not self._stop.wait(INBOX_POLL_S):
            self.drain()


@dataclass(frozen=True)
class ResponderContext:
    """What a responders or run-service plugin sees of the run.

    ``record`` journals a step at the engine's receipt time (the desk's path); ``anchor`` is
    the impact start (None before the first fault is applied).
    """

    run_id: str
    run_dir: Path
    client: str
    environment: str
    steps: tuple[ResponseStep, ...]
    participants: tuple[Participant, ...]
    seed: int
    clock: Clock
    anchor: Callable[[], float | None]
    recorded_at: Callable[[str], float | None]
    record: Callable[[Ack], bool]
    options: Mapping[str, str]
    #: Performs a step's runbook action for real (see :mod:`engine.run.runbook`) and says what
    #: was done; raises :class:`~engine.errors.DrillError` when it cannot.
    perform_runbook: Callable[[RunbookAction], str] | None = None
    exercise: Exercise = field(default_factory=Exercise)  # injects, players' view, decisions
    log_entry: Callable[[str, str, str], bool] = lambda _by, _party, _text: False  # see StepBook
    updating: Callable[[str], bool] = lambda _key: False  # a recorded step taking status updates
    evaluate: Callable[[str, str, Mapping[str, Any]], bool] = lambda _kind, _by, _data: False  # see StepBook
    #: An evaluator maps a player's entry (its seq) to a step key ('' = no step): '' or the reason.
    map_entry: Callable[[str, int, str], str] = lambda _by, _entry, _step: "not available"
    #: An evaluator moves a step's record to another step: '' or the reason.
    correct_step: Callable[[str, str, str], str] = lambda _by, _step, _to: "not available"
    #: Why no step can be recorded now (before the first fault, after ENDEX); '' while live.
    closed_reason: Callable[[], str] = lambda: ""
    #: The hotwash survey for a participant (by name): "none" | "open" | "answered" | "closed".
    hotwash_state: Callable[[str], HotwashState] = lambda _name: "none"
    #: Journal one participant's hotwash answers: '' or the reason they were refused.
    answer_hotwash: Callable[[HotwashAnswer], str] = lambda _answer: "the hotwash is not open"


class Responders(Protocol):
    """A source of manual step records during a run (e.g. simulated people)."""

    def start(self) -> None:
        """Begin (non-blocking)."""

    def stop(self) -> None:
        """End; must return promptly."""
