"""Parallel fan-out: one playbook fault applied to many targets at (nearly) the same moment.

The sequential path injects one target after another, so the last of 100 SSH hosts is hit
seconds after the first. :func:`inject_parallel` runs every target's own inject path —
capture → ``fault.intent`` (durable, before anything changes) → inject → ``fault.applied``
or ``fault.inject_failed`` — in a bounded thread pool. The journal is thread-safe, so every
target's records are there, in the order they happened.

``on_intent(prepared, prior)`` is called right after a target's ``fault.intent`` is durable
and before its inject, so the caller can track it for the final revert even when a signal
interrupts the fan-out. When any target fails (and ``revert_on_failure``), every target whose
intent was written is reverted (journaled by :func:`engine.run.reverts.revert_action`) and a
:class:`FanoutError` names the failures and the targets already reverted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from engine.clock import iso
from engine.errors import AbortedError, InjectionError
from engine.faults.base import EffectiveTime
from engine.faults.target_clock import offset_of
from engine.logsetup import get_logger
from engine.model.types import thaw
from engine.record.records import RecordType
from engine.run.reverts import revert_action

if TYPE_CHECKING:
    from engine.record.journal import Journal
    from engine.run.prepared import PreparedFault
    from engine.transports.connections import Transports

log = get_logger(__name__)

#: Upper bound of concurrent targets: SSH work is mostly waiting, but each thread costs memory.
MAX_WORKERS = 32

IntentCallback = Callable[["PreparedFault", Mapping[str, Any]], None]
CallHook = Callable[[Callable[[], None], str], None]


@dataclass(frozen=True)
class Applied:
    """One target on which the fault is in place."""

    prepared: PreparedFault
    prior: Mapping[str, Any]
    applied_t: float  # run offset of its impact start: the target's own time, else fault.applied


@dataclass(frozen=True)
class FanoutResult:
    """What a fan-out did: applied targets (in order of application) and failures by fault id."""

    applied: tuple[Applied, ...]
    failed: Mapping[str, str]
    reverted: tuple[str, ...] = ()

    @property
    def first_applied_t(self) -> float | None:
        """Run offset of the earliest impact start (the daemon's event time when known, else
        the ``fault.applied`` record), None if none."""
        return min((a.applied_t for a in self.applied), default=None)


class FanoutError(InjectionError):
    """Some targets of a fan-out failed; ``result`` says which, and what was reverted."""

    def __init__(self, message: str, result: FanoutResult) -> None:
        super().__init__(message)
        self.result = result


def _direct(fn: Callable[[], None], _fault_id: str) -> None:
    fn()


def _ignore(_pf: PreparedFault, _prior: Mapping[str, Any]) -> None:
    return None


@dataclass
class _Outcome:
    prepared: PreparedFault
    prior: Mapping[str, Any] | None = None  # set once fault.intent is durable
    applied_t: float | None = None
    error: str = ""


def _deadman_times(pf: PreparedFault) -> dict[str, Any]:
    """The dead-man time the playbook declared and the one in force (scaled, floored)."""
    if "deadman_ttl_s" not in pf.action.params:
        return {}
    declared = pf.spec.params.get("deadman_ttl_s")
    return {"deadman_ttl_s": {"declared": declared, "in_force": pf.action.params["deadman_ttl_s"]}}


def inject_one(
    pf: PreparedFault, transports: Transports, journal: Journal, on_intent: IntentCallback, hook: CallHook
) -> _Outcome:
    """One target's inject path: capture → durable intent → inject → applied (or failed).

    Never raises for a failing target (the outcome carries the error); an abort (signal,
    operator) propagates, after ``on_intent`` made sure the target will be reverted.
    """
    action = pf.action
    outcome = _Outcome(pf)
    try:
        prior = action.capture(transports)
        journal.append(
            RecordType.FAULT_INTENT,
            fault=action.fault_id,
            action=action.name,
            target=action.target.to_json(),
            params=thaw(action.params),
            prior=prior,
            **_deadman_times(pf),
        )
        outcome.prior = prior
        on_intent(pf, prior)
        called = time.time()
        hook(lambda: action.inject(transports, prior), action.fault_id)
        returned = time.time()
    except AbortedError:
        raise
    except Exception as exc:  # every target's failure is journaled and reported, not raised
        outcome.error = f"{type(exc).__name__}: {exc}"
        journal.append(RecordType.FAULT_INJECT_FAILED, fault=action.fault_id, error=outcome.error)
        return outcome
    effective = _effective(pf, prior, transports, called, returned)
    observed = action.applied_facts()
    record = journal.append(
        RecordType.FAULT_APPLIED,
        fault=action.fault_id,
        **effective_data(effective, journal),
        **({"observed": observed} if observed else {}),
    )
    effective_t = record["data"].get("effective_t")
    outcome.applied_t = float(record["t"] if effective_t is None else effective_t)
    return outcome


def _effective(
    pf: PreparedFault, prior: Mapping[str, Any], transports: Transports, called: float, returned: float
) -> EffectiveTime | None:
    """The target's own time of the fault taking effect, None when unknown (never raises)."""
    try:
        return pf.action.effective_at(transports, prior, called - 0.001, returned + 0.001)
    except Exception:  # a time source is a bonus: the fault.applied record's time stands
        log.warning("fault.effective_time_unavailable", fault=pf.action.fault_id, exc_info=True)
        return None


