"""Per-client access tokens for ``bcdrill serve``: issued once, stored only as SHA-256 hashes.

``$BCDRILL_HOME/serve-tokens.json`` (mode 0600) holds one hash per client. A token is 256
random bits (:func:`secrets.token_urlsafe`), so a plain SHA-256 is enough to keep it secret
at rest. A lookup hashes the presented token and compares it with *every* stored hash with
:func:`hmac.compare_digest`, so neither the answer time nor the result depends on how much
of a token matched or on which client it belongs to.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import InputError
from engine.home import home
from engine.record.tokens import TokenStore

TOKENS_FORMAT = "bcdrill/serve-tokens/v1"


def tokens_path() -> Path:
    """``$BCDRILL_HOME/serve-tokens.json``."""
    return home() / "serve-tokens.json"


class ServeTokens:
    """One portal token per client, over the engine's :class:`~engine.record.tokens.TokenStore`."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or tokens_path()
        self._store = TokenStore(self.path, TOKENS_FORMAT, "token file", section="tokens")

    def clients(self) -> tuple[str, ...]:
        """Every client that holds an active token."""
        return tuple(h.name for h in self._store.holders() if h.active)

    def issue(self, client: str) -> str:
        """A new token for ``client`` (the client's previous token stops working). Shown once."""
        client = client.strip()
        if not client:
            raise InputError("client name is empty: give the client as the debriefs name it")
        return self._store.issue(client)

    def revoke(self, client: str) -> bool:
        """Remove ``client``'s token; True if there was one."""
        return self._store.revoke(client)

    def client_of(self, token: str | None) -> str | None:
        """The client whose token ``token`` is, or ``None`` (missing, malformed or wrong)."""
        holder = self._store.find(token)
        return holder.name if holder else None

    def client_of_hash(self, digest: str | None) -> str | None:
        """The client whose current token hashes to ``digest`` (a session's token), or ``None``
        once that token was revoked or re-issued."""
        holder = self._store.by_digest(digest) if digest else None
        return holder.name if holder else None
