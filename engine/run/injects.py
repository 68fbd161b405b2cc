"""The drill's script during a run: the kick-off alert and the injects, each sent when due.

:class:`InjectScript` watches the run (impact start, recorded steps, probe states) and, when
an alert or inject is due, journals ``inject.sent`` for the drill desk — the desk shows the
message to its recipients from the journal — and hands every outside channel
(:mod:`engine.run.notify`) to a worker thread, which journals ``inject.sent`` or
``inject.failed`` with the reason for each delivery. Nothing is dropped silently.

Controllers add ad-hoc injects during a run with :func:`write_adhoc_inject` (what
``bcdrill inject RUN`` does): a JSON file dropped atomically into ``<run>/injects/``.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from engine.clock import Clock
from engine.errors import InputError
from engine.logsetup import get_logger
from engine.model.exercise import LANGUAGES, Channel, Condition, Exercise, Inject
from engine.model.types import Participant, ResponseStep
from engine.record.journal import Journal
from engine.record.records import RecordType
from engine.run.notify import DELIVERY_TIMEOUT_S, DeliveryError, Notice, deliver
from engine.run.responses import StepBook

log = get_logger(__name__)

__all__ = ["ADHOC_DIR", "InjectScript", "exercise_layout", "recipients", "write_adhoc_inject"]

TICK_S = 0.02
ADHOC_DIR = "injects"
MAX_ADHOC_TEXT = 1000


def recipients(to: tuple[str, ...], participants: tuple[Participant, ...]) -> list[Participant]:
    """The participants an inject addressed to ``to`` (parties, roles or names) reaches."""
    wanted = {t.casefold() for t in to}
    return [
        p
        for p in participants
        if p.party in wanted or p.name.casefold() in wanted or (p.role and p.role.casefold() in wanted)
    ]


def write_adhoc_inject(
    run_dir: Path, to: str, text: str, sender: str = "controller", language: str = "en"
) -> str:
    """Drop an ad-hoc inject into a live run (atomic); return its id."""
    folder = run_dir / ADHOC_DIR
    if not (run_dir / "inbox").is_dir():
        raise InputError(f"{run_dir} is not a live run folder (no inbox)")
    if language not in LANGUAGES:
        raise InputError(f"language {language!r} must be one of {', '.join(LANGUAGES)}")
    text = text.strip()
    if not text or len(text) > MAX_ADHOC_TEXT:
        raise InputError(f"the inject text must have 1 to {MAX_ADHOC_TEXT} characters")
    folder.mkdir(exist_ok=True)
    inject_id = f"adhoc-{secrets.token_hex(4)}"
    tmp = folder / f".{inject_id}.tmp"
    with open(tmp, "w") as handle:
        json.dump({"id": inject_id, "to": to, "text": {language: text}, "from": sender}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, folder / f"{inject_id}.json")
    return inject_id


class InjectScript:
    """Sends the playbook's alert and injects when due, and ad-hoc ones when they arrive."""

    def __init__(
        self,
        exercise: Exercise,
        steps: tuple[ResponseStep, ...],
        participants: tuple[Participant, ...],
        journal: Journal,
        book: StepBook,
        clock: Clock,
        run_dir: Path,
    ) -> None:
        self._exercise = exercise
        self._steps = {s.key: s for s in steps}
        self._participants = participants
        self._journal = journal
        self._book = book
        self._clock = clock
        self._run_dir = run_dir
        self._pending = list(exercise.scripted)
        self._probes: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="inject-script", daemon=True)
        self._outside = ThreadPoolExecutor(max_workers=2, thread_name_prefix="inject-delivery")
        self._deliveries: list[Any] = []
        journal.subscribe(self._on_record)

    def start(self) -> None:
        """Start watching for due injects."""
        (self._run_dir / ADHOC_DIR).mkdir(exist_ok=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop; ad-hoc injects waiting are sent to the desk; outside deliveries get their time."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._take_adhoc()
        wait(self._deliveries, timeout=DELIVERY_TIMEOUT_S * 2)
        self._outside.shutdown(wait=False, cancel_futures=True)

    # ---------------------------------------------------------------- watching

    def _on_record(self, record: Mapping[str, Any]) -> None:
        if record["type"] == RecordType.PROBE_CHANGED:
            self._probes[record["data"]["probe"]] = record["data"]["state"]

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.tick()
            except Exception as exc:  # a broken inject must not stop the drill; it is journaled
                log.error("inject.loop_failed", error=str(exc))

    def tick(self) -> None:
        """Send what is due now (called by the loop; public for tests with a fake clock)."""
        anchor = self._book.anchor
        if anchor is None:
            return
        elapsed = self._clock.now() - anchor
        for inject in list(self._pending):
            trigger = self._trigger(inject, elapsed)
            if trigger:
                self._pending.remove(inject)
                self.send(inject, trigger)
        self._take_adhoc()

    def _trigger(self, inject: Inject, elapsed: float) -> str:
        if inject.when is not None:
            return f"when {inject.when.describe()}" if self._holds(inject.when, elapsed) else ""
        at = inject.at_s or 0.0
        return f"at +{at:g}s" if elapsed >= at else ""

    def _holds(self, condition: Condition, elapsed: float) -> bool:
        if condition.probe is not None:
            return self._probes.get(condition.probe) == condition.state
        assert condition.step is not None
        done = self._book.recorded_at(condition.step) is not None
        if condition.state == "done":
            return done
        step = self._steps.get(condition.step)
        return not done and step is not None and elapsed > step.within_s

    # ---------------------------------------------------------------- sending

    def send(self, inject: Inject, trigger: str, adhoc: bool = False) -> None:
        """Journal the inject for the desk, then deliver it through its outside channels."""
        people = recipients(inject.to, self._participants)
        expect = inject.expect
        self._journal.append(
            RecordType.INJECT_SENT,
            inject=inject.id,
            kind=inject.kind,
            channel="desk",
            to=list(inject.to),
            recipients=[p.name for p in people],
            sender=inject.sender,
            sender_text=dict(inject.sender_text),
            text=inject.messages(),
            trigger=trigger,
            adhoc=adhoc,
            expect=None if expect is None else {"step": expect.step, "within_s": expect.within_s},
        )
        language = people[0].language if people else "en"
        for channel in inject.via:
            self._deliveries.append(self._outside.submit(self._deliver, inject, channel, language))

    def _deliver(self, inject: Inject, channel: Channel, language: str) -> None:
        text = inject.text_in(language)
        notice = Notice(
            inject=inject.id,
            run_id=self._run_dir.name,
            title=text.split("\n", 1)[0][:200],
            text=text,
            severity=inject.severity,
            at=self._clock.utc(),
            labels={"party": ",".join(inject.to)},
        )
        try:
            deliver(channel, notice)
        except DeliveryError as exc:
            self._journal.append(
                RecordType.INJECT_FAILED,
                inject=inject.id,
                kind=inject.kind,
                channel=channel.kind,
                reason=str(exc),
            )
            log.warning(RecordType.INJECT_FAILED, inject=inject.id, channel=channel.kind, reason=str(exc))
            return
        except Exception as exc:  # an unexpected failure of a channel library is still a failed delivery
            reason = f"{channel.kind}: {type(exc).__name__}"
            self._journal.append(
                RecordType.INJECT_FAILED,
                inject=inject.id,
                kind=inject.kind,
                channel=channel.kind,
                reason=reason,
            )
            return
        self._journal.append(
            RecordType.INJECT_SENT,
            inject=inject.id,
            kind=inject.kind,
            channel=channel.kind,
            to=list(inject.to),
            language=language if language in inject.text else "en",
        )

    def _failed(self, inject: Inject, channel: Channel, reason: str) -> None:
        self._journal.append(
            RecordType.INJECT_FAILED, inject=inject.id, kind=inject.kind, channel=channel.kind, reason=reason
        )
        log.warning(RecordType.INJECT_FAILED, inject=inject.id, channel=channel.kind, reason=reason)

    def _take_adhoc(self) -> None:
        folder = self._run_dir / ADHOC_DIR
        for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns):
            try:
                data = json.loads(path.read_text())
                inject = Inject(
                    id=str(data["id"])[:40],
                    to=(str(data["to"])[:100],),
                    text={
                        k: str(v)[:MAX_ADHOC_TEXT] for k, v in dict(data["text"]).items() if k in LANGUAGES
                    },
                    sender=str(data.get("from", "controller"))[:100],
                )
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("inject.bad_adhoc", file=path.name)
                inject = None
            path.unlink(missing_ok=True)
            if inject is not None and inject.text:
                self.send(inject, "ad hoc by a controller", adhoc=True)


def exercise_layout(exercise: Exercise) -> dict[str, Any]:
    """The script as ``run.started`` keeps it (no secrets: channels by kind only)."""

    def row(inject: Inject) -> dict[str, Any]:
        return {
            "id": inject.id,
            "kind": inject.kind,
            "to": list(inject.to),
            "sender": inject.sender,
            "at_s": inject.at_s,
            "when": None if inject.when is None else inject.when.describe(),
            "via": [c.kind for c in inject.via],
            "expect": None
            if inject.expect is None
            else {"step": inject.expect.step, "within_s": inject.expect.within_s},
        }

    return {
        "players": exercise.players,
        "injects": [row(i) for i in exercise.scripted],
        "cadences": {key: {"every_s": c.every_s, "until": c.until} for key, c in exercise.cadences.items()},
        "decisions": {
            key: {"options": list(d.options), "expected": list(d.expected)}
            for key, d in exercise.decisions.items()
        },
        "hotwash": None if exercise.hotwash is None else {"window_s": exercise.hotwash.window_s},
    }
