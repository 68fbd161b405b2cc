"""Family 3: are the times bcdrill reports true? A ground-truth harness.

Outages: the benchmark makes outages of known length directly with the docker SDK while
real :class:`~engine.run.observe.ProbeWatcher` s (the ones DrillRun uses) watch and journal
``probe.changed``. Ground truth comes from

* ``pause``/``unpause``: the API calls' return moments (the cgroup is frozen/thawed by then);
* ``kill``/``start``: an independent observer process polling the container's own address
  on the lab network every 1 ms (resolution ~1–2 ms).

Two engine probes watch at once, at the engine's default interval and timeout (and a finer
interval in the full run): the lab environment's published loopback port for the
``storefront`` target — which the engine's HTTP probe resolves to the container's own
address, away from the proxy's ~1 s ARP-retry artefact — and the container's bridge
address given literally. A transition's reported time is its ``observed_t`` (the check that
first saw it). For ``kill`` the Docker daemon's fatal event (what a ``docker.kill`` fault
records as its effective time, the debrief's impact start) is compared too. Error =
reported − true, per transition; medians and p95 in the report.

Acks: a live DrillRun (manual responders) receives acks written with
:func:`engine.run.responses.write_ack` at known moments; error = ``step.recorded`` − sent.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.common import BenchLab, Report, figure, http_ok, wait_until
from benchmarks.observer import Observer, Watch
from engine.clock import RunClock
from engine.faults.docker_lifecycle import fatal_moment
from engine.model.types import ProbeSpec, frozen_mapping
from engine.probes.http import HttpProbe
from engine.record.journal import Journal
from engine.record.records import RecordType
from engine.run.observe import ProbeWatcher
from engine.spec.build import DEFAULT_PROBE_INTERVAL_S, DEFAULT_PROBE_TIMEOUT_S
from engine.spec.loader import load_environment, load_playbook
from engine.transports.connections import Transports

FAMILY = "fidelity"
GOAL_MS = 50.0
ACKS = Path(__file__).resolve().parent / "scenarios" / "acks.yaml"


class _Marks:
    """probe.changed records as they land: (probe, state) → list of run offsets."""

    def __init__(self, clock: RunClock) -> None:
        self.clock = clock
        self.seen: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()

    def __call__(self, record: Mapping[str, Any]) -> None:
        if record["type"] != RecordType.PROBE_CHANGED:
            return
        key = (str(record["data"]["probe"]), str(record["data"]["state"]))
        observed = record["data"].get("observed_t", record["t"])  # when first observable
        with self._lock:
            self.seen.setdefault(key, []).append(float(observed))

    def snapshot(self) -> dict[tuple[str, str], int]:
        """How many transitions of each kind are known now."""
        with self._lock:
            return {k: len(v) for k, v in self.seen.items()}

    def next_after(
        self, before: Mapping[tuple[str, str], int], probe: str, state: str, timeout_s: float
    ) -> float | None:
        """The first ``state`` transition of ``probe`` journaled after ``before`` was taken."""
        deadline = time.monotonic() + timeout_s
        key = (probe, state)
        while time.monotonic() < deadline:
            with self._lock:
                hits = self.seen.get(key, [])[before.get(key, 0) :]
            if hits:
                return hits[0]
            time.sleep(0.005)
        return None


def run(report: Report, lab: BenchLab, quick: bool) -> None:
    """Outage transitions at two probe intervals, then acks."""
    intervals = (DEFAULT_PROBE_INTERVAL_S,) if quick else (DEFAULT_PROBE_INTERVAL_S, 0.02)
    reps = 2 if quick else 6
    for interval in intervals:
        _outages(report, lab, interval, reps)
    _acks(report, lab, runs=1 if quick else 2)


# ---------------------------------------------------------------- outages


def _outages(report: Report, lab: BenchLab, interval: float, reps: int) -> None:
    import docker

    env = load_environment(lab.environment)
    client = docker.from_env(timeout=10)
    cid = str(client.containers.get(lab.storefront).id)
    clock = RunClock()
    run_dir = Path(tempfile.mkdtemp(prefix="bcdrill-bench-fid-"))
    journal = Journal(run_dir / "journal.jsonl", clock)
    marks = _Marks(clock)
    journal.subscribe(marks)
    transports = Transports(env)
    # as a playbook would say it, the target and a URL: "published", the published port (the
    # engine probes the container's own address); "bridge", the container's address literally
    urls = {
        "published": ("storefront", lab.storefront_url),
        "bridge": ("storefront", lab.storefront_bridge_url),
    }
    watchers = [
        ProbeWatcher(
            HttpProbe(
                ProbeSpec(
                    name, "http", target, interval, DEFAULT_PROBE_TIMEOUT_S, frozen_mapping({"url": url})
                ),
                env,
                transports,
            ),
            journal,
        )
        for name, (target, url) in urls.items()
    ]
    errors: dict[str, list[float]] = {}
    offset = time.monotonic() - clock.now()  # monotonic = run offset + offset
    try:
        for w in watchers:
            w.start()
        with Observer() as observer:
            for i in range(reps):
                length = 0.3 + 0.4 * random.random()
                _pause_outage(client, cid, length, marks, offset, errors)
                _settle(lab, watchers, i)
                _kill_outage(client, cid, length, lab, observer, marks, offset, errors)
                _settle(lab, watchers, i)
    finally:
        for w in watchers:
            w.stop()
        journal.close()
        client.close()
    tag = f"interval {interval * 1000:g} ms"
    for key, samples in sorted(errors.items()):
        goal = (
            {"goal_max": GOAL_MS, "on": "abs_p95"}
            if key.endswith("up") or "length" in key or "impact" in key
            else {}
        )
        report.add(figure(FAMILY, f"{key} error ({tag})", samples, **goal))  # type: ignore[arg-type]


def _settle(lab: BenchLab, watchers: list[ProbeWatcher], i: int) -> None:
    """Wait (bounded) until the service answers and every watcher says "up" again."""
    ok = wait_until(lambda: http_ok(lab.storefront_url) and all(w.state == "up" for w in watchers), 15, 0.01)
    if ok is None:
        raise RuntimeError(f"storefront did not recover after outage {i}")
    time.sleep(0.2)


def _record(errors: dict[str, list[float]], key: str, reported: float | None, truth: float | None) -> None:
    if reported is not None and truth is not None:
        errors.setdefault(key, []).append(reported - truth)


def _pause_outage(
    client: Any, cid: str, length: float, marks: _Marks, offset: float, errors: dict[str, list[float]]
) -> None:
    before = marks.snapshot()
    client.api.pause(cid)
    down_true = time.monotonic() - offset
    time.sleep(length)
    client.api.unpause(cid)
    up_true = time.monotonic() - offset
    for probe in ("published", "bridge"):
        down = marks.next_after(before, probe, "down", 3.0)
        up = marks.next_after(before, probe, "up", 5.0)
        _record(errors, f"pause {probe}: down", down, down_true)
        _record(errors, f"pause {probe}: up", up, up_true)
        if down is not None and up is not None:
            errors.setdefault(f"pause {probe}: outage length", []).append((up - down) - (up_true - down_true))


def _kill_outage(
    client: Any,
    cid: str,
    length: float,
    lab: BenchLab,
    observer: Observer,
    marks: _Marks,
    offset: float,
    errors: dict[str, list[float]],
) -> None:
    before = marks.snapshot()
    observer.arm(Watch("http_down", lab.storefront_bridge_url, timeout_s=3.0, request_timeout_s=0.02))
    called = time.time()
    client.api.kill(cid)
    returned = time.time()
    seen_down = observer.result()
    since, until = f"{called - 0.001:.6f}", f"{returned + 0.001:.6f}"
    events = client.api.events(since=since, until=until, filters={"container": cid}, decode=True)
    fatal = fatal_moment([(str(e.get("Action")), int(e["timeNano"])) for e in events])
    # unix → run offset: both clocks read now
    effective = None if fatal is None else fatal.unix - time.time() + time.monotonic() - offset
    time.sleep(length)
    observer.arm(Watch("http_up", lab.storefront_bridge_url, timeout_s=10.0, request_timeout_s=0.01))
    client.api.start(cid)
    seen_up = observer.result()
    down_true = None if seen_down is None else seen_down - offset
    up_true = None if seen_up is None else seen_up - offset
    if down_true is None or up_true is None:
        return
    _record(errors, "kill: daemon's fatal event (impact start)", effective, down_true)
    for probe in ("published", "bridge"):
        down = marks.next_after(before, probe, "down", 3.0)
        up = marks.next_after(before, probe, "up", 5.0)
        _record(errors, f"kill {probe}: down", down, down_true)
        _record(errors, f"kill {probe}: up", up, up_true)
        if down is not None and up is not None:
            errors.setdefault(f"kill {probe}: outage length", []).append((up - down) - (up_true - down_true))


# ---------------------------------------------------------------- acks


def _acks(report: Report, lab: BenchLab, runs: int) -> None:
    from engine.plugins import resolve_parts
    from engine.run.responses import Ack, write_ack
    from engine.run.runner import DrillRun, RunOptions

    playbook = load_playbook(ACKS)
    env = load_environment(lab.environment)
    errors: list[float] = []
    for _ in range(runs):
        clock = RunClock()
        run_dir = Path(tempfile.mkdtemp(prefix="bcdrill-bench-acks-"))
        recorded: dict[str, float] = {}
        applied = threading.Event()

        def listen(
            record: Mapping[str, Any], recorded: dict[str, float] = recorded, applied: Any = applied
        ) -> None:
            if record["type"] == RecordType.FAULT_APPLIED:
                applied.set()
            if record["type"] == RecordType.STEP_RECORDED:
                recorded[str(record["data"]["step"])] = float(record["t"])

        drill = DrillRun(
            playbook,
            env,
            run_dir,
            RunOptions(responders="manual", restore_timeout_s=15),
            resolve_parts("manual", False),
            clock,
            (listen,),
        )
        thread = threading.Thread(target=drill.execute, name="bench-acks-drill", daemon=True)
        thread.start()
        if not applied.wait(30):
            thread.join(60)
            raise RuntimeError("the ack drill never applied its fault")
        sent: dict[str, float] = {}
        for step in ("msp.a1", "msp.a2", "msp.a3", "msp.a4", "msp.a5", "msp.a6", "msp.mitigate"):
            time.sleep(0.05 + 0.1 * random.random())
            write_ack(run_dir, Ack(step, by="bench"))
            sent[step] = clock.now()
        thread.join(60)
        if thread.is_alive():
            raise RuntimeError("the ack drill did not finish within 60 s")
        errors += [recorded[k] - sent[k] for k in sent if k in recorded]
    report.add(figure(FAMILY, "ack: write_ack → step.recorded error", errors, goal_max=GOAL_MS, on="abs_p95"))
