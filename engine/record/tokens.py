"""Bearer tokens kept only as SHA-256 hashes: the one store behind desk links and portal tokens.

A token is 256 random bits (:func:`secrets.token_urlsafe`), so a plain SHA-256 keeps it secret
at rest. One JSON file (mode 0600, written atomically) per store holds, by holder name, the
hash, when it was issued or revoked and a few attributes (a participant's party and role).
A lookup hashes the presented token and compares it with *every* active hash through
:func:`hmac.compare_digest`: neither the time nor the answer depends on how much of a token
matched or whose it is. The file is re-read when it changed on disk, so a revocation applies
to a running service at its next request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.clock import iso
from engine.errors import InputError
from engine.record.statefiles import read_format_json, write_private_json

__all__ = ["MAX_TOKEN_CHARS", "TOKEN_BYTES", "TokenHolder", "TokenStore", "token_hash"]

TOKEN_BYTES = 32  # 256 bits of randomness
MAX_TOKEN_CHARS = 256  # anything longer is not one of ours: refused before hashing
_NO_MATCH = "0" * 64


def token_hash(token: str) -> str:
    """Hex SHA-256 of a token: the only form in which a token is ever stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class TokenHolder:
    """Who a token was issued to, with its attributes; ``hash`` is None once revoked."""

    name: str
    hash: str | None
    issued_at: str
    revoked_at: str | None = None
    attrs: Mapping[str, str] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.hash is not None


class TokenStore:
    """The token hashes of one owner (a client), in one private JSON file.

    ``section`` names the file's table of holders (``participants`` for desk links,
    ``tokens`` for portal access), so existing files stay readable.
    """

    def __init__(
        self, path: Path, file_format: str, what: str, owner: str | None = None, section: str = "holders"
    ) -> None:
        self.path, self.file_format, self.what, self.owner, self.section = (
            path,
            file_format,
            what,
            owner,
            section,
        )
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._active: dict[str, TokenHolder] = {}

    # ---------------------------------------------------------------- reading

    def holders(self) -> tuple[TokenHolder, ...]:
        """Every holder ever issued a token (active or revoked), by name."""
        return tuple(_holder(name, e) for name, e in sorted(self._entries(self._read()).items()))

    def find(self, token: str | None) -> TokenHolder | None:
        """The active holder of ``token``, or None (missing, malformed, revoked or wrong)."""
        digest = token_hash(token if token and len(token) <= MAX_TOKEN_CHARS else "")
        with self._lock:
            self._reload_if_changed()
            candidates = list(self._active.values())
        found: TokenHolder | None = None
        for holder in candidates:  # no early exit: every hash is compared
            if hmac.compare_digest(digest, holder.hash or _NO_MATCH) and token:
                found = holder
        return found

    def by_digest(self, digest: str) -> TokenHolder | None:
        """The active holder of the token hashed to ``digest`` (sessions keep only the digest)."""
        with self._lock:
            self._reload_if_changed()
            return next((h for h in self._active.values() if h.hash == digest), None)

    # ---------------------------------------------------------------- writing

    def issue(self, name: str, **attrs: str) -> str:
        """A new token for ``name`` (their previous one stops working). Shown once, never stored."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        data = self._read()
        entry = {**attrs, "hash": token_hash(token), "issued_at": _now(), "revoked_at": None}
        self._entries(data)[name] = entry
        self._write(data)
        return token

    def revoke(self, name: str) -> bool:
        """Revoke ``name``'s token; True when they held an active one."""
        data = self._read()
        entry = self._entries(data).get(name)
        if entry is None or not entry.get("hash"):
            return False
        entry["hash"], entry["revoked_at"] = None, _now()
        self._write(data)
        return True

    # ---------------------------------------------------------------- internals

    def _read(self) -> dict[str, Any]:
        data = read_format_json(self.path, self.file_format, self.what, InputError)
        if data is None:
            data = {"format": self.file_format, self.section: {}}
            if self.owner is not None:
                data["client"] = self.owner
        if self.owner is not None and data.get("client") != self.owner:
            raise InputError(
                f"{str(self.path)!r} belongs to client {data.get('client')!r}, not {self.owner!r}"
            )
        if isinstance(data.get(self.section), list):  # first portal files: a list of {client, hash}
            data[self.section] = {e.pop("client"): e for e in data[self.section]}
        return data

    def _entries(self, data: dict[str, Any]) -> dict[str, Any]:
        entries: dict[str, Any] = data[self.section]
        return entries

    def _write(self, data: dict[str, Any]) -> None:
        write_private_json(self.path, data)

    def _reload_if_changed(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._active = None, {}
            return
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._active = {h.name: h for h in self.holders() if h.active}
            self._stamp = stamp


def _holder(name: str, entry: Mapping[str, Any]) -> TokenHolder:
    attrs = {k: str(v) for k, v in entry.items() if k not in ("hash", "issued_at", "revoked_at")}
    return TokenHolder(
        name, entry.get("hash"), str(entry.get("issued_at", "")), entry.get("revoked_at"), attrs
    )


def _now() -> str:
    return iso(datetime.now(UTC))
