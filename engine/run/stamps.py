"""Whose clock says when a step was done: the person's (client stamp) or the engine's receipt.

``bcdrill ack`` and the drill desk may send the moment the person acted (the CLI takes it
from the kernel's process start, before any import). The engine accepts that claim only
inside the **transit window**: not after the ack was sent (nor after the engine received it)
and at most :data:`MAX_TRANSIT_S` before the receipt. Otherwise the receipt time wins and
the journal says why. Pure logic; times are UTC epoch seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

__all__ = ["CLOCK_GRAIN_S", "MAX_TRANSIT_S", "StampDecision", "decide_stamp"]

# How long an ack may take from the person's Enter key to the engine; older claims are not
# believed. A CLI imports in 0.2–0.4 s on a quiet machine, but took 4.4 s on these 2 cores
# under a load of 10: the bound is generous, and still far below any step's target.
MAX_TRANSIT_S = 10.0
# Kernel process-start ticks and file times are coarse (10 ms / 4 ms): a claim may sit that
# much past the send moment and still be honest.
CLOCK_GRAIN_S = 0.02


@dataclass(frozen=True)
class StampDecision:
    """The moment a step counts at, whose clock gave it, and why a claim was not used."""

    at: float
    source: Literal["client", "receipt"]
    reason: str = ""


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def decide_stamp(
    claimed: float | None,
    sent: float | None,
    received: float,
    max_transit_s: float = MAX_TRANSIT_S,
) -> StampDecision:
    """Use ``claimed`` when it lies in ``[received - max_transit_s, min(sent, received)]``.

    ``sent`` is when the ack left the client as the engine's side can tell (the inbox file's
    time), None when only the receipt is known.
    """
    if claimed is None:
        return StampDecision(received, "receipt")
    latest = received if sent is None else min(sent, received)
    if claimed > latest + CLOCK_GRAIN_S:
        return StampDecision(
            received,
            "receipt",
            f"client stamp {_iso(claimed)} is {claimed - latest:.3f}s after the ack was sent "
            "(the client's clock is ahead?)",
        )
    if received - claimed > max_transit_s:
        return StampDecision(
            received,
            "receipt",
            f"client stamp {_iso(claimed)} is {received - claimed:.3f}s before receipt, "
            f"beyond the {max_transit_s:g}s transit window",
        )
    return StampDecision(min(claimed, received), "client")
