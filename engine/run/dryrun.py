"""``bcdrill plan``: everything a run would do, shown without doing it.

Only read-only calls are made (container lookups, SSH connect with host-key check, one probe
observation each); nothing is journaled and no fault is injected.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import DrillError
from engine.model.durations import format_duration
from engine.model.types import Environment, Playbook
from engine.run.preflight import prepare
from engine.transports.connections import Transports


@dataclass(frozen=True)
class DryRunReport:
    """Rows for the plan table, probe lines and a verdict."""

    faults: tuple[tuple[str, str, str, str, str], ...]
    probes: tuple[str, ...]
    ready: bool
    verdict: str


def dry_run(
    playbook: Playbook, environment: Environment, allow_production: bool = False, seed: int | None = None
) -> DryRunReport:
    """Resolve and describe every fault and probe; check the steady state once."""
    transports = Transports(environment)
    try:
        prepared, probes = prepare(playbook, environment, transports, allow_production, seed)
        rows = tuple(
            (
                format_duration(pf.spec.at_s),
                pf.action.fault_id,
                pf.action.target.label,
                (plan := pf.action.describe()).inject,
                plan.revert,
            )
            for pf in prepared
        )
        states = {p.spec.id: p.check() for p in probes}
    except DrillError as exc:
        return DryRunReport((), (), False, f"preflight would fail: {exc}")
    finally:
        transports.close()
    lines = tuple(
        f"probe {p.spec.id}: {p.describe()} — now {states[p.spec.id].state} ({states[p.spec.id].detail})"
        for p in probes
    )
    broken = [p for p in playbook.steady_state if states[p].state != "up"]
    if broken:
        return DryRunReport(
            rows, lines, False, f"preflight would fail: steady state broken ({', '.join(broken)})"
        )
    return DryRunReport(rows, lines, True, "preflight would pass: steady state holds, every target answers")
