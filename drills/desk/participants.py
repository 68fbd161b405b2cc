"""Participants' personal drill-desk tokens: issued once, stored only as SHA-256 hashes.

Each participant of a client (from the environment file) gets one long-lived token (256 bits
from :func:`secrets.token_urlsafe`) that they keep on their phone as a link. The token works
for every drill of that client; only its hash is kept, in
``$BCDRILL_HOME/participants/<client-slug>.json`` (mode 0600). Revoking or rotating a person
is one call each. Lookups hash the presented token, find the entry by hash and confirm it
with :func:`hmac.compare_digest`, so nothing depends on how much of a token matched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InputError
from engine.home import home
from engine.logsetup import get_logger
from engine.model.types import Participant
from engine.record.tokens import TokenHolder, TokenStore

log = get_logger(__name__)

STORE_FORMAT = "bcdrill/participants/v1"
TOKEN_BYTES = 32  # 256 bits of randomness (the issue asks for at least 128)
DEFAULT_BASE_URL = "http://127.0.0.1:8765"


def client_slug(client: str) -> str:
    """A file-name-safe, stable name for a client: ``Demo Bakery Ltd`` → ``demo-bakery-ltd``."""
    slug = re.sub(r"[^a-z0-9]+", "-", client.lower()).strip("-")
    if not slug:
        raise InputError(f"client name {client!r} has no letters or digits to name its token file")
    return slug


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
    """The token hashes of one client's participants (``$BCDRILL_HOME/participants/<slug>.json``).

    A thin face over the engine's :class:`~engine.record.tokens.TokenStore`: reads re-load the
    file when it changed on disk, so a revocation applies to a running drill desk at once.
    """

    def __init__(self, client: str, path: Path | None = None) -> None:
        self.client = client
        self.path = path or participants_dir() / f"{client_slug(client)}.json"
        self._store = TokenStore(self.path, STORE_FORMAT, "participant token file", client, "participants")

    def lookup(self, token: str) -> Holder | None:
        """The holder of ``token`` if it is issued and not revoked, else None."""
        return self._holder(self._store.find(token))

    def by_digest(self, digest: str) -> Holder | None:
        """The holder of the token hashed to ``digest`` while it is active (sessions use this)."""
        return self._holder(self._store.by_digest(digest))

    def holders(self) -> list[tuple[Holder, bool]]:
        """Every known participant and whether they hold an active token, by name."""
        return [(self._as_holder(h), h.active) for h in self._store.holders()]

    def issue(self, participants: Iterable[Participant], base_url: str, reissue: bool = False) -> list[Card]:
        """Give a token to every participant without one (to all with ``reissue``)."""
        active = {h.name for h in self._store.holders() if h.active}
        return [self._card(p, base_url) for p in participants if reissue or p.name not in active]

    def rotate(self, person: Participant, base_url: str) -> Card:
        """Replace ``person``'s token with a new one (the old one stops working at once)."""
        card = self._card(person, base_url)
        log.info("participants.rotated", client=self.client, participant=person.name)
        return card

    def revoke(self, name: str) -> None:
        """Revoke ``name``'s token; they get a new one only through rotate or cards."""
        if not self._store.revoke(name):
            active = ", ".join(h.name for h in self._store.holders() if h.active) or "none"
            raise InputError(f"{name!r} holds no active token for {self.client!r} (active: {active})")
        log.info("participants.revoked", client=self.client, participant=name)

    def _card(self, person: Participant, base_url: str) -> Card:
        token = self._store.issue(person.name, party=person.party, role=person.role)
        return Card(person, token, f"{base_url.rstrip('/')}/p/{token}")

    def _holder(self, holder: TokenHolder | None) -> Holder | None:
        return self._as_holder(holder) if holder is not None else None

    def _as_holder(self, holder: TokenHolder) -> Holder:
        return Holder(self.client, holder.name, holder.attrs.get("party", ""), holder.attrs.get("role", ""))


def find_participant(participants: Iterable[Participant], name: str) -> Participant:
    """The participant called ``name`` (the error lists who exists)."""
    people = list(participants)
    for person in people:
        if person.name == name:
            return person
    known = ", ".join(p.name for p in people) or "none"
    raise InputError(f"no participant {name!r} in the environment (participants: {known})")
