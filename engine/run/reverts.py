"""Reverting faults: retried with backoff, verified, journaled; one failure never stops the rest."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from engine.errors import JournalError
from engine.faults.base import FaultAction
from engine.logsetup import get_logger
from engine.record.journal import Journal
from engine.record.records import RecordType
from engine.transports.connections import Transports

if TYPE_CHECKING:
    from engine.run.prepared import PreparedFault

log = get_logger(__name__)

BACKOFF_S = (0.0, 0.25, 1.0, 2.5)  # four attempts, well inside Prefect's 30 s grace
RevertHook = Callable[[Callable[[], None], str], None]


def _direct(fn: Callable[[], None], _fault_id: str) -> None:
    fn()


def revert_action(
    action: FaultAction,
    prior: Mapping[str, Any],
    transports: Transports,
    journal: Journal,
    hook: RevertHook = _direct,
) -> bool:
    """Revert one fault with retries; journal ``fault.reverted`` or ``fault.revert_failed``.

    ``fault.reverted`` says ``already_restored`` when the target was back in its prior state
    before the engine touched it (the responders restored it themselves).
    """
    error = ""
    try:
        already: dict[str, Any] = {"already_restored": bool(action.is_reverted(transports, prior))}
    except Exception:  # only a fact for the debrief: the revert below decides
        already = {}
    for delay in BACKOFF_S:
        time.sleep(delay)
        try:
            hook(lambda: action.revert(transports, prior), action.fault_id)
            verified = action.is_reverted(transports, prior)
        except Exception as exc:  # any failure is retried, then reported with the manual fix
            error = f"{type(exc).__name__}: {exc}"
            log.warning("fault.revert_retry", fault=action.fault_id, error=error)
            continue
        _record(journal, RecordType.FAULT_REVERTED, fault=action.fault_id, verified=verified, **already)
        return True
    manual = action.manual_revert(prior)
    _record(journal, RecordType.FAULT_REVERT_FAILED, fault=action.fault_id, error=error, manual=manual)
    log.error(RecordType.FAULT_REVERT_FAILED, fault=action.fault_id, error=error, manual=manual)
    return False


def _record(journal: Journal, type_: str, **data: Any) -> None:
    """Journal a revert outcome; a journal that fails now must not stop the other reverts."""
    try:
        journal.append(type_, **data)
    except JournalError as exc:
        log.error("journal.write_failed", record=type_, error=str(exc), **data)


def revert_one(
    prepared: PreparedFault,
    prior: Mapping[str, Any],
    transports: Transports,
    journal: Journal,
    hook: RevertHook = _direct,
) -> bool:
    """Revert a prepared fault (see :func:`revert_action`)."""
    return revert_action(prepared.action, prior, transports, journal, hook)


def revert_all(
    active: list[tuple[PreparedFault, Mapping[str, Any]]],
    transports: Transports,
    journal: Journal,
    hook: RevertHook = _direct,
) -> list[str]:
    """Revert faults last-in-first-out; return the ids that could not be reverted."""
    failed = []
    for prepared, prior in reversed(active):
        if not revert_one(prepared, prior, transports, journal, hook):
            failed.append(prepared.action.fault_id)
    return failed
