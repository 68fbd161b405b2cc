"""Signed evidence: the MSP's Ed25519 key signs each run's journal head into ``journal.sig``.

The journal is hash-chained, but a chain can be recomputed by whoever holds the file — and
the MSP, who runs the tool, is one of the two parties being scored. So at the end of every
run the engine signs the head (last record hash, record count, run id, class, outcome,
score, and a digest of every record hash) with the MSP's key; ``bcdrill verify`` checks the
chain and the signature and names the first record that differs from what was signed.

The private key is only ever referenced: ``$BCDRILL_SIGNING_KEY`` as ``file:PATH`` or
``env:VAR`` (a PEM), or by default the active key under ``$BCDRILL_HOME/keys`` (mode 0600)
made by ``bcdrill keys init``. Old public keys stay in that folder, so a run signed before a
key rotation still verifies: the fingerprint in the signature picks the key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from engine.errors import DrillError, JournalError, SecretError
from engine.home import home
from engine.record.journal import JOURNAL_NAME, JournalContents, read_journal
from engine.record.records import RecordType, RunClass, run_class_of

SIG_NAME = "journal.sig"
DEBRIEF_NAME = "debrief.json"  # the debrief the run's debriefer wrote, when it wrote one
SIG_FORMAT = "bcdrill/journal-sig/v1"
KEY_ENV = "BCDRILL_SIGNING_KEY"
ACTIVE = "active"

__all__ = [
    "DEBRIEF_NAME",
    "KEY_ENV",
    "SIG_NAME",
    "EvidenceError",
    "SigningKey",
    "debrief_digest",
    "fingerprint",
    "init_key",
    "keys_dir",
    "load_public_key",
    "load_signing_key",
    "run_signing_key",
    "sign_run",
    "signed_debrief_digest",
    "verify_run",
]


class EvidenceError(DrillError):
    """A journal or its signature does not check out (exit code 4)."""

    exit_code = 4


def keys_dir() -> Path:
    """``$BCDRILL_HOME/keys``: the MSP's signing keys (private 0600) and every public key."""
    return home() / "keys"


def fingerprint(public: Ed25519PublicKey) -> str:
    """``ed25519:`` and the first 32 hex digits of the SHA-256 of the raw public key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:32]


def _file_name(fp: str) -> str:
    return fp.replace(":", "-")


@dataclass(frozen=True)
class SigningKey:
    """The MSP's private key, loaded from its reference."""

    private: Ed25519PrivateKey
    reference: str

    @property
    def fingerprint(self) -> str:
        """The public key's fingerprint."""
        return fingerprint(self.private.public_key())


def init_key(directory: Path | None = None) -> tuple[str, Path]:
    """Make a new key pair, make it the active key (older public keys stay); return its
    fingerprint and the public key file."""
    folder = directory or keys_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    private = Ed25519PrivateKey.generate()
    fp = fingerprint(private.public_key())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_path = folder / f"{_file_name(fp)}.key"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pub_path = folder / f"{_file_name(fp)}.pub"
    pub_path.write_bytes(public)
    tmp = folder / f".{ACTIVE}.tmp"
    tmp.write_text(fp + "\n")
    os.replace(tmp, folder / ACTIVE)
    return fp, pub_path


