"""The moment this process was started: what a person's ``bcdrill ack`` claims as "done at".

A CLI process spends 200–400 ms importing before it can do anything (NOTES.md), so the time
a person pressed Enter is taken from the kernel — when the process was created — not from
whenever Python gets round to reading the clock. Standard library only: this module is
imported first by the command line, before anything heavy.
"""

from __future__ import annotations

import os
import time

__all__ = ["INVOKED_AT", "process_started_at"]


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
