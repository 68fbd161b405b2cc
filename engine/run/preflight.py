"""Preflight: guards, target resolution and fault/probe construction — before anything is injected."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from engine.errors import DrillError, PreflightError
from engine.faults.base import FaultAction, ResolvedTarget
from engine.model.selection import select_members
from engine.model.types import Environment, FaultSpec, Playbook, frozen_mapping, thaw
from engine.plugins import FAULTS, PROBES
from engine.probes.base import ProbeKind
from engine.run.fanout import connect_parallel
from engine.run.prepared import PreparedFault
from engine.transports.connections import Transports

DEADMAN_MARGIN_S = 60.0  # a target reverts by itself this long after the fault should have ended


def check_guards(playbook: Playbook, environment: Environment, allow_production: bool) -> None:
    """Refuse environments the playbook does not allow, and production without both consents."""
    if environment.kind not in playbook.safety.allowed_kinds:
        raise PreflightError(
            f"playbook {playbook.id!r} may run only in {', '.join(playbook.safety.allowed_kinds)} "
            f"environments; {environment.name!r} is {environment.kind!r}"
        )
    if environment.kind == "production" and not (allow_production and environment.allow_production):
        raise PreflightError(
            f"environment {environment.name!r} is production: it needs allow_production: true in "
            "the environment file and --allow-production on the command line"
        )


def resolve(
    spec: FaultSpec,
    environment: Environment,
    transports: Transports,
    max_targets: int,
    seed: int | None = None,
) -> list[ResolvedTarget]:
    """Resolve a fault's logical target to containers (by id) or SSH hosts, checking each answers."""
    action_cls = FAULTS.get(spec.action)
    binding = environment.targets.get(spec.target)
    if binding is None:
        raise PreflightError(
            f"fault {spec.id!r}: target {spec.target!r} is not bound in environment {environment.name!r}"
        )
    if binding.kind != action_cls.target_kind:
        raise PreflightError(
            f"fault {spec.id!r}: {spec.action} needs a {action_cls.target_kind} target, "
            f"but {spec.target!r} is bound to {binding.kind}s"
        )
    refs = select_members(spec, binding.refs, seed)
    if len(refs) > max_targets:
        raise PreflightError(
            f"fault {spec.id!r}: it would hit {len(refs)} members of {spec.target!r}, "
            f"over the playbook's max_targets_per_fault {max_targets}"
        )
    try:
        if binding.kind == "host":
            connect_parallel(transports, refs)  # verify every host key at once
        return [_resolve_ref(spec.target, binding.kind, ref, environment, transports) for ref in refs]
    except DrillError as exc:
        raise PreflightError(f"fault {spec.id!r}: target {spec.target!r} does not answer: {exc}") from exc


def _resolve_ref(
    name: str, kind: str, ref: str, environment: Environment, transports: Transports
) -> ResolvedTarget:
    if kind == "container":
        container = transports.docker.container(ref)
        if container.status != "running":
            raise PreflightError(f"container {ref!r} is {container.status}, not running")
        return ResolvedTarget(name, "container", str(container.id), ref)
    host = environment.hosts[ref]
    transports.ssh(ref).connect()
    return ResolvedTarget(name, "host", ref, f"{host.user}@{host.address}:{host.port}")


def _with_deadman(
    spec: FaultSpec, action_cls: type[FaultAction], max_duration_s: float, time_scale: float = 1.0
) -> Mapping[str, Any]:
    """Give target-side dead-man timers the fault's longest life plus a margin, unless set.

    A declared ``deadman_ttl_s`` is scaled with ``--time-scale`` like every scenario duration,
    never below that floor (the timer must not fire while the fault should still be in place).
    ``spec`` and ``max_duration_s`` are already scaled.
    """
    accepts = "deadman_ttl_s" in action_cls.params_schema.get("properties", {})
    if not accepts:
        return spec.params
    longest = min(spec.duration_s or max_duration_s, max_duration_s)
    floor = math.ceil(longest + DEADMAN_MARGIN_S)
    declared = spec.params.get("deadman_ttl_s")
    if declared is None:
        ttl = floor
    elif time_scale == 1.0:
        return spec.params
    else:
        ttl = max(math.ceil(float(declared) * time_scale), floor)
    return frozen_mapping({**thaw(spec.params), "deadman_ttl_s": ttl})


def prepare(
    playbook: Playbook,
    environment: Environment,
    transports: Transports,
    allow_production: bool,
    seed: int | None = None,
    run_id: str = "",
    time_scale: float = 1.0,
) -> tuple[list[PreparedFault], list[ProbeKind]]:
    """Everything preflight checks except the steady state: guards, targets, faults, probes.

    ``seed`` draws the members of faults that ``select`` some of their target (None: all);
    ``run_id`` names what faults leave on targets; ``time_scale`` scales declared dead-man times.
    """
    check_guards(playbook, environment, allow_production)
    faults: list[PreparedFault] = []
    for spec in playbook.faults:
        targets = resolve(spec, environment, transports, playbook.safety.max_targets_per_fault, seed)
        action_cls = FAULTS.get(spec.action)
        params = _with_deadman(spec, action_cls, playbook.safety.max_duration_s, time_scale)
        several = len(environment.targets[spec.target].refs) > 1
        for target in targets:
            member = target.ref if target.kind == "host" else target.label
            fault_id = f"{spec.id}@{member}" if several else spec.id
            faults.append(PreparedFault(spec, action_cls(fault_id, target, params, run_id)))
    probes = [PROBES.get(p.kind)(p, environment, transports) for p in playbook.probes]
    return faults, probes
