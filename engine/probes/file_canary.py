"""The file-share canary: one small file in the share, its line format, and how it is read.

A small writer (``bcdrill canary start … --share DIR``) keeps :data:`CANARY_FILE` in the
client's shared folder: ``<seq> <unix time>`` lines, one more every few seconds, the newest
:data:`KEEP_LINES` kept — the same ledger format the ``data`` probe measures the recovery
point from. A backup of the share takes the file with it; after a restore, the newest line
that survived says how much was lost. The file's name starts with a dot, so Samba's default
``hide dot files`` keeps it out of the staff's way.

The probe reads it with ``tail`` on the share's host over SSH (through ``sudo -n`` when the
host entry says ``sudo: true``). A share that is gone (deleted, unmounted, being restored)
reads as unreadable: an outage.
"""

from __future__ import annotations

import re

__all__ = ["CANARY_FILE", "KEEP_LINES", "SHARE_PATTERN", "canary_path", "check_share", "read_argv"]

#: The canary's file name inside the share.
CANARY_FILE = ".bcdrill-canary"
#: How many of the newest lines the writer keeps (the file stays a few kilobytes).
KEEP_LINES = 100
#: Share directories the canary accepts: absolute, plain characters (never shell text), no
#: ``.`` or ``..`` parts.
SHARE_PATTERN = r"^(/(?!\.\.?(/|$))[A-Za-z0-9._@+-]+)+/?$"


def check_share(path: str) -> str:
    """``path`` without a trailing slash when it is a plain absolute directory; ValueError otherwise."""
    if not re.fullmatch(SHARE_PATTERN, path):
        raise ValueError(
            f"share {path!r} is not a plain absolute directory (letters, digits, . _ @ + -; no '..')"
        )
    return path.rstrip("/")


def canary_path(share: str) -> str:
    """The canary file of ``share``."""
    return f"{check_share(share)}/{CANARY_FILE}"


def read_argv(share: str, window: int) -> list[str]:
    """``tail`` printing the newest ``window`` lines of the share's canary file."""
    return ["tail", "-n", str(int(window)), canary_path(share)]
