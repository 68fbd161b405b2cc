"""Family 2: one host fault on 1, 20 and 100 SSH lab hosts — sequential vs parallel fan-out.

Sequential injects one host after another (the engine's former path, kept as the baseline);
parallel is what the timeline now does (:func:`engine.run.fanout.inject_parallel`). Connections
are opened beforehand (that is preflight's job), so the figures are the injection alone:
from the start to the last ``fault.applied``, and the spread between the first and the last ``fault.applied``.
Hosts: prefix ``bbench``, 127.90.x.x, in a temp folder, removed at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from benchmarks.common import Report, figure, ssh_hosts
from benchmarks.harness import InjectHarness
from benchmarks.latency import SCENARIO
from engine.faults.base import ResolvedTarget
from engine.model.types import DockerEndpoint, Environment, TargetBinding
from engine.record.records import RecordType
from engine.run import fanout
from engine.run.prepared import PreparedFault
from engine.spec.loader import load_playbook

FAMILY = "fanout"
GOAL_100_S = 1.5
ACTION = "host.port_block"
PARAMS: Mapping[str, Any] = {"port": 80}


def run(report: Report, quick: bool) -> None:
    """Sizes 1, 20, 100 (quick: 1, 20); a few repetitions each, both paths."""
    sizes = (1, 20) if quick else (1, 20, 100)
    with ssh_hosts(max(sizes)) as hosts:
        env = _environment(hosts)
        harness = InjectHarness(load_playbook(SCENARIO), env)
        try:
            fanout.connect_parallel(harness.drill.transports, [h.name for h in hosts])
            for size in sizes:
                reps = 1 if quick else (2 if size >= 100 else 3)
                _measure(report, harness, hosts[:size], reps, "sequential", _sequential)
                _measure(report, harness, hosts[:size], reps, "parallel", _parallel)
        finally:
            harness.close()


def _environment(hosts: list[Any]) -> Environment:
    return Environment(
        name="bench-fanout",
        kind="test",
        client="bench",
        docker=DockerEndpoint(),
        hosts={h.name: h.ssh_host() for h in hosts},
        targets={"hosts": TargetBinding("hosts", "host", tuple(h.name for h in hosts))},
        participants=(),
        urls={},
    )


def _prepared(harness: InjectHarness, hosts: list[Any], rep: int) -> list[PreparedFault]:
    return [
        harness.prepared(
            ACTION, ResolvedTarget("hosts", "host", h.name, f"root@{h.address}"), PARAMS, f"fan{rep}@{h.name}"
        )
        for h in hosts
    ]


Path = Callable[[InjectHarness, list[PreparedFault]], list[tuple[PreparedFault, Mapping[str, Any]]]]


def _sequential(
    harness: InjectHarness, pfs: list[PreparedFault]
) -> list[tuple[PreparedFault, Mapping[str, Any]]]:
    done = []
    for pf in pfs:
        harness.drill._inject([pf])
        active = harness.drill._state.active.pop()
        done.append((pf, active.prior))
    return done


def _parallel(
    harness: InjectHarness, pfs: list[PreparedFault]
) -> list[tuple[PreparedFault, Mapping[str, Any]]]:
    result = fanout.inject_parallel(pfs, harness.drill.transports, harness.drill.journal)
    return [(a.prepared, a.prior) for a in result.applied]


def _measure(
    report: Report, harness: InjectHarness, hosts: list[Any], reps: int, name: str, path: Path
) -> None:
    totals: list[float] = []
    spreads: list[float] = []
    applied: list[float] = []

    def listen(record: Mapping[str, Any]) -> None:
        if record["type"] == RecordType.FAULT_APPLIED:
            applied.append(time.monotonic())

    harness.drill.journal.subscribe(listen)
    try:
        for rep in range(reps):
            applied.clear()
            pfs = _prepared(harness, hosts, rep)
            started = time.monotonic()
            done: list[tuple[PreparedFault, Mapping[str, Any]]] = []
            try:
                done = path(harness, pfs)
            finally:
                # cleanup is not measured: revert everything at once
                fanout.revert_parallel(done, harness.drill.transports, harness.drill.journal)
            if len(applied) != len(hosts):
                raise RuntimeError(f"{name} fan-out applied {len(applied)} of {len(hosts)} hosts")
            totals.append(max(applied) - started)
            spreads.append(max(applied) - min(applied))
    finally:
        harness.drill.journal._listeners.remove(listen)
    size = len(hosts)
    goal = dict(goal_max=GOAL_100_S, unit="s") if size >= 100 else {"unit": "s"}
    report.add(figure(FAMILY, f"{ACTION} ×{size} {name}: start→all applied", totals, **goal))
    report.add(figure(FAMILY, f"{ACTION} ×{size} {name}: spread first→last", spreads, unit="s"))
