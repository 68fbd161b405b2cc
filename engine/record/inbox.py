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

__all__ = ["Ack", "believable_claim", "read_ack", "write_ack"]

log = get_logger(__name__)

MAX_CLAIM_SKEW_S = 86_400.0  # a claim further than a day from the file's time is no claim at all


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
    """The ack in an inbox file, None (and a warning) when the file is not one.

    Never raises: whatever a file holds (not JSON, nested too deep to parse, not an object, a
    number too large for a float), the inbox's reader goes on to the next. A ``claimed_at``
    that is not finite or lies more than :data:`MAX_CLAIM_SKEW_S` from the file's time is
    dropped (the receipt counts, as for an ack without a claim) and logged.
    """
    try:
        data = json.loads(path.read_text())
        sent_at = path.stat().st_mtime_ns / 1e9
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        return _ack(data, sent_at, path.name)
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        log.warning("inbox.bad_ack", file=path.name)
        return None


def _ack(data: dict[str, Any], sent_at: float, name: str) -> Ack:
    return Ack(
        str(data["step"]),
        str(data["by"]),
        str(data.get("source", "ack")),
        str(data.get("note", ""))[:500],
        choice=str(data.get("choice", ""))[:64],
        claimed_at=_claim(data.get("claimed_at"), sent_at, name),
        sent_at=sent_at,
    )


def _claim(value: Any, sent_at: float, name: str) -> float | None:
    if value is None:
        return None
    claimed = believable_claim(value, sent_at)
    if claimed is None:
        log.warning("inbox.claim_ignored", file=name)
    return claimed


def believable_claim(value: Any, reference_s: float) -> float | None:
    """``value`` as claimed epoch seconds when it is believable at all: a finite number within
    :data:`MAX_CLAIM_SKEW_S` of ``reference_s`` (when the ack was sent or arrived); else None
    (an int past a float's range, such as ``10**400``, included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        claimed = float(value)
    except OverflowError:
        return None
    return claimed if math.isfinite(claimed) and abs(claimed - reference_s) <= MAX_CLAIM_SKEW_S else None
