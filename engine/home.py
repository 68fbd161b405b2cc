"""Where bcdrill keeps its state: runs, lab files, participant token hashes.

``$BCDRILL_HOME`` (default ``~/.local/share/bcdrill``); runs under ``$BCDRILL_RUNS`` or
``<home>/runs``.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The state folder (created on demand by whoever writes into it)."""
    configured = os.environ.get("BCDRILL_HOME")
    if configured:
        return Path(configured)
    return Path.home() / ".local" / "share" / "bcdrill"


def runs_dir() -> Path:
    """The run store: one folder per run."""
    configured = os.environ.get("BCDRILL_RUNS")
    return Path(configured) if configured else home() / "runs"


def lab_dir(name: str) -> Path:
    """State folder of one local lab."""
    return home() / "lab" / name