def effective_data(effective: EffectiveTime | None, journal: Journal) -> dict[str, Any]:
    """``fault.applied`` fields of an effective time: ``effective_at`` (UTC), ``effective_t``
    (run offset, the impact start) and ``effective_source``; nothing when it is unknown."""
    if effective is None:
        return {}
    start = journal.clock.utc(0.0)
    moment = datetime.fromtimestamp(effective.unix, UTC)
    return {
        "effective_at": iso(moment),
        "effective_t": round((moment - start).total_seconds(), 6),
        "effective_source": effective.source,
    }


def inject_parallel(
    prepared: Sequence[PreparedFault],
    transports: Transports,
    journal: Journal,
    *,
    on_intent: IntentCallback = _ignore,
    hook: CallHook = _direct,
    max_workers: int = MAX_WORKERS,
    revert_on_failure: bool = True,
) -> FanoutResult:
    """Inject every prepared fault at once (at most ``max_workers`` in flight).

    Raises :class:`FanoutError` when any target failed; by then (with ``revert_on_failure``)
    every target whose intent was journaled has been reverted.
    """
    if not prepared:
        return FanoutResult((), {})
    workers = max(1, min(max_workers, len(prepared)))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fanout")
    try:
        futures: list[Future[_Outcome]] = [
            pool.submit(inject_one, pf, transports, journal, on_intent, hook) for pf in prepared
        ]
        outcomes = [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    applied = sorted(
        (
            Applied(o.prepared, o.prior, o.applied_t)
            for o in outcomes
            if o.prior is not None and o.applied_t is not None
        ),
        key=lambda a: a.applied_t,
    )
    failed = {o.prepared.action.fault_id: o.error for o in outcomes if o.error}
    result = FanoutResult(tuple(applied), failed)
    if not failed:
        log.info("fanout.applied", targets=len(applied), workers=workers)
        return result
    reverted: tuple[str, ...] = ()
    if revert_on_failure:
        started = [o for o in outcomes if o.prior is not None]
        reverted = revert_parallel(
            [(o.prepared, o.prior) for o in started if o.prior is not None], transports, journal
        )
    result = FanoutResult(tuple(applied), failed, reverted)
    names = ", ".join(f"{fid!r} ({error})" for fid, error in sorted(failed.items()))
    raise FanoutError(
        f"{len(failed)} of {len(prepared)} targets failed: {names}; "
        f"reverted {len(reverted)} target(s) that had been started",
        result,
    )


def revert_parallel(
    started: Sequence[tuple[PreparedFault, Mapping[str, Any]]],
    transports: Transports,
    journal: Journal,
    *,
    hook: CallHook = _direct,
    max_workers: int = MAX_WORKERS,
) -> tuple[str, ...]:
    """Revert many targets at once (retried and journaled per target); return those reverted."""
    if not started:
        return ()
    workers = max(1, min(max_workers, len(started)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fanout-revert") as pool:
        oks = list(
            pool.map(lambda item: revert_action(item[0].action, item[1], transports, journal, hook), started)
        )
    return tuple(pf.action.fault_id for (pf, _), ok in zip(started, oks, strict=True) if ok)


def connect_parallel(
    transports: Transports, host_names: Sequence[str], max_workers: int = MAX_WORKERS
) -> None:
    """Open and verify the SSH connections to ``host_names`` at once (preflight for many hosts),
    and read each target's clock offset while connecting (host faults stamp their inject by it)."""
    if not host_names:
        return
    workers = max(1, min(max_workers, len(host_names)))

    def connect(name: str) -> None:
        ssh = transports.ssh(name)
        ssh.connect()
        offset_of(ssh)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fanout-connect") as pool:
        list(pool.map(connect, host_names))
