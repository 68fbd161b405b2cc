"""The secret moment: a scheduled drill gets ready early, then waits for its moment to inject.

A drill of the programme is started a *lead time* before its secret moment (the flow run is
scheduled at ``moment - lead``): the process boots, takes the environment's slot and runs
preflight early, then holds here until the moment — so the first fault lands on the moment
instead of after the boot and the preflight. Nothing a player sees (the drill desk, injects,
alerts, simulated people) starts before the hold ends.

The hold is journaled honestly: ``moment.awaited`` (the moment and how long the wait is) and
``moment.reached`` (``late_s``: how far past the moment the drill was released; positive when
the run was started or readied too late). An abort request or a stop signal ends the hold
like any other phase of the drill (nothing was injected). When the steady state stopped
holding while waiting (its probes look every :data:`HOLD_PROBE_PACE_S` meanwhile, not at
their measuring pace), the drill fails its preflight at the moment instead of injecting.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from engine.clock import Clock, iso
from engine.errors import AbortedError, InputError, PreflightError
from engine.record.journal import Journal
from engine.record.records import RecordType
from engine.record.runstore import abort_requested

__all__ = ["HOLD_PROBE_PACE_S", "HoldAborted", "await_moment", "parse_moment"]

MAX_STEP_S = 0.25  # abort requests are noticed within this while holding
HOLD_PROBE_PACE_S = 1.0  # the steady state is watched this often while holding (probes' own pace after)


class HoldAborted(AbortedError):
    """A controller aborted the drill while it waited for its moment."""

    def __init__(self, message: str, by: str) -> None:
        super().__init__(message)
        self.by = by


def parse_moment(text: str) -> datetime:
    """An ISO 8601 moment with a time zone, as UTC; :class:`InputError` otherwise."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"moment {text!r} is not an ISO 8601 time (2027-03-04T10:15:00Z)") from exc
    if moment.tzinfo is None:
        raise InputError(f"moment {text!r} needs a time zone (2027-03-04T10:15:00Z)")
    return moment.astimezone(UTC)


def await_moment(
    moment: datetime,
    clock: Clock,
    journal: Journal,
    run_dir: Path,
    steady: Callable[[], str | None] = lambda: None,
) -> float:
    """Hold until ``moment`` (UTC); return how late the drill was released, in seconds.

    ``steady`` says why the steady state no longer holds (or None); it is asked once, when
    the moment has come. Sleeps in steps of at most :data:`MAX_STEP_S` so an abort request
    (``bcdrill abort``) ends the hold promptly, and the last step ends on the moment.
    """
    wait_s = (moment - clock.utc()).total_seconds()
    journal.append(RecordType.MOMENT_AWAITED, moment=iso(moment), wait_s=round(max(wait_s, 0.0), 3))
    while True:
        request = abort_requested(run_dir)
        if request:
            raise HoldAborted(
                f"aborted by {request['by']} before the drill's moment: {request['reason']}", by=request["by"]
            )
        remaining = (moment - clock.utc()).total_seconds()
        if remaining <= 0:
            break
        clock.sleep(min(remaining, MAX_STEP_S))
    late_s = -remaining
    journal.append(RecordType.MOMENT_REACHED, moment=iso(moment), late_s=round(late_s, 3))
    broken = steady()
    if broken:
        raise PreflightError(f"steady state stopped holding while the drill waited for its moment: {broken}")
    return late_s
