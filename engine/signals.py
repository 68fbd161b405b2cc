"""Signal handling around a drill: stop politely, and never let a signal cut a revert short."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import structlog

from engine.errors import AbortedError

log = structlog.get_logger(__name__)

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def abort_on_signals() -> Iterator[None]:
    """While active, SIGINT and SIGTERM raise :class:`AbortedError` in the main thread."""
    if not _in_main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise AbortedError(f"received {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, handler) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """While active, SIGINT/SIGTERM are noted, not acted on (a second Ctrl-C can't stop a revert)."""
    deferred: list[int] = []
    if not _in_main_thread():
        yield deferred
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        deferred.append(signum)
        log.warning("signal.deferred", signal=signal.Signals(signum).name, reason="reverting faults")

    previous = {sig: signal.signal(sig, handler) for sig in _STOP_SIGNALS}
    try:
        yield deferred
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
