"""Who is asking: token books, per-run browser sessions with CSRF tokens, and rate limits.

A participant's long-lived token is exchanged once for a browser session: a random session
id (known only to this run's desk, kept in memory) in an HttpOnly, SameSite=Strict cookie,
plus a per-session CSRF token that every form must echo.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from drills.desk.participants import Holder, ParticipantStore
from engine.record.tokens import token_hash
from engine.web import trim_sessions

SESSION_BYTES = 32


class TokenBook:
    """Looks a presented token up in one or more participant stores (client, then run)."""

    def __init__(self, stores: Sequence[ParticipantStore]) -> None:
        self._stores = tuple(stores)

    def lookup(self, token: str) -> Holder | None:
        """The holder of ``token`` in any store, else None (every store is always asked)."""
        found = [store.lookup(token) for store in self._stores]
        return next((h for h in found if h is not None), None)

    def by_digest(self, digest: str) -> Holder | None:
        """The holder of the token whose SHA-256 is ``digest``, while it is not revoked."""
        found = [store.by_digest(digest) for store in self._stores]
        return next((h for h in found if h is not None), None)


@dataclass
class Session:
    """One browser session of one participant during one run."""

    holder: Holder
    token_digest: str
    csrf: str
    flash: list[str] = field(default_factory=list)


class Sessions:
    """Server-side map from session id (stored hashed) to :class:`Session`."""

    def __init__(self) -> None:
        self._by_hash: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, holder: Holder, token_digest: str) -> tuple[str, Session]:
        """A new session for ``holder``: returns the cookie value and the session."""
        session_id = secrets.token_urlsafe(SESSION_BYTES)
        session = Session(holder, token_digest, secrets.token_urlsafe(SESSION_BYTES))
        with self._lock:
            self._by_hash[token_hash(session_id)] = session
            trim_sessions(self._by_hash, lambda s: s.token_digest, token_digest)
        return session_id, session

    def get(self, session_id: str) -> Session | None:
        """The session behind a cookie value, or None."""
        with self._lock:
            return self._by_hash.get(token_hash(session_id))


def csrf_ok(session: Session, presented: str) -> bool:
    """Constant-time check of a form's CSRF field against the session's token."""
    return hmac.compare_digest(session.csrf.encode(), presented.encode("utf-8", "surrogatepass"))


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets per key: ``burst`` requests at once, refilled at ``per_second``."""

    def __init__(
        self,
        burst: float,
        per_second: float,
        now: Callable[[], float] = time.monotonic,
        max_keys: int = 50_000,
    ) -> None:
        self._burst = burst
        self._rate = per_second
        self._now = now
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Take one request from ``key``'s bucket; False when it is empty."""
        now = self._now()
        with self._lock:
            bucket = self._buckets.pop(key, None) or _Bucket(self._burst, now)
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.stamp) * self._rate)
            bucket.stamp = now
            allowed = bucket.tokens >= 1.0
            if allowed:
                bucket.tokens -= 1.0
            self._buckets[key] = bucket
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        return allowed
