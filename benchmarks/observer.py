"""An outside observer in its own process: when did a fault become visible?

It runs in a separate (spawned) process so that its polling never competes with the code
under test for the GIL. Times are ``time.monotonic()`` (CLOCK_MONOTONIC), comparable between
processes on Linux. Every watch is bounded by a timeout.
"""

from __future__ import annotations

import contextlib
import http.client
import multiprocessing
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

POLL_S = 0.001


@dataclass(frozen=True)
class Watch:
    """What to watch: ``http_down`` / ``http_up`` (URL stops / starts answering 200) or ``file``."""

    kind: str
    target: str
    timeout_s: float = 5.0
    request_timeout_s: float = 0.1


def _http_ok(url: str, timeout_s: float) -> bool:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout_s)
    try:
        conn.request("GET", parts.path or "/", headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _watch(watch: Watch) -> float | None:
    """Start time of the first check that saw the fault, or None by the timeout.

    ``http_down`` needs two failing checks in a row (a lone timeout on a loaded machine is
    not an outage); the time is the first one's start.
    """
    deadline = time.monotonic() + watch.timeout_s
    first: float | None = None
    while time.monotonic() < deadline:
        started = time.monotonic()
        if watch.kind == "file":
            seen = os.path.exists(watch.target)
        elif watch.kind == "http_up":
            seen = _http_ok(watch.target, watch.request_timeout_s)
        else:
            seen = not _http_ok(watch.target, watch.request_timeout_s)
        if seen and (watch.kind != "http_down" or first is not None):
            return first if first is not None else started
        first = started if seen else None
        time.sleep(POLL_S)
    return None


def _serve(conn: Connection) -> None:
    while True:
        message: Any = conn.recv()
        if message is None:
            return
        conn.send(("armed", time.monotonic()))
        conn.send(("seen", _watch(message)))


class Observer:
    """A spawned observer process; ``arm(watch)`` then ``result()`` per measurement."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), daemon=True, name="bench-observer")
        self._proc.start()

    def arm(self, watch: Watch) -> None:
        """Start watching; returns once the observer is polling."""
        self._conn.send(watch)
        if not self._conn.poll(10):
            raise RuntimeError("observer did not answer within 10 s")
        self._conn.recv()

    def result(self, timeout_s: float = 15.0) -> float | None:
        """The monotonic time the fault was first seen (None: not seen in the watch's timeout)."""
        if not self._conn.poll(timeout_s):
            raise RuntimeError("observer gave no result in time")
        _, seen = self._conn.recv()
        return None if seen is None else float(seen)

    def close(self) -> None:
        """Stop the observer process."""
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout=5)

    def __enter__(self) -> Observer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
