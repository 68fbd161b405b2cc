"""Which step records stand: an evaluator's correction (``step.corrected``) retracts one.

Readers of the journal (scoring, the debrief, the desk) take step records through
:func:`current_step_records`, so a correction counts everywhere the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.record.records import RecordType

__all__ = ["current_step_records"]


def current_step_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``step.recorded`` records, in order, minus those a ``step.corrected`` retracted."""
    records = list(records)
    retracted = {r["data"].get("record") for r in records if r.get("type") == RecordType.STEP_CORRECTED}
    return [r for r in records if r.get("type") == RecordType.STEP_RECORDED and r.get("seq") not in retracted]
