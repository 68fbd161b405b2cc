"""Probe watchers journal state changes and measurements; the data probe measures RPO.

Pure logic: scripted probes (no network), a real journal on disk and a real watcher thread,
polled with a deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.clock import FakeClock
from engine.errors import DrillError
from engine.model.types import Environment, ProbeSpec
from engine.probes.base import ProbeKind, ProbeResult
from engine.probes.data import DataProbe
from engine.record.journal import Journal, read_journal
from engine.run.observe import ProbeWatcher
from engine.testing import wait_until
from engine.transports.connections import Transports

ENVIRONMENT = Environment(
    name="unit", kind="test", client="acme", docker=None, hosts={}, targets={}, participants=(), urls={}
)


def spec(probe_id: str, kind: str, interval_s: float = 0.01) -> ProbeSpec:
    """A probe spec polling every ``interval_s``."""
    return ProbeSpec(id=probe_id, kind=kind, target=None, interval_s=interval_s, timeout_s=0.5)


class ScriptedProbe(ProbeKind):
    """Returns the scripted results in order, then repeats the last one forever."""

    name = "scripted"

    def __init__(self, results: list[Callable[[], ProbeResult]]) -> None:
        super().__init__(spec("fake", self.name), ENVIRONMENT, Transports(ENVIRONMENT))
        self._results = results
        self._lock = threading.Lock()
        self.calls = 0

    def check(self) -> ProbeResult:
        """The next scripted result (a callable, so a script step may raise)."""
        with self._lock:
            step = self._results[min(self.calls, len(self._results) - 1)]
            self.calls += 1
        return step()

    def exhausted(self) -> bool:
        """True once every scripted result was returned at least once."""
        with self._lock:
            return self.calls > len(self._results)


def result(healthy: bool, measurement: dict[str, Any] | None = None) -> Callable[[], ProbeResult]:
    """A script step returning one result."""
    return lambda: ProbeResult(healthy, "up" if healthy else "down", measurement)


def watch(probe: ProbeKind, journal: Journal, until: Callable[[], bool]) -> None:
    """Run a real watcher until ``until()`` holds (deadline 10 s), then stop it."""
    watcher = ProbeWatcher(probe, journal)
    watcher.start()
    deadline = time.monotonic() + 10
    try:
        while not until():
            assert time.monotonic() < deadline, "the watcher did not get through the script in 10 s"
            time.sleep(0.005)
    finally:
        watcher.stop()


def records(journal: Journal) -> list[tuple[str, dict[str, Any]]]:
    """``(type, data)`` of the probe records on disk."""
    return [(r["type"], r["data"]) for r in read_journal(journal.path).records]


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """A real journal with a fake clock."""
    opened = Journal(tmp_path / "journal.jsonl", FakeClock())
    yield opened
    opened.close()


def test_watcher_journals_each_new_measurement_once_before_the_transition(journal: Journal) -> None:
    m1 = {"rpo_s": 1.5, "seen": {"seq": 4, "ts": 10.0}}
    m2 = {"rpo_s": 0.0, "seen": {"seq": 9, "ts": 20.0}}
    probe = ScriptedProbe(
        [
            result(True),
            result(True, m1),
            result(True, dict(m1)),  # equal, another object: not journaled again
            result(False, m1),
            result(True, m2),  # a new measurement and a transition in one observation
            result(True),  # no measurement: forgets nothing
            result(True, m2),
        ]
    )
    watch(probe, journal, probe.exhausted)
    assert records(journal) == [
        ("probe.changed", {"probe": "fake", "state": "up", "detail": "up", "observed_t": 0.0}),
        ("probe.measured", {"probe": "fake", "measurement": m1}),
        ("probe.changed", {"probe": "fake", "state": "down", "detail": "down", "observed_t": 0.0}),
        ("probe.measured", {"probe": "fake", "measurement": m2}),
        ("probe.changed", {"probe": "fake", "state": "up", "detail": "up", "observed_t": 0.0}),
    ]


def test_a_measurement_that_is_not_json_is_a_probe_error(journal: Journal) -> None:
    probe = ScriptedProbe([result(True), result(True, {"rpo_s": float("nan")}), result(True)])
    watch(probe, journal, probe.exhausted)
    assert records(journal) == [
        ("probe.changed", {"probe": "fake", "state": "up", "detail": "up", "observed_t": 0.0}),
        (
            "probe.changed",
            {"probe": "fake", "state": "down", "detail": "probe error: TypeError", "observed_t": 0.0},
        ),
        ("probe.changed", {"probe": "fake", "state": "up", "detail": "up", "observed_t": 0.0}),
    ]


def test_a_result_measurement_is_frozen_and_compared_by_value() -> None:
    source: dict[str, Any] = {"rpo_s": 2.0, "seen": {"seq": 1, "ts": 3.0}}
    first = ProbeResult(True, "", source)
    source["seen"]["seq"] = 99  # the caller's dict changing later does not change the result
    assert first.measurement == {"rpo_s": 2.0, "seen": {"seq": 1, "ts": 3.0}}
    with pytest.raises(TypeError):
        first.measurement["rpo_s"] = 0.0  # type: ignore[index]
    assert first == ProbeResult(True, "", {"seen": {"ts": 3.0, "seq": 1}, "rpo_s": 2.0})


# ------------------------------------------------------------------ the data probe


class ScriptedStore(DataProbe):
    """A data probe whose store is a list of record lines (``None``: unreadable)."""

    def __init__(self, interval_s: float = 0.01) -> None:
        store_spec = ProbeSpec(
            id="orders",
            kind="data",
            target=None,
            interval_s=interval_s,
            timeout_s=0.5,
            params={"argv": ["cat", "orders.log"]},
        )
        super().__init__(store_spec, ENVIRONMENT, Transports(ENVIRONMENT))
        self.lines: list[str] | None = []
        self.reads = 0

    def read(self) -> str:
        """The scripted store."""
        self.reads += 1
        if self.lines is None:
            raise DrillError("HTTP 503")
        return "\n".join(self.lines)


def lines(base: float, first: int, last: int) -> list[str]:
    """Records ``first..last`` written one second apart from ``base``."""
    return [f"{n} {base + n:.6f} order" for n in range(first, last + 1)]


def test_a_rollback_under_a_readable_store_is_a_measurement_not_an_outage() -> None:
    store = ScriptedStore()
    base = float(int(time.time()) - 100)  # whole seconds: exact in the store's text
    store.lines = lines(base, 1, 5)
    before = time.time()
    first = store.check()
    after = time.time()
    assert (first.healthy, first.measurement) == (True, None)

    store.lines = lines(base, 1, 3)  # restored from an older backup while readable
    rolled = store.check()
    assert rolled.healthy, rolled
    assert "rolled back" in rolled.detail
    m = rolled.measurement
    assert m is not None
    assert (m["surviving"], m["seen"]) == ({"seq": 3, "ts": base + 3}, {"seq": 5, "ts": base + 5})
    assert before - 1e-6 <= m["failed_at"] <= after + 1e-6  # the last healthy read (to the microsecond)
    assert m["rpo_s"] == pytest.approx(m["failed_at"] - (base + 3), abs=1e-5)

    store.lines = [*lines(base, 1, 3), f"6 {time.time():.6f} order"]
    later = store.check()
    assert (later.healthy, later.measurement) == (True, m)  # the latest measurement is carried


def test_an_outage_with_nothing_lost_measures_zero_from_the_first_failed_read() -> None:
    store = ScriptedStore()
    base = float(int(time.time()) - 100)  # whole seconds: exact in the store's text
    store.lines = lines(base, 1, 5)
    assert store.check().measurement is None
    store.lines = None
    before = time.time()
    down = store.check()
    after = time.time()
    assert (down.healthy, down.measurement) == (False, None)
    assert not store.check().healthy  # still down: the outage began at the first failed read
    store.lines = lines(base, 1, 6)
    back = store.check()
    assert back.healthy
    assert back.measurement is not None
    assert back.measurement["rpo_s"] == 0.0
    assert back.measurement["surviving"] == back.measurement["seen"] == {"seq": 5, "ts": base + 5}
    assert before - 1e-6 <= back.measurement["failed_at"] <= after + 1e-6  # to the microsecond


def test_the_failure_moment_is_never_before_the_remembered_record_was_written() -> None:
    """A record written while a read was under way: the read began before it, yet the store
    held it. Lost after an outage seen late, the loss still runs at least to that record."""
    store = ScriptedStore()
    base = time.time() - 30
    store.lines = lines(base, 1, 5)
    assert store.check().healthy
    store.lines = [*lines(base, 1, 5), f"6 {time.time() + 0.5:.6f} order"]  # written "during" the read
    assert store.check().healthy
    store.lines = lines(base, 1, 5)  # restored: record 6 is gone, no failed read in between
    m = store.check().measurement
    assert m is not None and m["seen"]["seq"] == 6
    assert m["failed_at"] >= m["seen"]["ts"]
    assert m["rpo_s"] == pytest.approx(m["seen"]["ts"] - (base + 5), abs=1e-5)


class SlowRead:
    """One check of ``store`` whose read has begun and waits for :meth:`finish`, while other
    checks (another caller's) go on."""

    def __init__(self, store: ScriptedStore) -> None:
        self.answers: list[ProbeResult] = []
        began, self._release = threading.Event(), threading.Event()
        original = store.read

        def slow() -> str:
            text = original()
            began.set()
            self._release.wait(5)
            return text

        store.read = slow  # type: ignore[method-assign]
        self._thread = threading.Thread(target=lambda: self.answers.append(store.check()))
        self._thread.start()
        assert began.wait(5)
        store.read = original  # type: ignore[method-assign]

    def finish(self) -> ProbeResult:
        self._release.set()
        self._thread.join(5)
        assert self.answers, "the slow check did not return"
        return self.answers[0]


def test_a_read_overtaken_by_a_later_one_is_no_rollback() -> None:
    """The watcher and a restore check read at once: the earlier-begun read, judged last,
    holds older records. They are what it saw, not a rollback."""
    base = float(int(time.time()) - 100)
    store = ScriptedStore()
    store.lines = lines(base, 1, 5)
    slow = SlowRead(store)
    store.lines = lines(base, 1, 7)  # two more writes; a later read sees them
    assert store.check().healthy
    late = slow.finish()
    assert late.healthy and late.measurement is None, late
    store.lines = lines(base, 1, 8)
    assert store.check().measurement is None  # nothing was ever lost


def test_a_read_overtaken_by_a_failed_one_does_not_end_the_outage() -> None:
    """A read begun before the store failed, judged after a read that saw it fail, does not
    say the store is back: the outage (and the loss) still counts from the failed read."""
    base = float(int(time.time()) - 100)
    store = ScriptedStore()
    store.lines = lines(base, 1, 5)
    assert store.check().healthy
    slow = SlowRead(store)  # began while the store still answered
    store.lines = None
    before = time.time()
    assert not store.check().healthy  # the outage begins here
    assert slow.finish().measurement is None  # not "back, nothing lost"
    store.lines = lines(base, 1, 3)  # restored from an older backup
    m = store.check().measurement
    assert m is not None and m["seen"]["seq"] == 5 and m["surviving"]["seq"] == 3
    assert m["failed_at"] >= before - 1e-6


def test_non_finite_record_times_are_not_records() -> None:
    store = ScriptedStore()
    store.lines = ["1 nan x", "2 inf y"]
    assert store.check().detail == "unreadable: no records"


def test_the_watcher_journals_a_rollback_without_a_fake_outage(journal: Journal) -> None:
    store = ScriptedStore()
    base = float(int(time.time()) - 100)  # whole seconds: exact in the store's text
    store.lines = lines(base, 1, 5)
    watcher = ProbeWatcher(store, journal)
    watcher.start()
    try:
        store.lines = lines(base, 1, 3)
        deadline = time.monotonic() + 10
        while not any(kind == "probe.measured" for kind, _ in records(journal)):
            assert time.monotonic() < deadline, "no probe.measured within 10 s"
            time.sleep(0.005)
        reads = store.reads
        while store.reads < reads + 5:  # a few more intervals: no state change may follow
            assert time.monotonic() < deadline, "the watcher stopped reading"
            time.sleep(0.005)
    finally:
        watcher.stop()
    kinds = [(kind, data.get("state")) for kind, data in records(journal)]
    assert kinds == [("probe.changed", "up"), ("probe.measured", None)]
    measurement = records(journal)[1][1]["measurement"]
    assert (measurement["surviving"]["seq"], measurement["seen"]["seq"]) == (3, 5)


# ------------------------------------------------------------------ when a transition happened


class SlowProbe(ProbeKind):
    """Each check takes ``took_s`` of fake time; results come from a script."""

    name = "slow"

    def __init__(self, clock: FakeClock, took_s: float, results: list[ProbeResult]) -> None:
        super().__init__(spec("slow", self.name), ENVIRONMENT, Transports(ENVIRONMENT))
        self._clock, self._took, self._results = clock, took_s, list(results)

    def check(self) -> ProbeResult:
        """Advance the clock by the check's duration, then answer."""
        self._clock.advance(self._took)
        return self._results.pop(0)


def test_transitions_are_stamped_when_first_observable(tmp_path: Path) -> None:
    """A failure at the start of the failing check, a recovery when its connection opened —
    not when the (slow) check returned."""
    clock = FakeClock()
    journal = Journal(tmp_path / "journal.jsonl", clock)
    results = [
        ProbeResult(True, "up", opened_after_s=0.001),
        ProbeResult(False, "timeout"),
        ProbeResult(True, "HTTP 200", opened_after_s=0.04),
    ]
    watcher = ProbeWatcher(SlowProbe(clock, 0.5, results), journal)
    clock.advance(1.0)
    watcher._observe()  # starts at 1.0, returns at 1.5
    clock.advance(0.1)
    watcher._observe()  # starts at 1.6 (the failure's first sight), returns at 2.1
    clock.advance(0.1)
    watcher._observe()  # starts at 2.2, connection opened at 2.24, returns at 2.7
    journal.close()
    changes = [r for r in read_journal(journal.path).records if r["type"] == "probe.changed"]
    assert [(c["data"]["state"], c["data"]["observed_t"]) for c in changes] == [
        ("up", 1.001),
        ("down", 1.6),
        ("up", 2.24),
    ]
    assert [c["t"] for c in changes] == [1.5, 2.1, 2.7]  # the records are written on return


def test_observed_at_ignores_a_connection_time_of_a_failure() -> None:
    from engine.run.observe import observed_at

    assert observed_at(5.0, ProbeResult(False, "HTTP 500", opened_after_s=0.2)) == 5.0
    assert observed_at(5.0, ProbeResult(True, "running")) == 5.0
    assert observed_at(5.0, ProbeResult(True, "HTTP 200", opened_after_s=0.02)) == 5.02


def test_a_calm_pace_while_holding_and_a_prompt_look_when_it_ends(journal: Journal) -> None:
    probe = ScriptedProbe([result(True)])  # polls every 10 ms at its own pace
    watcher = ProbeWatcher(probe, journal)
    watcher.start()
    try:
        watcher.pace(5.0)  # a drill waiting for its moment
        time.sleep(0.05)  # let the look that pace() asks for happen
        calm = probe.calls
        time.sleep(0.3)
        assert probe.calls == calm  # nothing more inside the calm pace
        watcher.pace(0.0)  # the moment: look at once (not 4.7 s later), then at the probe's own pace
        started = time.monotonic()
        while probe.calls < calm + 5:
            assert time.monotonic() - started < 2, "the watcher did not return to its own pace"
            time.sleep(0.005)
    finally:
        watcher.stop()


class _WokenProbe(ScriptedProbe):
    """At a 100 ms pace; keeps the watcher's wake so the test can say its target changed."""

    def __init__(self, results: list[Callable[[], ProbeResult]]) -> None:
        super().__init__(results)
        self.spec = spec("fake", self.name, interval_s=0.1)
        self.wake: Callable[[], None] | None = None

    def on_target_change(self, wake: Callable[[], None]) -> None:
        self.wake = wake

    def looks_after_wake(self, seconds: float) -> int:
        """After 0.2 s at the watcher's pace, say the target changed; the looks in ``seconds``."""
        time.sleep(0.2)
        before = self.calls
        assert self.wake is not None
        self.wake()
        time.sleep(seconds)
        return self.calls - before


def test_a_down_probe_looks_at_once_and_often_when_its_target_starts(journal: Journal) -> None:
    probe = _WokenProbe([result(False)])
    watcher = ProbeWatcher(probe, journal)
    watcher.start()
    try:
        started_looks = probe.looks_after_wake(0.3)  # down, every 25 ms; then the container started
        time.sleep(1.0)  # the starting window is over: back to every 25 ms
        later = probe.calls
        time.sleep(0.2)
        assert started_looks >= 25, started_looks  # every 5 ms (60 at most), not every 25 ms (13)
        assert probe.calls - later <= 12, probe.calls - later
    finally:
        watcher.stop()


def test_an_up_probe_whose_target_is_signalled_looks_often_until_it_sees_the_stop(journal: Journal) -> None:
    """A container sent a signal still runs, but its service may stop at once: the probe looks
    every 5 ms until it sees the stop (not up to an interval later), then at the down pace."""
    dead = threading.Event()
    probe = _WokenProbe([lambda: ProbeResult(not dead.is_set(), "")])
    watcher = ProbeWatcher(probe, journal)
    watcher.start()
    try:
        signalled_looks = probe.looks_after_wake(0.2)  # up, every 100 ms; then a signal, still up
        dead.set()
        stopped = time.monotonic()
        wait_until("the stop seen", lambda: watcher.state == "down", 2, 0.001)
        seen_after = time.monotonic() - stopped
        down_from = probe.calls
        time.sleep(0.3)
        assert signalled_looks >= 15, signalled_looks  # every 5 ms (40 at most), not every 100 ms (2)
        assert seen_after < 0.02, seen_after
        assert probe.calls - down_from <= 14, probe.calls - down_from  # every 25 ms now, not 5 ms
    finally:
        watcher.stop()
