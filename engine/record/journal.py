"""The run journal: append-only JSON lines, fsync'd per record, hash-chained.

Every record is ``{"seq", "type", "at", "t", "data", "prev", "hash"}``. ``hash`` is the
SHA-256 of the canonical JSON of the record without ``hash``; ``prev`` is the previous
record's hash (``"0" * 64`` for the first). A record is on disk before the engine acts on it
(write-ahead), so ``bcdrill recover`` can always see what was about to happen: ``append``
returns only after an ``fsync`` that began after the record was written. Threads appending at
once (a fan-out over a hundred hosts) share one ``fsync`` where it covers them all (group
commit), instead of queueing one ``fsync`` each behind the journal's lock.

A crash mid-write can leave a torn last line (no newline). Readers ignore it; a writer that
reopens the journal first moves the torn bytes to a side file (``journal.jsonl.torn-<seq>``,
kept as evidence), truncates the journal after its last complete record and journals that
repair, so the next record starts on a line of its own and the hash chain stays valid.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.clock import Clock, iso
from engine.errors import JournalError, JournalTamperedError
from engine.record.records import RecordType

GENESIS = "0" * 64
JOURNAL_NAME = "journal.jsonl"

Listener = Callable[[dict[str, Any]], None]


def _digest(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Journal:
    """Appends records to ``<run_dir>/journal.jsonl``; safe to share between threads."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()  # the order of records: seq, hash chain, write
        self._sync_lock = threading.Lock()  # one fsync at a time (taken before _lock, never after)
        self._listeners: list[Listener] = []
        existing = read_journal(path) if path.exists() else JournalContents((), False)
        self._seq = len(existing.records)
        self._synced = self._seq  # records [0, _synced) are known to be on disk
        self._prev = existing.records[-1]["hash"] if existing.records else GENESIS
        repair = set_aside_torn_tail(path, self._seq) if existing.torn_tail else None
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise JournalError(f"cannot open journal {str(path)!r}: {exc.strerror}") from exc
        if repair is not None:
            self.append(RecordType.JOURNAL_TAIL_REPAIRED, **repair.as_data())

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(record)`` after every record is durably written."""
        self._listeners.append(listener)

    def append(self, type_: str, **data: Any) -> dict[str, Any]:
        """Write one record durably and return it. Raises :class:`JournalError` on I/O failure."""
        with self._lock:
            if self._fd < 0:
                raise JournalError(f"journal {str(self.path)!r} is closed")
            t = self.clock.now()
            record: dict[str, Any] = {
                "seq": self._seq,
                "type": type_,
                "at": iso(self.clock.utc(t)),
                "t": round(t, 6),
                "data": data,
                "prev": self._prev,
            }
            record["hash"] = _digest(record)
            line = json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
            try:
                os.write(self._fd, line.encode())
            except OSError as exc:
                raise JournalError(f"cannot write journal {str(self.path)!r}: {exc.strerror}") from exc
            self._seq += 1
            self._prev = record["hash"]
            written = self._seq
        self._sync(written)
        for listener in self._listeners:
            listener(record)
        return record

    def _sync(self, written: int) -> None:
        """Make the first ``written`` records durable: one ``fsync`` covers every record written
        before it began, so a thread whose record an earlier thread's ``fsync`` covered is done."""
        with self._sync_lock:
            if self._synced >= written:
                return
            with self._lock:
                upto, fd = self._seq, self._fd
            try:
                os.fsync(fd)
            except OSError as exc:
                raise JournalError(f"cannot write journal {str(self.path)!r}: {exc.strerror}") from exc
            self._synced = upto

    def close(self) -> None:
        """Close the file; further appends raise :class:`JournalError`."""
        with self._sync_lock, self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


@dataclass(frozen=True)
class JournalContents:
    """What was read from a journal file: the verified records and whether the tail was torn."""

    records: tuple[dict[str, Any], ...]
    torn_tail: bool
    warnings: tuple[str, ...] = field(default=())

    def of_type(self, *types: str) -> Iterator[dict[str, Any]]:
        """Records whose type is one of ``types``, in order."""
        return (r for r in self.records if r["type"] in types)


def read_journal(path: Path) -> JournalContents:
    """Read and verify a journal.

    A torn last line (a crash mid-write) is tolerated and reported in ``warnings``; any other
    broken or edited record raises :class:`JournalTamperedError` naming its line.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise JournalError(f"cannot read journal {str(path)!r}: {exc.strerror}") from exc
    lines = raw.split(b"\n")
    torn = bool(lines and lines[-1])  # complete records always end with a newline
    complete = lines[:-1]
    records: list[dict[str, Any]] = []
    prev = GENESIS
    for number, line in enumerate(complete, start=1):
        record = _parse_line(path, number, line)
        if record.get("seq") != len(records) or record.get("prev") != prev:
            raise JournalTamperedError(
                f"{path}:{number}: record seq {record.get('seq')!r} breaks the hash chain"
            )
        if _digest(record) != record.get("hash"):
            raise JournalTamperedError(
                f"{path}:{number}: record seq {record['seq']} was modified (hash mismatch)"
            )
        records.append(record)
        prev = record["hash"]
    warnings = (f"{path}:{len(complete) + 1}: torn last record ignored (crash mid-write)",)
    return JournalContents(tuple(records), torn, warnings if torn else ())


@dataclass(frozen=True)
class TornTail:
    """A torn last line that was moved out of a journal: where it went and what it was."""

    side_file: Path
    size: int
    sha256: str

    def as_data(self) -> dict[str, Any]:
        """The ``journal.tail_repaired`` record's data (the bytes stay in the side file)."""
        return {"side_file": self.side_file.name, "bytes": self.size, "sha256": self.sha256}


def set_aside_torn_tail(path: Path, seq: int) -> TornTail | None:
    """Move the bytes after the journal's last newline to a side file, then truncate.

    The side file is written and fsync'd before the journal is cut, so a crash in between
    loses nothing. Returns None when the journal ends cleanly.
    """
    try:
        raw = path.read_bytes()
        cut = raw.rfind(b"\n") + 1
        tail = raw[cut:]
        if not tail:
            return None
        side = _free_side_file(path, seq)
        fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, tail)
            os.fsync(fd)
        finally:
            os.close(fd)
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, cut)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise JournalError(f"cannot set aside the torn tail of {str(path)!r}: {exc.strerror}") from exc
    return TornTail(side, len(tail), hashlib.sha256(tail).hexdigest())


def _free_side_file(path: Path, seq: int) -> Path:
    side = path.with_name(f"{path.name}.torn-{seq}")
    n = 1
    while side.exists():
        n += 1
        side = path.with_name(f"{path.name}.torn-{seq}-{n}")
    return side


def _parse_line(path: Path, number: int, line: bytes) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise JournalTamperedError(f"{path}:{number}: not a JSON record ({exc})") from exc
    if not isinstance(record, dict):
        raise JournalTamperedError(f"{path}:{number}: not a JSON object")
    return record
