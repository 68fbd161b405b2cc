"""How wide a label is drawn, without a font at hand: enough to keep SVG text inside its drawing.

The estimate is deliberately generous (Latin glyphs of the sans-serif fonts we name average
well under 0.6 em; CJK glyphs are one em), so a label laid out with it never clips.
"""

from __future__ import annotations

import unicodedata

__all__ = ["LATIN_EM", "fit_text", "text_width"]

LATIN_EM = 0.62  # average advance of a Latin glyph, in em, rounded up
WIDE_EM = 1.0  # CJK ideographs and full-width punctuation


def text_width(text: str, size: float) -> float:
    """The drawn width of ``text`` at font size ``size`` (an upper estimate)."""
    ems = sum(WIDE_EM if unicodedata.east_asian_width(c) in ("W", "F") else LATIN_EM for c in text)
    return ems * size


def fit_text(text: str, size: float, max_width: float) -> str:
    """``text`` as drawn in ``max_width``: whole when it fits, else cut with an ellipsis."""
    if text_width(text, size) <= max_width:
        return text
    room = max_width - text_width("…", size)
    kept = ""
    for char in text:
        if text_width(kept + char, size) > room:
            break
        kept += char
    return kept.rstrip() + "…"
