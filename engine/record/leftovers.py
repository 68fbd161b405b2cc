"""What dead runs left behind: faults journaled as intended and never reverted.

Read by ``bcdrill run`` before every drill (a crashed run may still carry faults on the same
environment) and by ``bcdrill recover``. Only the journals are read: no fault code, no
transport — the check stays cheap in a command that only submits a drill.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.record.journal import JOURNAL_NAME, read_journal
from engine.record.records import RecordType
from engine.record.runstore import list_runs, owner_alive

__all__ = ["open_faults", "stale_runs"]


def open_faults(records: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """``fault.intent`` records with no ``fault.reverted`` after them, in injection order."""
    reverted = {r["data"]["fault"] for r in records if r["type"] == RecordType.FAULT_REVERTED}
    intents: dict[str, dict[str, Any]] = {}
    for record in records:
        if record["type"] == RecordType.FAULT_INTENT and record["data"]["fault"] not in reverted:
            intents[record["data"]["fault"]] = record
    return list(intents.values())


def stale_runs(environment: str, root: Path | None = None) -> list[tuple[Path, list[str]]]:
    """Dead runs on ``environment`` that still have unreverted faults (run folder, fault ids).

    A run's first record (``run.started``) names its environment: the journals of runs on other
    environments are not read further."""
    found = []
    for run_dir in list_runs(root):
        if _environment_of(run_dir) not in (environment, None) or owner_alive(run_dir):
            continue
        records = read_journal(run_dir / JOURNAL_NAME).records
        started = next((r for r in records if r["type"] == RecordType.RUN_STARTED), None)
        if started is None or started["data"]["environment"]["name"] != environment:
            continue
        pending = open_faults(records)
        if pending:
            found.append((run_dir, [r["data"]["fault"] for r in pending]))
    return found


def _environment_of(run_dir: Path) -> str | None:
    """The environment named by the journal's first record; None when it cannot tell (then the
    whole journal is read and checked)."""
    try:
        with (run_dir / JOURNAL_NAME).open("rb") as handle:
            first = json.loads(handle.readline())
        name = first["data"]["environment"]["name"] if first["type"] == RecordType.RUN_STARTED else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) else None
