"""The ack hand-off: a JSON file dropped atomically into a live run's ``<run>/inbox/``.

``bcdrill ack`` and the simulated responders write it (:func:`write_ack`); the engine's
:class:`~engine.run.responses.AckInbox` reads it (:func:`read_ack`) and records the step. Kept
apart from the step book so that ``bcdrill ack`` imports nothing else of a run.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import InputError
from engine.logsetup import get_logger

__all__ = ["Ack", "read_ack", "write_ack"]

log = get_logger(__name__)


@dataclass(frozen=True)
class Ack:
    """A person says a step is done."""

    step: str  # "msp.acknowledge"
    by: str
    source: str = "ack"
    note: str = ""
    observed_t: float | None = None  # when a probe-derived step became observable (run offset)
    choice: str = ""  # a decision step's chosen option (the note is the one-line rationale)
    # UTC epoch seconds the person acted at, as their client says (None: no claim), and when
    # the ack left the client as this side can tell (None: only the receipt is known).
    claimed_at: float | None = None
    sent_at: float | None = None
    # UTC epoch seconds the ack reached bcdrill's own front door (the desk's clock as the request
    # arrived), when that came before the engine could record it: the receipt that counts.
    arrived_at: float | None = None


def write_ack(run_dir: Path, ack: Ack) -> Path:
    """Drop an ack into a live run's inbox atomically (what ``bcdrill ack`` does).

    The file's modification time is the send moment the engine checks a client stamp against.
    """
    inbox = run_dir / "inbox"
    if not inbox.is_dir():
        raise InputError(f"{run_dir} is not a live run folder (no inbox)")
    name = f"{secrets.token_hex(8)}.json"
    tmp = inbox / f".{name}.tmp"
    with open(tmp, "w") as handle:
        document: dict[str, Any] = {"step": ack.step, "by": ack.by, "source": ack.source, "note": ack.note}
        if ack.choice:
            document["choice"] = ack.choice
        if ack.claimed_at is not None:
            document["claimed_at"] = ack.claimed_at
        json.dump(document, handle)
        handle.flush()
        os.fsync(handle.fileno())
    final = inbox / name
    os.replace(tmp, final)
    return final


def read_ack(path: Path) -> Ack | None:
    """The ack in an inbox file, None (and a warning) when the file is not one."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        note = str(data.get("note", ""))[:500]
        choice = str(data.get("choice", ""))[:64]
        claimed = data.get("claimed_at")
        return Ack(
            str(data["step"]),
            str(data["by"]),
            str(data.get("source", "ack")),
            note,
            choice=choice,
            claimed_at=float(claimed)
            if isinstance(claimed, int | float) and math.isfinite(claimed)
            else None,
            sent_at=path.stat().st_mtime_ns / 1e9,
        )
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("inbox.bad_ack", file=path.name)
        return None
