"""``bcdrill recover``: revert, from the journal alone, every fault a dead run left behind,
and finish every run the engine never ended (``run.ended``, a void debrief, the signature).

Needs no Prefect and no running engine: the run folder's journal says what was about to be
injected (``fault.intent`` with the captured prior state) and what was reverted; its
environment snapshot says how to reach the targets. Running it twice is a no-op. It never
touches a run whose owner process is still alive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.clock import RunClock
from engine.errors import DrillError, PreflightError
from engine.faults.base import FaultAction, ResolvedTarget
from engine.logsetup import get_logger
from engine.model.types import Environment, frozen_mapping
from engine.plugins import FAULTS
from engine.record.journal import JOURNAL_NAME, Journal, read_journal
from engine.record.leftovers import open_faults
from engine.record.records import RecordType
from engine.record.runstore import list_runs, owner_alive
from engine.run.reverts import revert_action
from engine.spec.loader import load_environment
from engine.transports.connections import Transports

log = get_logger(__name__)
_MARGIN_S = 2.0  # beyond how long an interrupted inject can go on: the daemon's or host's own slack


@dataclass(frozen=True)
class RecoveryReport:
    """What recover did to one run."""

    run_dir: Path
    skipped: str  # why the run was left alone, or ""
    reverted: tuple[str, ...]
    failed: tuple[str, ...]
    torn_tail_set_aside: bool = False  # a torn last line moved to a side file before appending
    finished: bool = False  # the engine never ended the run: recover closed, debriefed and sealed it
    unsigned: str = ""  # why a run made to be signed could not be: it stays out of the client's history
    error: str = ""  # why recover could not go through this run (its faults may remain)


def _run_start(records: tuple[dict[str, Any], ...]) -> datetime | None:
    """The UTC moment of offset 0, so records appended by recover continue the run's clock."""
    if not records:
        return None
    first = records[0]
    at = datetime.fromisoformat(str(first["at"]).replace("Z", "+00:00"))
    return at - timedelta(seconds=float(first["t"]))


def recover_run(run_dir: Path) -> RecoveryReport:
    """Revert the open faults of one run (LIFO) and finish a run the engine never ended: close it
    with ``run.ended``, debrief it (void: the engine stopped unexpectedly) and sign it — also when
    nothing needed reverting (a crash in preflight, before the secret moment or in the hotwash).
    Everything is journaled in the same journal."""
    if owner_alive(run_dir):
        return RecoveryReport(run_dir, "its owner process is still running", (), ())
    contents = read_journal(run_dir / JOURNAL_NAME)
    pending = open_faults(contents.records)
    ended = any(r["type"] == RecordType.RUN_ENDED for r in contents.records)
    if not pending and ended:
        if contents.torn_tail:  # nothing to revert, but leave a journal that ends cleanly
            Journal(run_dir / JOURNAL_NAME, RunClock(started_at=_run_start(contents.records))).close()
        return RecoveryReport(run_dir, "", (), (), contents.torn_tail)
    transports = _transports(run_dir) if pending else None
    if transports is not None:
        wait_s = interrupted_inject_wait_s(contents.records, transports.environment, datetime.now(UTC))
        if wait_s > 0:
            log.warning("recover.waiting_for_interrupted_inject", run=run_dir.name, seconds=round(wait_s, 1))
            time.sleep(wait_s)
    # a torn last line (killed mid-write) is set aside by the writer before it appends
    journal = Journal(run_dir / JOURNAL_NAME, RunClock(started_at=_run_start(contents.records)))
    journal.append(RecordType.RECOVER_STARTED, open_faults=[r["data"]["fault"] for r in pending])
    reverted, failed = _revert_pending(pending, transports, journal)
    if not ended:
        journal.append(RecordType.RUN_ENDED, reason="recovered after the engine stopped unexpectedly")
    journal.append(RecordType.RECOVER_FINISHED, reverted=reverted, failed=failed)
    journal.close()
    named = contents.records[0]["data"].get("signing_key") if contents.records else None
    signed = False
    try:
        signed = _finish_record(run_dir)
    except Exception as exc:  # the faults are reverted; a missing debrief must not hide that
        log.error("recover.debrief_failed", run=run_dir.name, error=f"{type(exc).__name__}: {exc}")
    unsigned = (
        f"not signed: key {named} was to sign it and is not configured here (bcdrill keys init, or "
        "BCDRILL_SIGNING_KEY); it stays out of the client's history"
        if named and not signed
        else ""
    )
    return RecoveryReport(
        run_dir, "", tuple(reverted), tuple(failed), contents.torn_tail, not ended, unsigned
    )


