"""Remarks from the journal for the debrief: responders' step notes, engine diagnostics, manual
revert commands. Each is marked for the client version or the MSP's internal one.

The client version (``--audience client``) leaves out everything ``internal``: the MSP's own
step notes, engine errors and the manual commands that undo a fault by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from engine.record.journal import JournalContents
from engine.record.records import RecordType
from engine.record.steps import current_step_records
from reports.debrief.model import Audience, FindingParty, Note, NoteKind
from reports.i18n import parse_utc


class _Offsets:
    """Seconds from ``origin`` for a record; ``bcdrill recover`` records use their UTC time."""

    def __init__(self, contents: JournalContents, origin: float) -> None:
        started = next(contents.of_type(RecordType.RUN_STARTED))
        self.start_t = float(started["t"])
        self.start_at: datetime = parse_utc(str(started["at"]))
        self.origin = origin
        first = next(contents.of_type(RecordType.RECOVER_STARTED), None)
        self.recover_seq = None if first is None else int(first["seq"])

    def of(self, record: dict[str, Any]) -> float:
        """The record's offset from the origin of the debrief's times."""
        if self.recover_seq is None or int(record["seq"]) < self.recover_seq:
            return float(record["t"]) - self.origin
        elapsed = (parse_utc(str(record["at"])) - self.start_at).total_seconds()
        return self.start_t + elapsed - self.origin


def _note(
    at_s: float, kind: NoteKind, audience: Audience, party: FindingParty, by: str, subject: str, text: str
) -> Note:
    return Note(at_s=at_s, kind=kind, audience=audience, party=party, by=by, subject=subject, text=text)


def _notes(contents: JournalContents, offsets: _Offsets) -> Iterator[Note]:
    standing = {id(r) for r in current_step_records(contents.records)}  # corrections retract some
    for record in contents.records:
        kind, data = str(record["type"]), record.get("data") or {}
        at = offsets.of(record)
        if (
            kind == RecordType.STEP_RECORDED
            and id(record) in standing
            and str(data.get("note") or "").strip()
        ):
            party: FindingParty = "client" if data.get("party") == "client" else "msp"
            audience: Audience = "client" if party == "client" else "internal"
            yield _note(
                at,
                "step_note",
                audience,
                party,
                str(data.get("by", "")),
                f"step:{data.get('step', '')}",
                str(data["note"]).strip(),
            )
        elif kind == RecordType.STEP_REJECTED:
            yield _note(
                at,
                "diagnostic",
                "internal",
                "drill",
                str(data.get("by", "")),
                f"step:{data.get('step', '')}",
                f"step rejected: {data.get('reason', '')}",
            )
        elif kind in (RecordType.FAULT_INJECT_FAILED, RecordType.FAULT_REVERT_FAILED):
            yield _note(
                at,
                "diagnostic",
                "internal",
                "drill",
                "engine",
                f"fault:{data.get('fault', '')}",
                f"{kind}: {data.get('error', '')}",
            )
            if data.get("manual"):
                yield _note(
                    at,
                    "manual_revert",
                    "internal",
                    "drill",
                    "engine",
                    f"fault:{data.get('fault', '')}",
                    str(data["manual"]),
                )
        elif kind in (RecordType.RUN_FAILED, RecordType.RESTORE_FAILED):
            yield _note(
                at, "diagnostic", "internal", "drill", "engine", "drill", f"{kind}: {data.get('reason', '')}"
            )


def read_notes(contents: JournalContents, origin: float) -> tuple[Note, ...]:
    """Every note of a verified journal, in journal order; times in seconds from ``origin``."""
    return tuple(_notes(contents, _Offsets(contents, origin)))
