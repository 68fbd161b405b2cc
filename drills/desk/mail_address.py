"""Participants' personal drill mail addresses: ``drill+<tag>@<domain>``, one secret tag each.

A run's mailbox draws a random key (32 bytes from :mod:`secrets`) and keeps it only in
``<run>/mailbox.json`` (mode 0600), never in the journal, logs or reports. A participant's
tag is the HMAC-SHA256 of their name under that key, in lowercase base32, cut to
:data:`TAG_LENGTH` characters (100 bits). An e-mail counts as that participant's when one
of its *envelope* recipients is ``<anything>+<tag>@<any domain>``: the tag, unlike the
``From:`` header, cannot be forged by someone who has not been shown it on their desk page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from pathlib import Path
from typing import Any

from engine.model.types import Participant

__all__ = ["MAILBOX_FILE", "drill_mail_address", "participant_tag"]

MAILBOX_FILE = "mailbox.json"
KEY_BYTES = 32
TAG_LENGTH = 20  # base32 characters: 100 bits
DEFAULT_DOMAIN = "bcdrill.invalid"
LOCAL_NAME = "drill"
_PLUS = re.compile(r"\+[^@+,;\s]*(?=@)")  # a local part's "+suffix", up to the "@"


def new_key() -> bytes:
    """A fresh per-run key for the participants' tags."""
    return secrets.token_bytes(KEY_BYTES)


def participant_tag(key: bytes, name: str) -> str:
    """``name``'s secret tag under the run's ``key``."""
    digest = hmac.new(key, name.encode("utf-8"), hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:TAG_LENGTH]


def address_of(tag: str, domain: str) -> str:
    """The personal drill address that carries ``tag``."""
    return f"{LOCAL_NAME}+{tag}@{domain}"


def mailbox_settings(run_dir: Path) -> dict[str, Any] | None:
    """The live mailbox's ``<run>/mailbox.json`` (address, code, key, domain), or None."""
    try:
        data = json.loads((run_dir / MAILBOX_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def drill_mail_address(run_dir: Path, name: str) -> str | None:
    """The personal drill address of the participant called ``name`` in the run in
    ``run_dir`` (for their desk page, simulated people and tests); None without a mailbox."""
    data = mailbox_settings(run_dir)
    if data is None:
        return None
    try:
        key = bytes.fromhex(str(data["key"]))
    except (KeyError, ValueError):
        return None
    domain = str(data.get("domain") or DEFAULT_DOMAIN)
    return address_of(participant_tag(key, name), domain) if key else None


def tag_of(recipient: str) -> str:
    """The tag a recipient address carries (``local+tag@domain``), lowercased; '' if none."""
    local, at, _domain = recipient.strip().rpartition("@")
    if not at or "+" not in local:
        return ""
    return local.rpartition("+")[2].lower()


def tagged_participants(
    recipients: list[str], tags: dict[str, str], people: tuple[Participant, ...]
) -> list[Participant]:
    """The distinct participants whose tag (``tags``: name → tag) one of ``recipients``
    carries; every candidate is compared with every tag in constant time."""
    found: list[Participant] = []
    for candidate in (tag_of(r).encode("utf-8") for r in recipients):
        for person in people:
            if hmac.compare_digest(candidate, tags[person.name].encode("ascii")) and person not in found:
                found.append(person)
    return found


def without_tags(text: str, tags: dict[str, str]) -> str:
    """``text`` (a note's recipients and subject) with every ``+suffix`` of an address and
    every participant's tag taken out."""
    text = _PLUS.sub("", text)
    for tag in tags.values():
        text = re.sub(re.escape(tag), "…", text, flags=re.IGNORECASE)
    return text
