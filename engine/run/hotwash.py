"""The hotwash: after ENDEX each participant answers a short survey on their desk page.

What went well, what to improve, and their confidence (1–5). The run opens it once the
faults are reverted and the steps settled (``hotwash.opened``), keeps it open for the
playbook's window (or until everyone has answered) and journals each participant's answers
once (``hotwash.answered``), before ``run.ended``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Literal

from engine.model.types import Participant
from engine.record.journal import Journal
from engine.record.records import RecordType

__all__ = ["HOTWASH_TEXT_MAX", "HotwashAnswer", "HotwashBook", "HotwashState"]

HOTWASH_TEXT_MAX = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
HotwashState = Literal["none", "open", "answered", "closed"]


@dataclass(frozen=True)
class HotwashAnswer:
    """One participant's survey answers."""

    by: str
    party: str
    role: str
    language: str
    went_well: str
    improve: str
    confidence: int  # 1 (not at all confident) … 5 (fully confident)
    internal: bool = False  # for the MSP's eyes only: left out of the client's debrief


def _text(value: str) -> str:
    return _CONTROL.sub(" ", value).strip()


class HotwashBook:
    """Opens and closes the survey and journals each participant's answers once."""

    def __init__(self, journal: Journal, participants: tuple[Participant, ...]) -> None:
        self._journal = journal
        self._names = tuple(p.name for p in participants)
        self._lock = threading.Lock()
        self._open = False
        self._opened = False
        self._answered: set[str] = set()

    def open(self, window_s: float) -> None:
        """ENDEX: journal ``hotwash.opened`` and take answers."""
        with self._lock:
            self._journal.append(RecordType.HOTWASH_OPENED, window_s=window_s, participants=list(self._names))
            self._open = self._opened = True

    def close(self) -> None:
        """The window is over: later answers are refused."""
        with self._lock:
            self._open = False

    def state(self, name: str) -> HotwashState:
        """Where ``name`` stands: no hotwash yet, open for them, answered, or closed."""
        with self._lock:
            if name in self._answered:
                return "answered"
            if self._open:
                return "open"
            return "closed" if self._opened else "none"

    def everyone_answered(self) -> bool:
        """True when every participant of the environment has answered."""
        with self._lock:
            return bool(self._names) and set(self._names) <= self._answered

    def answer(self, answer: HotwashAnswer) -> str:
        """Journal ``answer``; '' when done, else why not."""
        went_well, improve = _text(answer.went_well), _text(answer.improve)
        if isinstance(answer.confidence, bool) or answer.confidence not in range(1, 6):
            return "confidence must be a whole number from 1 to 5"
        if not went_well and not improve:
            return "say what went well or what to improve"
        if max(len(went_well), len(improve)) > HOTWASH_TEXT_MAX:
            return f"answers are at most {HOTWASH_TEXT_MAX} characters"
        with self._lock:
            if not self._open:
                return "the hotwash is not open"
            if answer.by in self._answered:
                return "you have already answered"
            self._journal.append(
                RecordType.HOTWASH_ANSWERED, by=answer.by, party=answer.party, role=answer.role,
                language=answer.language, went_well=went_well, improve=improve,
                confidence=answer.confidence, internal=answer.internal,
            )  # fmt: skip
            self._answered.add(answer.by)
        return ""
