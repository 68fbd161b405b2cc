"""Browser sessions of ``bcdrill serve``: the cookie holds a random session id, never the token.

A client's access token is long-lived (until it is re-issued or revoked). Opening the access
link exchanges it once for a session: 256 random bits that only this server process knows
(kept in memory, stored hashed), tied to the *hash* of the token it came from. Every request
looks the token hash up again, so revoking or re-issuing a client's token ends its open
sessions at once; a session also ends after :data:`SESSION_TTL_S` and when the server stops.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from engine.web import trim_sessions

__all__ = ["SESSION_TTL_S", "ServeSessions"]

SESSION_BYTES = 32
SESSION_TTL_S = 12 * 3600.0
MAX_SESSION_CHARS = 128  # a cookie longer than this is not one of ours


@dataclass(frozen=True)
class _Session:
    token_hash: str
    expires: float


class ServeSessions:
    """Server-side map from session id (stored as its SHA-256) to the token hash it stands for."""

    def __init__(self, ttl_s: float = SESSION_TTL_S, now: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._now = now
        self._by_hash: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, token_hash: str) -> str:
        """A new session for the token whose hash is ``token_hash``: returns the cookie value."""
        session_id = secrets.token_urlsafe(SESSION_BYTES)
        with self._lock:
            self._by_hash[_digest(session_id)] = _Session(token_hash, self._now() + self._ttl_s)
            trim_sessions(self._by_hash, lambda s: s.token_hash, token_hash)
        return session_id

    def token_hash(self, session_id: str | None) -> str | None:
        """The token hash behind a live session id, or None (unknown, malformed or expired)."""
        if not session_id or len(session_id) > MAX_SESSION_CHARS:
            return None
        key = _digest(session_id)
        with self._lock:
            session = self._by_hash.get(key)
            if session is not None and session.expires <= self._now():
                del self._by_hash[key]
                session = None
        return session.token_hash if session else None


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
