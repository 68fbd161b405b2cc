"""A host's own clock: its offset from the engine's, and when a fault took effect there.

A host fault appends ``date +%s.%N`` to its inject script, so the target says — in the same
SSH round trip — when the fault's last command finished on it. A fault that takes effect as its
command begins, such as ``host.command``, starts a tagged ``date`` in the background instead, as
its commands start (:data:`STARTED_CLOCK_COMMAND`): the command does not wait for the reading,
which begins within a fork of it. Before that, one ``date``
round trip measures the target clock's offset from the engine's (the target's reading
against the midpoint of the round trip; uncertain by half of it, ~1 ms on an open
connection). The effective time is the target's moment minus that offset — or the target's
moment as is when the offset is within its own uncertainty (a loaded machine's round trip
must not invent an offset between clocks that agree).
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.errors import TransportError
from engine.faults.base import EffectiveTime

if TYPE_CHECKING:
    from engine.transports.ssh import SshTransport

#: The shell line that prints the target's clock (unix seconds with nanoseconds).
CLOCK_COMMAND = "date +%s.%N"
_STARTED_TAG = "bcdrill.started "
#: The same reading on a line of its own, tagged, for a ``date`` run beside the inject commands
#: (its line may come before, between or after theirs).
STARTED_CLOCK_COMMAND = f"date '+{_STARTED_TAG}%s.%N'"


@dataclass(frozen=True)
class ClockOffset:
    """Target clock minus engine clock, and the uncertainty of that estimate (seconds)."""

    offset_s: float
    uncertainty_s: float


def parse_unix(output: str) -> float | None:
    """The unix time on the last non-empty line of ``output``; None when there is none."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return None
    try:
        return float(lines[-1])
    except ValueError:
        return None  # e.g. a ``date`` without %N support


def parse_started(output: str) -> float | None:
    """The unix time of the :data:`STARTED_CLOCK_COMMAND` line in ``output``; None if absent."""
    for line in output.splitlines():
        _, tag, value = line.partition(_STARTED_TAG)
        if tag:
            return parse_unix(value)
    return None


def measure_offset(ssh: SshTransport) -> ClockOffset | None:
    """One ``date`` round trip: the target clock's offset from ours, None if unreadable."""
    try:
        sent = time.time()
        result = ssh.run(["sh", "-c", CLOCK_COMMAND], check=False)
        received = time.time()
    except TransportError:
        return None
    remote = parse_unix(result.stdout)
    if remote is None or result.exit_code != 0:
        return None
    return ClockOffset(remote - (sent + received) / 2, (received - sent) / 2)


_OFFSETS: weakref.WeakKeyDictionary[SshTransport, ClockOffset | None] = weakref.WeakKeyDictionary()


def offset_of(ssh: SshTransport) -> ClockOffset | None:
    """The target clock's offset, measured once per connection (preflight measures it, so a
    fault's own round trips stay as few as its inject needs)."""
    if ssh not in _OFFSETS:
        _OFFSETS[ssh] = measure_offset(ssh)
    return _OFFSETS[ssh]


def effective_on_target(remote: float | None, offset: ClockOffset | None, host: str) -> EffectiveTime | None:
    """The engine-clock moment of ``remote`` (a target reading), with where it comes from."""
    if remote is None or offset is None:
        return None
    if abs(offset.offset_s) <= offset.uncertainty_s:  # the clocks agree as far as we can tell
        source = f"target clock of {host} (agrees with ours within ± {offset.uncertainty_s * 1000:.1f} ms)"
        return EffectiveTime(remote, source)
    source = (
        f"target clock of {host} (offset {offset.offset_s * 1000:+.1f} ms "
        f"± {offset.uncertainty_s * 1000:.1f} ms, corrected)"
    )
    return EffectiveTime(remote - offset.offset_s, source)


__all__ = [
    "CLOCK_COMMAND",
    "STARTED_CLOCK_COMMAND",
    "ClockOffset",
    "effective_on_target",
    "measure_offset",
    "offset_of",
    "parse_started",
    "parse_unix",
]
