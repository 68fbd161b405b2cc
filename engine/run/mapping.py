"""Evaluators map players' free-text entries to steps and correct wrongly recorded steps.

A mapped entry records its step as done at the *entry's* time (``source: evaluator``, the
note says who mapped it); "no step" only marks the entry handled. A correction moves a
step's standing record to another step of the same party, keeping its time and author.
Both are journaled first (``entry.mapped`` / ``step.corrected``), then the step record.
"""

from __future__ import annotations

from engine.record.records import RecordType
from engine.run.responses import Ack, StepBook

__all__ = ["correct_step", "map_entry"]

_PERSON_KINDS = ("ack", "webhook")  # steps a person records (not probes, not decisions)


def _target_problem(book: StepBook, key: str, party: str) -> str:
    step = book.step(key)
    if step is None or step.party != party:
        return f"{key} is not a step of the {party} party"
    if step.recorded_by.kind not in _PERSON_KINDS:
        return f"{key} is recorded by {step.recorded_by.kind}, not by a person"
    return ""


def map_entry(book: StepBook, evaluator: str, seq: int, key: str) -> str:
    """Map entry ``seq`` to step ``key`` ('' = no step); '' when done, else the reason."""
    entry, mapped = book.entry(seq)
    if entry is None:
        return f"no player's entry #{seq}"
    if mapped:
        return f"entry #{seq} is already mapped"
    data = entry["data"]
    preface = {"type": RecordType.ENTRY_MAPPED, "entry": seq, "step": key, "by": evaluator}
    if not key:
        return book.map_to_none(preface)
    problem = _target_problem(book, key, str(data["party"]))
    if problem:
        return problem
    note = f"mapped by evaluator {evaluator} from entry #{seq}: {data['text']}"
    ack = Ack(key, by=str(data["by"]), source="evaluator", note=note[:500])
    return book.reassign(ack, float(entry["t"]), preface)


def correct_step(book: StepBook, evaluator: str, key: str, to: str) -> str:
    """Move ``key``'s record to step ``to`` (same party, same time); '' when done, else the reason."""
    record = book.record_of(key)
    if record is None:
        return f"{key} is not recorded"
    data = record["data"]
    if data.get("source") == "probe" or "choice" in data:
        return f"{key} was recorded by monitoring or a decision; it cannot be moved"
    problem = _target_problem(book, to, str(data["party"]))
    if problem:
        return problem
    acted = data.get("acted_t", record["t"])
    preface = {
        "type": RecordType.STEP_CORRECTED,
        "step": key,
        "record": record["seq"],
        "to": to,
        "by": evaluator,
    }
    note = f"corrected by evaluator {evaluator} from {key}" + (
        f": {data['note']}" if data.get("note") else ""
    )
    ack = Ack(to, by=str(data.get("by", "")), source="evaluator", note=note[:500])
    return book.reassign(ack, float(acted), preface, retract=key)
