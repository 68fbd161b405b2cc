"""Participants' personal drill-desk tokens: issued once, stored only as SHA-256 hashes.

Each participant of a client (from the environment file) gets one long-lived token (256 bits
from :func:`secrets.token_urlsafe`) that they keep on their phone as a link. The token works
for every drill of that client; only its hash is kept, in
``$BCDRILL_HOME/participants/<client-slug>.json`` (mode 0600). Revoking or rotating a person
is one call each. Lookups hash the presented token, find the entry by hash and confirm it
with :func:`hmac.compare_digest`, so nothing depends on how much of a token matched.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from engine.clock import iso
from engine.errors import InputError
from engine.home import home
from engine.model.types import Participant
from engine.record.statefiles import read_format_json, write_private_json

log = structlog.get_logger(__name__)

STORE_FORMAT = "bcdrill/participants/v1"
TOKEN_BYTES = 32  # 256 bits of randomness (the issue asks for at least 128)
DEFAULT_BASE_URL = "http://127.0.0.1:8765"


def client_slug(client: str) -> str:
    """A file-name-safe, stable name for a client: ``Demo Bakery Ltd`` → ``demo-bakery-ltd``."""
    slug = re.sub(r"[^a-z0-9]+", "-", client.lower()).strip("-")
    if not slug:
        raise InputError(f"client name {client!r} has no letters or digits to name its token file")
    return slug


def token_hash(token: str) -> str:
    """Hex SHA-256 of a token: the only form in which a token is ever stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def participants_dir() -> Path:
    """Where token hash files live (``$BCDRILL_HOME/participants``)."""
    return home() / "participants"


@dataclass(frozen=True)
class Holder:
    """The participant a valid token belongs to."""

    client: str
    name: str
    party: str
    role: str


@dataclass(frozen=True)
class Card:
    """A freshly issued token for one participant, with the link to hand them (shown once)."""

    participant: Participant
    token: str
    link: str


class ParticipantStore:
    """The token hashes of one client's participants, in one JSON file.

    Reads re-load the file when it changed on disk, so a revocation applies to a running
    drill desk at the next request.
    """

    def __init__(self, client: str, path: Path | None = None) -> None:
        self.client = client
        self.path = path or participants_dir() / f"{client_slug(client)}.json"
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._by_hash: dict[str, Holder] = {}

    # ---------------------------------------------------------------- reading

    def lookup(self, token: str) -> Holder | None:
        """The holder of ``token`` if it is issued and not revoked, else None."""
        digest = token_hash(token)
        with self._lock:
            self._reload_if_changed()
            holder = self._by_hash.get(digest)
            candidate = digest if holder is not None else "0" * 64
        # The dict lookup is by hash (no prefix of the token can be learnt from timing);
        # the explicit constant-time comparison keeps that property explicit.
        if holder is None or not hmac.compare_digest(candidate, digest):
            return None
        return holder

    def by_digest(self, digest: str) -> Holder | None:
        """The holder of the token hashed to ``digest`` while it is active (sessions use this)."""
        with self._lock:
            self._reload_if_changed()
            return self._by_hash.get(digest)

    def holders(self) -> list[tuple[Holder, bool]]:
        """Every known participant and whether they hold an active token, by name."""
        entries = self._read().get("participants", {})
        return [
            (Holder(self.client, name, e["party"], e.get("role", "")), bool(e.get("hash")))
            for name, e in sorted(entries.items())
        ]

    # ---------------------------------------------------------------- writing

    def issue(self, participants: Iterable[Participant], base_url: str, reissue: bool = False) -> list[Card]:
        """Give a token to every participant without one (to all with ``reissue``)."""
        data = self._read()
        entries: dict[str, Any] = data["participants"]
        cards: list[Card] = []
        for person in participants:
            if entries.get(person.name, {}).get("hash") and not reissue:
                continue
            cards.append(self._new_card(entries, person, base_url))
        self._write(data)
        return cards

    def rotate(self, person: Participant, base_url: str) -> Card:
        """Replace ``person``'s token with a new one (the old one stops working at once)."""
        data = self._read()
        card = self._new_card(data["participants"], person, base_url)
        self._write(data)
        log.info("participants.rotated", client=self.client, participant=person.name)
        return card

    def revoke(self, name: str) -> None:
        """Revoke ``name``'s token; they get a new one only through rotate or cards."""
        data = self._read()
        entry = data["participants"].get(name)
        if entry is None or not entry.get("hash"):
            known = ", ".join(sorted(n for n, e in data["participants"].items() if e.get("hash"))) or "none"
            raise InputError(f"{name!r} holds no active token for {self.client!r} (active: {known})")
        entry["hash"] = None
        entry["revoked_at"] = iso(datetime.now(UTC))
        self._write(data)
        log.info("participants.revoked", client=self.client, participant=name)

    # ---------------------------------------------------------------- internals

    def _new_card(self, entries: dict[str, Any], person: Participant, base_url: str) -> Card:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        entries[person.name] = {
            "party": person.party,
            "role": person.role,
            "hash": token_hash(token),
            "issued_at": iso(datetime.now(UTC)),
            "revoked_at": None,
        }
        return Card(person, token, f"{base_url.rstrip('/')}/p/{token}")

    def _read(self) -> dict[str, Any]:
        data = read_format_json(self.path, STORE_FORMAT, "participant token file", InputError)
        if data is None:
            return {"format": STORE_FORMAT, "client": self.client, "participants": {}}
        if data.get("client") != self.client:
            raise InputError(
                f"{str(self.path)!r} belongs to client {data.get('client')!r}, not {self.client!r}"
            )
        return data

    def _write(self, data: dict[str, Any]) -> None:
        write_private_json(self.path, data)

    def _reload_if_changed(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._by_hash = None, {}
            return
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        entries = self._read().get("participants", {})
        self._by_hash = {
            e["hash"]: Holder(self.client, name, e["party"], e.get("role", ""))
            for name, e in entries.items()
            if e.get("hash")
        }
        self._stamp = stamp


def find_participant(participants: Iterable[Participant], name: str) -> Participant:
    """The participant called ``name`` (the error lists who exists)."""
    people = list(participants)
    for person in people:
        if person.name == name:
            return person
    known = ", ".join(p.name for p in people) or "none"
    raise InputError(f"no participant {name!r} in the environment (participants: {known})")
