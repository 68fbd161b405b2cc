"""Headless Debian Chromium for page tests: where it is and the flags every test starts it with.

The background-networking flags keep it off the network (this machine has none to offer).
"""

from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
