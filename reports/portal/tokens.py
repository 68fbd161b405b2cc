"""Per-client access tokens for ``bcdrill serve``: issued once, stored only as SHA-256 hashes.

``$BCDRILL_HOME/serve-tokens.json`` (mode 0600) holds one hash per client. A token is 256
random bits (:func:`secrets.token_urlsafe`), so a plain SHA-256 is enough to keep it secret
at rest. A lookup hashes the presented token and compares it with *every* stored hash with
:func:`hmac.compare_digest`, so neither the answer time nor the result depends on how much
of a token matched or on which client it belongs to.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import InputError, JournalError
from engine.home import home
from engine.record.statefiles import read_format_json, write_private_json

TOKENS_FORMAT = "bcdrill/serve-tokens/v1"
TOKEN_BYTES = 32
MAX_TOKEN_CHARS = 256  # anything longer is not one of ours; refuse before hashing


def tokens_path() -> Path:
    """``$BCDRILL_HOME/serve-tokens.json``."""
    return home() / "serve-tokens.json"


def token_hash(token: str) -> str:
    """Hex SHA-256 of a token: the only form in which a token is stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class TokenEntry:
    """One client's token hash."""

    client: str
    hash: str
    issued_at: str


class ServeTokens:
    """The token hashes of every client, in one JSON file re-read on each lookup."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or tokens_path()

    def entries(self) -> tuple[TokenEntry, ...]:
        """Every stored entry (none when the file does not exist)."""
        data = read_format_json(self.path, TOKENS_FORMAT, "token file", JournalError)
        if data is None:
            return ()
        return tuple(
            TokenEntry(str(e["client"]), str(e["hash"]), str(e["issued_at"])) for e in data.get("tokens", [])
        )

    def _write(self, entries: list[TokenEntry]) -> None:
        document = {
            "format": TOKENS_FORMAT,
            "tokens": [e.__dict__ for e in sorted(entries, key=lambda e: e.client)],
        }
        write_private_json(self.path, document)

    def issue(self, client: str) -> str:
        """A new token for ``client`` (the client's previous token stops working). Shown once."""
        client = client.strip()
        if not client:
            raise InputError("client name is empty: give the client as the debriefs name it")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        others = [e for e in self.entries() if e.client != client]
        issued = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._write([*others, TokenEntry(client, token_hash(token), issued)])
        return token

    def revoke(self, client: str) -> bool:
        """Remove ``client``'s token; True if there was one."""
        entries = list(self.entries())
        kept = [e for e in entries if e.client != client]
        if len(kept) != len(entries):
            self._write(kept)
        return len(kept) != len(entries)

    def client_of(self, token: str | None) -> str | None:
        """The client whose token ``token`` is, or ``None`` (missing, malformed or wrong)."""
        presented = token_hash(token if token and len(token) <= MAX_TOKEN_CHARS else "")
        found = self.client_of_hash(presented)
        return found if token else None

    def client_of_hash(self, digest: str | None) -> str | None:
        """The client whose current token hashes to ``digest`` (a session's token), or ``None``
        once that token was revoked or re-issued."""
        presented = digest or token_hash("")
        found: str | None = None
        for entry in self.entries():  # no early exit: every hash is compared
            if hmac.compare_digest(presented.encode(), entry.hash.encode()) and digest:
                found = entry.client
        return found
