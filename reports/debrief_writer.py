"""The standard debriefer: turn a finished run directory into its debrief files.

Registered as the ``standard`` entry point of ``bcdrill.debriefers``; the engine calls
``write_debrief(run_dir)`` after a run ends (and ``bcdrill report`` can call it again).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import structlog

from engine.errors import JournalError
from engine.journal import JOURNAL_NAME
from reports.debrief import debrief_from_journal
from reports.renderers import render

log = structlog.get_logger(__name__)

# Which renderer writes which file in the run directory.
OUTPUTS: tuple[tuple[str, str], ...] = (
    ("json", "debrief.json"),
    ("md", "debrief.md"),
    ("html", "debrief.html"),
    ("junit", "junit.xml"),
)


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename (no half-written reports)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise JournalError(f"cannot write {str(path)!r}: {exc.strerror}") from exc


def write_debrief(run_dir: Path) -> dict[str, Any]:
    """Read ``run_dir/journal.jsonl``, write the debrief files there, return the debrief JSON."""
    run_dir = Path(run_dir)
    debrief = debrief_from_journal(run_dir / JOURNAL_NAME)
    for fmt, name in OUTPUTS:
        write_text_atomically(run_dir / name, render(debrief, fmt))
    log.info(
        "debrief.written",
        run_id=debrief.run_id,
        outcome=debrief.outcome,
        score=debrief.score,
        files=[name for _, name in OUTPUTS],
    )
    return debrief.to_json()
