"""Small private state files (token hashes, schedules, improvement plans): read and write safely.

Writes go to a unique temporary file (mode 0600, fsync'd) renamed over the target, so a
crash never leaves a half-written file and nobody else can read it. Reads check the file's
``format`` tag and name the file in every error.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from engine.errors import DrillError


def write_private_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_private_json(path: Path, document: Any) -> None:
    """Replace ``path`` with ``document`` as indented JSON, atomically and privately."""
    write_private_text(path, json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n")


def read_format_json(
    path: Path, expected_format: str, what: str, error: type[DrillError]
) -> dict[str, Any] | None:
    """The JSON document in ``path`` (None when it does not exist); ``error`` when it is
    unreadable or not a ``expected_format`` file. ``what`` names the file for people."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise error(f"{what} {str(path)!r} is unreadable: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != expected_format:
        raise error(f"{str(path)!r} is not a {expected_format} file")
    return data
