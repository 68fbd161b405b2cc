"""Why a scheduled drill did not run: held, postponed or dropped, and the reason.

A precheck (``bcdrill.prechecks``) answers a scheduled drill's flow run just before anything
is injected. Its answer decides the flow run's final Prefect state, so the Prefect UI tells
the truth: a drill that did not run never shows as a green *Completed*.

| kind        | meaning                                                  | Prefect state            |
| ----------- | -------------------------------------------------------- | ------------------------ |
| ``held``    | not started, nothing rescheduled (not a deployment run)  | Cancelled, "Held"        |
| ``postponed`` | moved to a later slot of its window (a new flow run)   | Cancelled, "Postponed"   |
| ``dropped`` | no allowed slot left: the contracted drill is not delivered | Failed, "Not delivered" |
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Hold", "HoldKind"]


class HoldKind(StrEnum):
    """What became of a drill a precheck stopped."""

    HELD = "held"
    POSTPONED = "postponed"
    DROPPED = "dropped"


@dataclass(frozen=True)
class Hold:
    """A precheck's decision not to run a drill now, and why (a line a controller can act on)."""

    kind: HoldKind
    reason: str

    @classmethod
    def of(cls, answer: Hold | str) -> Hold:
        """A precheck's answer as a :class:`Hold` (a plain reason means ``held``)."""
        return answer if isinstance(answer, Hold) else cls(HoldKind.HELD, answer)

    @property
    def state_name(self) -> str:
        """The name the flow run's final state carries in the Prefect UI."""
        return {
            HoldKind.HELD: "Held",
            HoldKind.POSTPONED: "Postponed",
            HoldKind.DROPPED: "Not delivered",
        }[self.kind]

    @property
    def delivered_later(self) -> bool:
        """False when the drill will never run in its window (dropped)."""
        return self.kind is not HoldKind.DROPPED
