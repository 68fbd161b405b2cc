"""Durations as people write them in playbooks: ``90s``, ``5m``, ``1h30m``, ``250ms``."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
DURATION_PATTERN = r"^(\d+(\.\d+)?(ms|s|m|h|d))+$"


def parse_duration(text: str) -> float:
    """Return the number of seconds in ``text``; raise ``ValueError`` when it is malformed.

    Units must appear from largest to smallest, each at most once (``1h30m``, not ``30m1h``).
    """
    if not isinstance(text, str) or not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration like '90s', '5m' or '1h30m'")
    total = 0.0
    last_unit = float("inf")
    for number, unit in _PART.findall(text):
        size = _UNITS[unit]
        if size >= last_unit:
            raise ValueError(f"{text!r}: units must go from largest to smallest, once each")
        last_unit = size
        total += float(number) * size
    return total


def format_duration(seconds: float | None) -> str:
    """Render seconds as a short human duration: ``1h02m``, ``4m05s``, ``12.3s``, ``—``."""
    if seconds is None:
        return "—"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{sign}{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes:02d}m"
    return f"{sign}{minutes}m{secs:02d}s"
