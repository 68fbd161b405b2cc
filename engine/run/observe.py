"""Probe watchers: one thread per probe, journaling every state change with its time.

Records (see ``docs/scoring.md``, "Journal records of probes"):

- ``probe.changed`` ``{probe, state, detail, observed_t}`` on each transition (the first is
  the initial state). ``observed_t`` is the run offset at which the new state was first
  observable: a failure at the *start* of the failing check (the record itself is written
  when the check returns, up to one timeout later); a recovery when the successful check's
  connection opened (or its start, for probes without a connection phase);
- ``probe.measured`` ``{probe, measurement}`` whenever a result carries a measurement that
  differs from the last one journaled for that probe. It is written before the transition
  of the same observation and before the watcher exposes the new state (write-ahead).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from engine.logsetup import get_logger
from engine.model.types import thaw
from engine.probes.base import ProbeKind, ProbeResult
from engine.record.journal import Journal
from engine.record.records import RecordType

log = get_logger(__name__)

#: While a probe is down it looks this often (or at its interval, if finer), so a recovery is
#: seen within ~25 ms of happening rather than within a whole interval.
DOWN_INTERVAL_S = 0.025

#: For this long after the probe learns that its target changed (a container's start, stop or
#: signal), it looks every :data:`CHANGE_INTERVAL_S` until its state changes: a started
#: service typically answers within milliseconds, and a killed one stops as fast, so both
#: ends of an outage are stamped that close rather than up to an interval later.
CHANGE_WINDOW_S = 1.0
CHANGE_INTERVAL_S = 0.005


class ProbeWatcher:
    """Polls one probe at its interval (every :data:`DOWN_INTERVAL_S` while it is down);
    journals ``probe.changed`` on each transition and ``probe.measured`` on each new
    measurement."""

    def __init__(self, probe: ProbeKind, journal: Journal) -> None:
        self.probe = probe
        self._journal = journal
        self._stop = threading.Event()
        self._wake = threading.Event()  # stop, a new pace or a target change: look again now
        self._floor_s = 0.0  # poll no more often than this (while a drill waits for its moment)
        self._state: str | None = None
        self._measurement: Mapping[str, Any] | None = None  # last one journaled
        self._thread = threading.Thread(target=self._loop, name=f"probe-{probe.spec.id}", daemon=True)
        self._change_until = 0.0  # monotonic; see CHANGE_WINDOW_S
        self._change_from: str | None = None  # the state when the target changed
        probe.on_target_change(self._target_changed)

    @property
    def state(self) -> str | None:
        """Last observed state (``up``/``down``), None before the first observation."""
        return self._state

    def start(self) -> None:
        """Observe once synchronously (so the initial state is known), then keep polling."""
        self._observe()
        self._thread.start()

    def pace(self, floor_s: float) -> None:
        """Poll at most every ``floor_s`` from now (0: the probe's own pace again); looks at once.

        A drill that waits minutes for its secret moment watches its steady state at a calm
        pace instead of the probe's measuring pace (engine.run.preflight.await_moment).
        """
        self._floor_s = floor_s
        self._wake.set()

    def stop(self) -> None:
        """Stop polling (returns within one probe timeout)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self.probe.spec.timeout_s + self.probe.spec.interval_s + 1)
        self.probe.close()

    def _target_changed(self) -> None:
        """The probe learned that its target changed (any thread): look now, then often until
        the state changes too."""
        self._change_from = self._state
        self._change_until = time.monotonic() + CHANGE_WINDOW_S
        self._wake.set()

    def _interval(self) -> float:
        """The probe's interval; finer while down, so that a recovery is seen promptly, and
        finest just after the target changed, until the probe's state follows."""
        interval = self.probe.spec.interval_s
        if self._state == "down":
            interval = min(interval, DOWN_INTERVAL_S)
        if self._state == self._change_from and time.monotonic() < self._change_until:
            interval = min(interval, CHANGE_INTERVAL_S)
        return max(interval, self._floor_s)

    def _loop(self) -> None:
        next_at = time.monotonic() + self._interval()
        while True:
            self._wake.wait(max(0.0, next_at - time.monotonic()))
            if self._stop.is_set():
                return
            self._wake.clear()
            self._observe()
            next_at = min(next_at + self._interval(), time.monotonic() + self._interval())
            if next_at < time.monotonic():  # a slow check: skip missed ticks, keep cadence
                next_at = time.monotonic() + self._interval()

    def _observe(self) -> None:
        started = self._journal.clock.now()
        try:
            result = self.probe.check()
        except Exception as exc:  # a probe bug must not kill the watcher
            log.exception("probe.error", probe=self.probe.spec.id)
            result = ProbeResult(False, f"probe error: {type(exc).__name__}")
        self._journal_measurement(result)
        if result.state != self._state:
            self._journal.append(
                RecordType.PROBE_CHANGED,
                probe=self.probe.spec.id,
                state=result.state,
                detail=result.detail,
                observed_t=round(observed_at(started, result), 6),
            )
            self._state = result.state

    def _journal_measurement(self, result: ProbeResult) -> None:
        """Journal ``probe.measured`` when ``result`` carries a measurement not yet journaled."""
        if result.measurement is None or result.measurement == self._measurement:
            return
        self._journal.append(
            RecordType.PROBE_MEASURED, probe=self.probe.spec.id, measurement=thaw(result.measurement)
        )
        self._measurement = result.measurement


def observed_at(check_started: float, result: ProbeResult) -> float:
    """Run offset at which ``result``'s state was first observable, for a check begun at
    ``check_started``: the start for a failure, the connection's opening for a success."""
    if result.healthy and result.opened_after_s is not None:
        return check_started + max(0.0, result.opened_after_s)
    return check_started


def wait_until_healthy(probes: list[ProbeKind], timeout_s: float, poll_s: float = 0.1) -> dict[str, str]:
    """Poll ``probes`` until all are up or the deadline passes; return each final state."""
    deadline = time.monotonic() + timeout_s
    while True:
        states = {p.spec.id: p.check().state for p in probes}
        if all(s == "up" for s in states.values()) or time.monotonic() >= deadline:
            return states
        time.sleep(poll_s)
