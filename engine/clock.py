"""One clock per run: monotonic seconds for durations, UTC for display (invariant 4)."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What the engine needs from a clock; inject a :class:`FakeClock` in unit tests."""

    def now(self) -> float:
        """Seconds since the run started, from a monotonic source."""
        ...

    def utc(self, offset: float | None = None) -> datetime:
        """The UTC wall time at ``offset`` seconds into the run (now when omitted)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a fake clock just advances)."""
        ...


class RunClock:
    """The real clock: anchors a monotonic reading to one UTC reading at run start."""

    def __init__(self, started_at: datetime | None = None) -> None:
        """A new run's clock, or — given the run's UTC start — one that continues its offsets."""
        now_mono, now_utc = time.monotonic(), datetime.now(UTC)
        self._start_utc = started_at or now_utc
        self._start_mono = now_mono - (now_utc - self._start_utc).total_seconds()

    def now(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self._start_mono

    def utc(self, offset: float | None = None) -> datetime:
        """UTC wall time derived from the monotonic offset, so wall-clock jumps don't matter."""
        return self._start_utc + timedelta(seconds=self.now() if offset is None else offset)

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        time.sleep(max(0.0, seconds))


class FakeClock:
    """A clock for tests: time moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._t = 0.0
        self._start = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> float:
        """Current fake offset."""
        with self._lock:
            return self._t

    def utc(self, offset: float | None = None) -> datetime:
        """Fake wall time."""
        return self._start + timedelta(seconds=self.now() if offset is None else offset)

    def sleep(self, seconds: float) -> None:
        """Advance instead of sleeping."""
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move the fake time forward."""
        with self._lock:
            self._t += max(0.0, seconds)


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z``: the one format journals and reports use."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------- when this process started
# A person's ``bcdrill ack`` claims the moment they pressed Enter as "done at". A CLI process
# spends 200–400 ms importing before it can do anything (NOTES.md), so that moment is taken
# from the kernel — when the process was created — not from whenever Python reads the clock.


def process_started_at(pid: int | str = "self") -> float | None:
    """UTC epoch seconds at which process ``pid`` was created, or None where unknown.

    ``/proc/<pid>/stat`` gives the start in clock ticks since boot (10 ms here); the boot
    clock now minus that age is the start on the wall clock, to within one tick.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        ticks = int(stat.rsplit(b")", 1)[1].split()[19])  # field 22, counted after "comm)"
        hertz = os.sysconf("SC_CLK_TCK")
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / hertz
        now = time.time()
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    if not 0 <= age < 3600:  # a nonsense reading: better no claim than a wrong one
        return None
    return now - age


# Read once, on first import (the command line imports this before typer, rich and the rest).
INVOKED_AT: float = process_started_at() or time.time()