def _transports(run_dir: Path) -> Transports:
    """Connections to the targets, from the run's environment snapshot."""
    env_file = run_dir / "environment.yaml"
    if not env_file.exists():
        raise PreflightError(f"{run_dir}: no environment snapshot; cannot reach the targets")
    return Transports(load_environment(env_file))


def interrupted_inject_wait_s(
    records: tuple[dict[str, Any], ...], environment: Environment, now: datetime
) -> float:
    """Seconds to wait, from ``now``, until every inject a crash interrupted has surely ended.

    A fault journaled as intended but neither applied nor failed was being injected when the
    engine died, and the inject goes on without it (:meth:`FaultAction.inject_lasts_s`: a host
    command until its timeout, a ``docker stop`` for its grace). A revert made meanwhile would
    be undone by the rest of the inject (files encrypted after the restore, a container that
    stops after it was started), and the run would say reverted."""
    settled = {
        r["data"]["fault"]
        for r in records
        if r["type"] in (RecordType.FAULT_APPLIED, RecordType.FAULT_INJECT_FAILED)
    }
    waits = [
        _wait_s(r, _action(r["data"]).inject_lasts_s(environment) + _MARGIN_S, now)
        for r in open_faults(records)
        if r["data"]["fault"] not in settled
    ]
    return max(waits, default=0.0)


def _wait_s(intent: dict[str, Any], lasts_s: float, now: datetime) -> float:
    """What is left of ``lasts_s`` from the intent's moment; never more than ``lasts_s`` (an
    intent stamped ahead of this clock, which was set back since, does not lengthen it)."""
    at = datetime.fromisoformat(str(intent["at"]).replace("Z", "+00:00"))
    return min(lasts_s, max(0.0, (at + timedelta(seconds=lasts_s) - now).total_seconds()))


def _action(data: dict[str, Any]) -> FaultAction:
    """The fault action a ``fault.intent`` record describes, rebuilt from it alone."""
    action_cls = FAULTS.get(data["action"])
    return action_cls(data["fault"], ResolvedTarget(**data["target"]), frozen_mapping(data["params"]))


def _revert_pending(
    pending: list[dict[str, Any]], transports: Transports | None, journal: Journal
) -> tuple[list[str], list[str]]:
    """Revert ``pending`` faults, newest first: the ids reverted and those that failed."""
    reverted: list[str] = []
    failed: list[str] = []
    if transports is None:
        return reverted, failed
    try:
        for record in reversed(pending):
            data = record["data"]
            ok = revert_action(_action(data), data["prior"], transports, journal)
            (reverted if ok else failed).append(data["fault"])
    finally:
        transports.close()
    return reverted, failed


def _finish_record(run_dir: Path) -> bool:
    """The crashed run never got its debrief nor its signature: write and sign them now; True
    when it was signed."""
    from engine.plugins import DEBRIEFERS
    from engine.record.signing import load_signing_key
    from engine.run.evidence import seal_run

    environment = load_environment(run_dir / "environment.yaml")
    debrief = DEBRIEFERS.get("standard")(run_dir) if "standard" in DEBRIEFERS else None
    key = load_signing_key()
    return seal_run(run_dir, key, debrief, environment.participants, environment.client) is not None


def recover_all(root: Path | None = None) -> list[RecoveryReport]:
    """Recover every run in the store that has open faults or was never ended; a run that cannot
    be recovered is reported (``error``) and the others still are."""
    return [_recover_or_report(run) for run in list_runs(root)]


def _recover_or_report(run_dir: Path) -> RecoveryReport:
    try:
        return recover_run(run_dir)
    except (DrillError, OSError) as exc:
        return RecoveryReport(run_dir, "", (), (), error=str(exc))
    except Exception as exc:  # not anticipated: logged in full, and the other runs are still recovered
        log.exception("recover.failed", run=run_dir.name)
        return RecoveryReport(run_dir, "", (), (), error=f"unexpected {type(exc).__name__}: {exc}")
