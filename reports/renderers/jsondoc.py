"""JSON debrief: the canonical ``bcdrill/debrief/v1`` document."""

from __future__ import annotations

from reports.model import Debrief


def render(debrief: Debrief) -> str:
    """Canonical JSON (sorted keys, floats rounded to three places)."""
    return debrief.dumps()
