"""The journal's vocabulary: every record type, and the layout of ``run.started``.

Writers and readers import these names; no other module spells a record type. A record
type is a :class:`RecordType` (a ``str``), so it is written to and compared with the JSON
lines as the plain string it stands for (``RecordType.FAULT_INTENT == "fault.intent"``).
"""

from __future__ import annotations

from enum import StrEnum


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
    FAULT_HANDED_OVER = "fault.handed_over"  # its ``until`` step came; the responders restore it
    STEP_UPDATE = "step.update"  # a repeat of a step with an update cadence (a status update)
    INJECT_SENT = "inject.sent"  # an alert or inject delivered (desk or an outside channel)
    INJECT_FAILED = "inject.failed"  # a delivery that did not go out, with the reason
    ENTRY_LOGGED = "entry.logged"  # a player's free-text entry, for the evaluator to map
    OBSERVATION_RECORDED = "observation.recorded"  # an evaluator's strength / area for improvement
    RATING_RECORDED = "rating.recorded"  # an evaluator's HSEEP rating (P/S/M/U) of a capability
    FAULT_REVERTED = "fault.reverted"
    FAULT_REVERT_FAILED = "fault.revert_failed"
    RESTORE_VERIFIED = "restore.verified"
    RESTORE_FAILED = "restore.failed"
    RUN_ABORTED = "run.aborted"
    RUN_FAILED = "run.failed"
    RUN_ENDED = "run.ended"
    RECOVER_STARTED = "recover.started"
    RECOVER_FINISHED = "recover.finished"
    JOURNAL_TAIL_REPAIRED = "journal.tail_repaired"  # a torn last line moved to a side file


__all__ = ["RecordType"]
