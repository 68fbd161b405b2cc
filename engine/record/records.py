"""The journal's vocabulary: every record type, and the layout of ``run.started``.

Writers and readers import these names; no other module spells a record type. A record
type is a :class:`RecordType` (a ``str``), so it is written to and compared with the JSON
lines as the plain string it stands for (``RecordType.FAULT_INTENT == "fault.intent"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class RecordType(StrEnum):
    """Every type of record a run journal holds, in the order a run usually writes them."""

    RUN_STARTED = "run.started"
    PREFLIGHT_PASSED = "preflight.passed"
    PREFLIGHT_FAILED = "preflight.failed"
    FAULT_INTENT = "fault.intent"  # written *before* acting, so recover can always undo it
    FAULT_APPLIED = "fault.applied"
    FAULT_INJECT_FAILED = "fault.inject_failed"
    PROBE_CHANGED = "probe.changed"
    PROBE_MEASURED = "probe.measured"
    STEP_RECORDED = "step.recorded"
    STEP_REJECTED = "step.rejected"
    FAULT_REVERTED = "fault.reverted"
    FAULT_REVERT_FAILED = "fault.revert_failed"
    RESTORE_VERIFIED = "restore.verified"
    RESTORE_FAILED = "restore.failed"
    RUN_ABORTED = "run.aborted"
    RUN_FAILED = "run.failed"
    RUN_ENDED = "run.ended"
    RECOVER_STARTED = "recover.started"
    RECOVER_FINISHED = "recover.finished"


class RunClass(StrEnum):
    """What a run counts as, recorded as ``class`` in ``run.started``.

    Only completed ``drill`` runs feed a client's trend, year-on-year figures and
    improvement plan; rehearsals and CI runs are looked at separately.
    """

    DRILL = "drill"  # an official, unannounced drill
    REHEARSAL = "rehearsal"  # people or simulated responders practising; not official
    CI = "ci"  # an automated run (``--responders auto``)


def resolve_run_class(explicit: str | None, responders: str, from_plan: bool) -> RunClass:
    """The class of a new run: as given, else ``ci`` for automatic responders, ``drill`` for a
    run started by a drill plan, ``rehearsal`` otherwise. ``ValueError`` for an unknown class."""
    if explicit is not None:
        try:
            return RunClass(explicit)
        except ValueError:
            known = ", ".join(c.value for c in RunClass)
            raise ValueError(f"run class must be one of {known}, not {explicit!r}") from None
    if responders == "auto":
        return RunClass.CI
    return RunClass.DRILL if from_plan else RunClass.REHEARSAL


def run_class_of(started: Mapping[str, Any]) -> RunClass:
    """The class of a run from the ``data`` of its ``run.started`` record.

    Runs journaled before classes existed read as ``rehearsal``, unless a drill plan started
    them (``plan`` names it), which makes them ``drill``.
    """
    value = started.get("class")
    if value in {c.value for c in RunClass}:
        return RunClass(value)
    return RunClass.DRILL if started.get("plan") else RunClass.REHEARSAL


__all__ = ["RecordType", "RunClass", "resolve_run_class", "run_class_of"]