def _private_from_pem(data: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SecretError(f"signing key {where}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SecretError(f"signing key {where}: not an Ed25519 key")
    return key


def load_signing_key(reference: str | None = None) -> SigningKey | None:
    """The MSP's signing key from ``reference`` (default ``$BCDRILL_SIGNING_KEY``, else the
    active key in :func:`keys_dir`); ``None`` when no key is configured at all."""
    ref = reference or os.environ.get(KEY_ENV) or ""
    if ref.startswith("file:"):
        path = Path(ref[5:]).expanduser()
        try:
            return SigningKey(_private_from_pem(path.read_bytes(), ref), ref)
        except OSError as exc:
            raise SecretError(f"signing key {ref}: cannot read: {exc.strerror}") from None
    if ref.startswith("env:"):
        value = os.environ.get(ref[4:])
        if not value:
            raise SecretError(f"signing key {ref}: variable {ref[4:]!r} is not set")
        return SigningKey(_private_from_pem(value.encode(), ref), ref)
    if ref:
        raise SecretError(f"${KEY_ENV} must be file:PATH or env:VAR (a key is never given inline)")
    active = keys_dir() / ACTIVE
    if not active.exists():
        return None
    fp = active.read_text().strip()
    path = keys_dir() / f"{_file_name(fp)}.key"
    try:
        return SigningKey(_private_from_pem(path.read_bytes(), str(path)), f"file:{path}")
    except OSError as exc:
        raise SecretError(f"signing key {str(path)!r}: cannot read: {exc.strerror}") from None


def run_signing_key(run_class: RunClass, reference: str | None = None) -> SigningKey | None:
    """The key that will sign a run of ``run_class`` (:func:`load_signing_key`). An official
    drill is the client's evidence: without a key it does not start (:class:`SecretError`)."""
    key = load_signing_key(reference)
    if key is None and run_class is RunClass.DRILL:
        raise SecretError(
            "an official drill (class drill) is signed evidence and no signing key is configured: "
            f"run `bcdrill keys init` (or set ${KEY_ENV}), or run it as --class rehearsal"
        )
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (``--pubkey``)."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise EvidenceError(f"public key {str(path)!r}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise EvidenceError(f"public key {str(path)!r}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise EvidenceError(f"public key {str(path)!r}: not an Ed25519 key")
    return key


def _chain_digest(hashes: list[str]) -> str:
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def debrief_digest(debrief: Mapping[str, Any]) -> str:
    """SHA-256 of a debrief's canonical JSON (sorted keys, no spaces): the same for the debrief
    the engine signs and for the ``debrief.json`` read back, however that file is laid out."""
    text = json.dumps(debrief, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _head(
    contents: JournalContents, outcome: str, score: float | None, debrief: Mapping[str, Any] | None
) -> dict[str, Any]:
    started = next(contents.of_type(RecordType.RUN_STARTED), None)
    data: Mapping[str, Any] = started["data"] if started else {}
    hashes = [str(r["hash"]) for r in contents.records]
    head = {
        "run_id": str(data.get("run_id", "")),
        "class": run_class_of(data).value,
        "outcome": outcome,
        "score": None if score is None else round(float(score), 3),
        "last_hash": hashes[-1] if hashes else "",
        "records": len(hashes),
        "chain": _chain_digest(hashes),
    }
    if debrief is not None:  # the figures the client's history and dashboard are made of
        head["debrief"] = debrief_digest(debrief)
    return head


def _payload(head: Mapping[str, Any], fp: str) -> bytes:
    body = {"format": SIG_FORMAT, "head": head, "key_fingerprint": fp}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_run(
    run_dir: Path,
    key: SigningKey,
    outcome: str,
    score: float | None,
    debrief: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Sign the run's journal head (with the digest of ``debrief``, the debrief written for the
    run, when given) into ``<run>/journal.sig`` and return the head."""
    contents = read_journal(run_dir / JOURNAL_NAME)
    head = _head(contents, outcome, score, debrief)
    fp = key.fingerprint
    signature = key.private.sign(_payload(head, fp))
    document = {
        "format": SIG_FORMAT,
        "algorithm": "ed25519",
        "head": head,
        "key_fingerprint": fp,
        "hashes": [str(r["hash"]) for r in contents.records],
        "signature": base64.b64encode(signature).decode(),
    }
    tmp = run_dir / f".{SIG_NAME}.tmp"
    try:
        tmp.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, run_dir / SIG_NAME)
    except OSError as exc:
        raise JournalError(f"cannot write {str(run_dir / SIG_NAME)!r}: {exc.strerror}") from exc
    return head


@dataclass(frozen=True)
class Verified:
    """A run whose journal matches what was signed."""

    run_id: str
    head_hash: str
    records: int
    key_fingerprint: str
    outcome: str
    score: float | None
    run_class: str


def _read_sig(run_dir: Path) -> dict[str, Any]:
    path = run_dir / SIG_NAME
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise EvidenceError(f"{run_dir.name}: no {SIG_NAME}: the run was not signed") from None
    except (OSError, ValueError) as exc:
        raise EvidenceError(f"{path}: unreadable signature file ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != SIG_FORMAT:
        raise EvidenceError(f"{path}: not a {SIG_FORMAT} signature file")
    return document


def _public_key(fp: str, pubkey: Path | None) -> Ed25519PublicKey:
    if pubkey is not None:
        key = load_public_key(pubkey)
        if fingerprint(key) != fp:
            raise EvidenceError(
                f"the run was signed with key {fp}, but {str(pubkey)!r} holds key {fingerprint(key)}"
            )
        return key
    path = keys_dir() / f"{_file_name(fp)}.pub"
    if not path.exists():
        raise EvidenceError(
            f"the run was signed with key {fp}, which is not in {keys_dir()}: give --pubkey FILE"
        )
    return load_public_key(path)


def _first_difference(contents: JournalContents, signed: list[str], path: Path) -> str | None:
    for index, record in enumerate(contents.records):
        where = f"{path}:{index + 1}: record seq {index} ({record['type']})"
        if index >= len(signed):
            return f"{where} was added after the journal was signed"
        if record["hash"] != signed[index]:
            return f"{where} differs from the signed journal"
    if len(contents.records) < len(signed):
        return (
            f"{path}: the journal ends at record seq {len(contents.records) - 1}; {len(signed)} were signed"
        )
    return None


def _signed(run_dir: Path, pubkey: Path | None) -> tuple[dict[str, Any], list[str], str]:
    """The signature file's head, record hashes and key fingerprint, its signature checked."""
    document = _read_sig(run_dir)
    head, fp = document.get("head"), str(document.get("key_fingerprint", ""))
    hashes = document.get("hashes")
    if not isinstance(head, dict) or not isinstance(hashes, list):
        raise EvidenceError(f"{run_dir / SIG_NAME}: incomplete signature file")
    key = _public_key(fp, pubkey)
    try:
        key.verify(base64.b64decode(str(document.get("signature", ""))), _payload(head, fp))
    except (InvalidSignature, ValueError):
        raise EvidenceError(
            f"{run_dir / SIG_NAME}: the signature does not match its head (file edited?)"
        ) from None
    return head, [str(h) for h in hashes], fp


def signed_debrief_digest(run_dir: Path, pubkey: Path | None = None) -> str | None:
    """The digest of the debrief signed with the run, its signature checked (the journal is
    not read: quick enough for every run of a client's history); None when the run was not
    signed, or signed before debriefs were. :class:`EvidenceError` when the signature fails, or
    is missing from a run whose first record names the key that was to sign it."""
    if not (run_dir / SIG_NAME).exists():
        key = _signing_key_named(run_dir)
        if key:
            raise EvidenceError(f"{run_dir.name}: no {SIG_NAME}, yet key {key} was to sign it (deleted?)")
        return None
    head, _, _ = _signed(run_dir, pubkey)
    digest = head.get("debrief")
    return str(digest) if digest else None


def _signing_key_named(run_dir: Path) -> str | None:
    """The fingerprint of the key the run's ``run.started`` says will sign it (only that first
    line is read); None for a run made where no key existed. A first line that is not a
    readable ``run.started`` proves nothing either way: :class:`EvidenceError`."""
    try:
        with (run_dir / JOURNAL_NAME).open("rb") as journal:
            first = json.loads(journal.readline())
    except (OSError, ValueError):
        first = None
    if not isinstance(first, dict) or first.get("type") != RecordType.RUN_STARTED.value:
        raise EvidenceError(f"{run_dir.name}: no {SIG_NAME}, and the journal does not begin with run.started")
    data = first.get("data")
    key = data.get("signing_key") if isinstance(data, dict) else None
    return str(key) if key else None


def _check_debrief(run_dir: Path, head: Mapping[str, Any]) -> None:
    path = run_dir / DEBRIEF_NAME
    if not head.get("debrief") or not path.exists():
        return  # signed before debriefs were; or no file to check (``bcdrill report`` makes one)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvidenceError(f"{path}: unreadable ({exc})") from None
    if debrief_digest(data) != head["debrief"]:
        raise EvidenceError(f"{path}: differs from the debrief that was signed (edited after the run?)")


def verify_run(run_dir: Path, pubkey: Path | None = None) -> Verified:
    """Check the run's hash chain, signature and debrief; :class:`EvidenceError` names the first
    bad record (or the debrief file that differs from the signed one)."""
    path = run_dir / JOURNAL_NAME
    try:
        contents = read_journal(path)
    except JournalError as exc:
        raise EvidenceError(str(exc)) from None
    head, hashes, fp = _signed(run_dir, pubkey)
    if _chain_digest(hashes) != head.get("chain"):
        raise EvidenceError(f"{run_dir / SIG_NAME}: the listed record hashes are not the signed ones")
    problem = _first_difference(contents, hashes, path)
    if problem is not None:
        raise EvidenceError(problem)
    _check_debrief(run_dir, head)
    return Verified(
        run_id=str(head.get("run_id", "")),
        head_hash=str(head.get("last_hash", "")),
        records=int(head.get("records", 0)),
        key_fingerprint=fp,
        outcome=str(head.get("outcome", "")),
        score=head.get("score"),
        run_class=str(head.get("class", "")),
    )
