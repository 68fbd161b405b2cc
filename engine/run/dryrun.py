"""``bcdrill plan``: everything a run would do, shown without doing it — even when the hosts
cannot be reached.

The plan is built from the playbook and the environment alone: targets resolved from the
bindings (with the run's ``--seed`` selection), each fault's exact commands with what the
environment declares filled in (services, paths). Then each target is verified with read-only
calls (container lookup; SSH connect with the pinned host key) and each probe observed once;
what could not be reached is marked *not verified* with the reason, never a traceback.
Nothing is journaled and no fault is injected.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from engine.errors import DrillError
from engine.faults.base import FaultAction, ResolvedTarget
from engine.faults.host_base import HostFault
from engine.model.durations import format_duration
from engine.model.selection import select_members
from engine.model.types import Environment, FaultSpec, Playbook
from engine.plugins import FAULTS, PROBES
from engine.run.preflight import _with_deadman, check_guards
from engine.transports.connections import Transports

__all__ = ["DryRunReport", "PlannedFault", "dry_run"]

VERIFIED = "verified"
NOT_VERIFIED = "not verified"
_MAX_CONNECTS = 16


@dataclass(frozen=True)
class PlannedFault:
    """One fault on one target as a run would apply it, and whether the target answered."""

    at: str
    fault: str
    target: str
    inject: str
    revert: str
    check: str  # "verified", or "not verified: <why>"


@dataclass(frozen=True)
class DryRunReport:
    """The planned faults, probe lines and a verdict (``ready`` only when everything was verified)."""

    faults: tuple[PlannedFault, ...]
    probes: tuple[str, ...]
    ready: bool
    verdict: str


def dry_run(
    playbook: Playbook, environment: Environment, allow_production: bool = False, seed: int | None = None
) -> DryRunReport:
    """Describe every fault and probe from the files, then verify targets and probes read-only."""
    try:
        check_guards(playbook, environment, allow_production)
        refused = ""
    except DrillError as exc:
        refused = str(exc)
    transports = Transports(environment)
    try:
        planned = [
            (spec, action)
            for spec in playbook.faults
            for action in _actions(spec, playbook, environment, seed)
        ]
        checks = _verify_targets([action.target for _, action in planned], transports)
        rows = tuple(_row(spec, action, environment, checks[action.target.ref]) for spec, action in planned)
        probes, states = _observe(playbook, environment, transports)
    finally:
        transports.close()
    return DryRunReport(rows, probes, *_verdict(playbook, rows, states, refused))


def _actions(
    spec: FaultSpec, playbook: Playbook, environment: Environment, seed: int | None
) -> list[FaultAction]:
    """The fault's action on each member a run with ``seed`` hits (ids as the run names them)."""
    action_cls = FAULTS.get(spec.action)
    binding = environment.targets[spec.target]
    params = _with_deadman(spec, action_cls, playbook.safety.max_duration_s)
    several = len(binding.refs) > 1
    actions = []
    for ref in select_members(spec, binding.refs, seed):
        if binding.kind == "host":
            host = environment.hosts[ref]
            target = ResolvedTarget(spec.target, "host", ref, f"{host.user}@{host.address}:{host.port}")
        else:
            target = ResolvedTarget(spec.target, "container", ref, ref)
        actions.append(action_cls(f"{spec.id}@{ref}" if several else spec.id, target, params))
    return actions


def _verify_targets(targets: Iterable[ResolvedTarget], transports: Transports) -> dict[str, str]:
    """``ref -> "verified" | "not verified: why"`` for every distinct target (hosts in parallel)."""
    unique = {t.ref: t for t in targets}
    if not unique:
        return {}
    with ThreadPoolExecutor(max_workers=min(_MAX_CONNECTS, len(unique))) as pool:
        results = pool.map(lambda t: _verify(t, transports), unique.values())
        return dict(zip(unique, results, strict=True))


def _verify(target: ResolvedTarget, transports: Transports) -> str:
    try:
        if target.kind == "host":
            transports.ssh(target.ref).connect()
        else:
            status = transports.docker.container(target.ref).status
            if status != "running":
                return f"{NOT_VERIFIED}: container is {status}, not running"
    except DrillError as exc:
        return f"{NOT_VERIFIED}: {exc}"
    return VERIFIED


def _row(spec: FaultSpec, action: FaultAction, environment: Environment, check: str) -> PlannedFault:
    try:
        if isinstance(action, HostFault):
            plan = action.describe_on(environment.hosts[action.target.ref])
        else:
            plan = action.describe()
        inject, revert = plan.inject, plan.revert
    except DrillError as exc:
        inject = revert = f"cannot be described: {exc}"
    label = f"{action.target.name} ({action.target.label})"
    return PlannedFault(format_duration(spec.at_s), action.fault_id, label, inject, revert, check)


def _observe(
    playbook: Playbook, environment: Environment, transports: Transports
) -> tuple[tuple[str, ...], dict[str, str]]:
    """One observation per probe: ``up``/``down`` with its detail, or not verified."""
    lines, states = [], {}
    for spec in playbook.probes:
        try:
            probe = PROBES.get(spec.kind)(spec, environment, transports)
            described = probe.describe()
            result = probe.check()
            states[spec.id] = result.state
            lines.append(f"probe {spec.id}: {described} — now {result.state} ({result.detail})")
        except DrillError as exc:
            states[spec.id] = NOT_VERIFIED
            lines.append(f"probe {spec.id}: {spec.kind} — {NOT_VERIFIED}: {exc}")
    return tuple(lines), states


def _verdict(
    playbook: Playbook, rows: tuple[PlannedFault, ...], states: dict[str, str], refused: str
) -> tuple[bool, str]:
    if refused:
        return False, f"preflight would fail: {refused}"
    unverified = sorted({r.target for r in rows if r.check != VERIFIED})
    if unverified:
        return False, (
            f"{NOT_VERIFIED}: {len(unverified)} target(s) could not be reached ({', '.join(unverified)}); "
            "the plan above is built from the files — preflight will check them again at run time"
        )
    broken = [p for p in playbook.steady_state if states.get(p) != "up"]
    if broken:
        return False, f"preflight would fail: steady state broken ({', '.join(broken)})"
    return True, "preflight would pass: steady state holds, every target answers"
