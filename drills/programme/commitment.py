"""Commitments to a secret drill moment, and run names that reveal nothing about it.

Before the drill, the MSP publishes ``digest`` (e.g. to the client's manager) and keeps the
moment and ``nonce`` with the controllers. Afterwards ``bcdrill reveal`` shows both, and
anyone can check with :func:`verify` that the moment was fixed in advance. The 256-bit
random nonce stops anyone from finding the moment by hashing every candidate minute.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from engine.errors import InputError

COMMITMENT_VERSION = "bcdrill-drill-commitment/v1"
NONCE_BYTES = 32
_HEX = frozenset("0123456789abcdef")

# Short neutral words: a run name must not hint at the day, hour, client or scenario.
_WORDS: tuple[str, ...] = (
    "amber", "basil", "cedar", "delta", "ember", "fjord", "garnet", "harbor",
    "indigo", "juniper", "kestrel", "lagoon", "maple", "nimbus", "onyx", "pebble",
    "quartz", "raven", "sable", "tundra", "umber", "violet", "willow", "xenon",
    "yarrow", "zephyr", "alder", "birch", "cobalt", "dune", "egret", "flint",
)  # fmt: skip


@dataclass(frozen=True)
class Commitment:
    """A SHA-256 ``digest`` (hex) binding a moment, and the ``nonce`` (hex) that opens it."""

    digest: str
    nonce: str

    def __repr__(self) -> str:
        # The nonce opens the commitment: keep it out of logs and tracebacks.
        return f"Commitment(digest={self.digest!r}, nonce=<hidden>)"


def canonical_moment(moment: datetime) -> str:
    """The moment as ISO-8601 UTC with microseconds and ``Z``; naive datetimes are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InputError(f"drill moment {moment!r} needs a time zone (give it in UTC)")
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _digest(moment: datetime, nonce: str) -> str:
    text = f"{COMMITMENT_VERSION}\n{canonical_moment(moment)}\n{nonce}"
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def commit(moment_utc: datetime, nonce: str | None = None) -> Commitment:
    """Commit to ``moment_utc``: SHA-256 over a canonical string of the time and the nonce.

    A fresh 256-bit nonce is drawn from :mod:`secrets` unless one (64 hex digits) is given.
    """
    if nonce is None:
        nonce = secrets.token_hex(NONCE_BYTES)
    elif not _is_nonce(nonce):
        raise InputError(f"nonce must be {NONCE_BYTES * 2} lower-case hex digits")
    return Commitment(_digest(moment_utc, nonce), nonce)


def verify(digest: str, moment: datetime, nonce: str) -> bool:
    """Whether ``digest`` commits to ``moment`` with ``nonce`` (constant-time comparison)."""
    given = digest.strip().lower() if isinstance(digest, str) else ""
    if not _is_nonce(nonce) or len(given) != 64 or not set(given) <= _HEX:
        return False
    expected = _digest(moment, nonce)
    return hmac.compare_digest(expected.encode("ascii"), given.encode("ascii"))


def _is_nonce(nonce: object) -> bool:
    return isinstance(nonce, str) and len(nonce) == NONCE_BYTES * 2 and set(nonce) <= _HEX


def neutral_run_name(words: int = 2) -> str:
    """A run name like ``drill-cedar-onyx-3f9a1c``: random, never derived from the moment."""
    chosen = [secrets.choice(_WORDS) for _ in range(words)]
    return "-".join(["drill", *chosen, secrets.token_hex(3)])
