"""Preflight: guards, target resolution and fault/probe construction — before anything is injected.

Then, for a scheduled drill, the hold until its secret moment (:func:`await_moment`). A drill
of the programme is started a *lead time* before its secret moment (the flow run is scheduled
at ``moment - lead``): the process boots, takes the environment's slot and runs preflight
early, then holds here until the moment — so the first fault lands on the moment instead of
after the boot and the preflight. Nothing a player sees (the drill desk, injects, alerts,
simulated people) starts before the hold ends.

The hold is journaled honestly: ``moment.awaited`` (the moment and how long the wait is) and
``moment.reached`` (``late_s``: how far past the moment the drill was released; positive when
the run was started or readied too late). An abort request or a stop signal ends the hold
like any other phase of the drill (nothing was injected). When the steady state stopped
holding while waiting (its probes look every :data:`HOLD_PROBE_PACE_S` meanwhile, not at
their measuring pace), the drill fails its preflight at the moment instead of injecting.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.clock import Clock, iso
from engine.errors import AbortedError, DrillError, InputError, PreflightError
from engine.faults.base import FaultAction, ResolvedTarget
from engine.model.selection import select_members
from engine.model.types import Environment, FaultSpec, Playbook, frozen_mapping, thaw
from engine.plugins import FAULTS, PROBES
from engine.probes.base import ProbeKind
from engine.record.journal import Journal
from engine.record.records import RecordType
from engine.record.runstore import abort_requested
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


# ---------------------------------------------------------------- the secret moment

MAX_STEP_S = 0.25  # abort requests are noticed within this while holding
HOLD_PROBE_PACE_S = 1.0  # the steady state is watched this often while holding (probes' own pace after)


class HoldAborted(AbortedError):
    """A controller aborted the drill while it waited for its moment."""

    def __init__(self, message: str, by: str) -> None:
        super().__init__(message)
        self.by = by


def parse_moment(text: str) -> datetime:
    """An ISO 8601 moment with a time zone, as UTC; :class:`InputError` otherwise."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"moment {text!r} is not an ISO 8601 time (2027-03-04T10:15:00Z)") from exc
    if moment.tzinfo is None:
        raise InputError(f"moment {text!r} needs a time zone (2027-03-04T10:15:00Z)")
    return moment.astimezone(UTC)


def await_moment(
    moment: datetime,
    clock: Clock,
    journal: Journal,
    run_dir: Path,
    steady: Callable[[], str | None] = lambda: None,
) -> float:
    """Hold until ``moment`` (UTC); return how late the drill was released, in seconds.

    ``steady`` says why the steady state no longer holds (or None); it is asked once, when
    the moment has come. Sleeps in steps of at most :data:`MAX_STEP_S` so an abort request
    (``bcdrill abort``) ends the hold promptly, and the last step ends on the moment.
    """
    wait_s = (moment - clock.utc()).total_seconds()
    journal.append(RecordType.MOMENT_AWAITED, moment=iso(moment), wait_s=round(max(wait_s, 0.0), 3))
    while True:
        request = abort_requested(run_dir)
        if request:
            raise HoldAborted(
                f"aborted by {request['by']} before the drill's moment: {request['reason']}", by=request["by"]
            )
        remaining = (moment - clock.utc()).total_seconds()
        if remaining <= 0:
            break
        clock.sleep(min(remaining, MAX_STEP_S))
    late_s = -remaining
    journal.append(RecordType.MOMENT_REACHED, moment=iso(moment), late_s=round(late_s, 3))
    broken = steady()
    if broken:
        raise PreflightError(f"steady state stopped holding while the drill waited for its moment: {broken}")
    return late_s
