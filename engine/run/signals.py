"""Signal handling around a drill: stop politely, and never let a signal cut a revert short.

One handler covers the whole drill, from preflight to the end of the wind-down: the first
SIGINT or SIGTERM raises :class:`AbortedError` in the main thread (the drill then reverts in
its ``finally``); every later one — or any signal once :meth:`StopSignals.defer` was called —
is only noted. There is no moment in between where the default action (die at once) is back.
(We measured a second SIGTERM aborting a ``finally`` revert when handlers were swapped.)
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from engine.errors import AbortedError
from engine.logsetup import get_logger

log = get_logger(__name__)

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """The drill's stop-signal state: raise once, then defer."""

    def __init__(self) -> None:
        self.deferred: list[int] = []
        self._deferring = False

    def defer(self) -> None:
        """From now on signals are only noted (call before reverting)."""
        self._deferring = True

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        """The signal handler."""
        name = signal.Signals(signum).name
        if self._deferring:
            self.deferred.append(signum)
            log.warning("signal.deferred", signal=name, reason="the drill is reverting its faults")
            return
        self._deferring = True
        raise AbortedError(f"received {name}")


@contextmanager
def stop_signals() -> Iterator[StopSignals]:
    """Install the drill's handler for SIGINT and SIGTERM (main thread only) until the end."""
    state = StopSignals()
    if threading.current_thread() is not threading.main_thread():
        yield state  # signals are delivered to the main thread only; nothing to install
        return
    previous = {sig: signal.signal(sig, state.handle) for sig in _STOP_SIGNALS}
    try:
        yield state
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
