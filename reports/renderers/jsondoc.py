"""JSON debrief: the canonical ``bcdrill/debrief/v1`` document (for the chosen audience)."""

from __future__ import annotations

from reports.debrief.model import Debrief
from reports.renderers.common import RenderOptions


def render(debrief: Debrief, options: RenderOptions) -> str:
    """Canonical JSON (sorted keys, floats rounded to three places); texts stay English."""
    del options  # the document is language-neutral: messages carry their catalogue keys
    return debrief.dumps()
