"""Webhook settings, signatures, freshness, de-duplication and payload mapping (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from drills.desk.webhooks import (
    WebhookMapping,
    WebhookVerifier,
    correlation_code,
    load_webhooks,
    matches,
    resolve_secret,
    sidecar_path,
    sign,
    ticket_time,
)
from engine.errors import InputError, SecretError
from engine.logsetup import redact_text
from engine.model.types import SecretRef, frozen_mapping

SECRET = b"0123456789abcdef0123"
HOOK = WebhookMapping(
    name="sd",
    secret=SecretRef("env:X"),
    step="client.report",
    match=frozen_mapping({"ticket.subject": "{correlation}", "ticket.tags": "drill"}),
    time_field="ticket.created_at",
)


def _headers(body: bytes, ts: int, delivery: str = "d1", secret: bytes = SECRET) -> dict[str, str]:
    stamp = str(ts)
    return {
        "x-bcdrill-timestamp": stamp,
        "x-bcdrill-signature": sign(secret, stamp, body),
        "x-bcdrill-delivery": delivery,
    }


def test_verify_accepts_once_and_checks_window() -> None:
    now = [1_800_000_000.0]
    verifier = WebhookVerifier({"sd": HOOK}, {"sd": SECRET}, wall=lambda: now[0])
    body = b'{"ticket": {}}'
    ok = verifier.verify("sd", _headers(body, int(now[0]) - 299), body)
    assert ok is not None and ok.delivery_id == "d1"
    assert verifier.verify("sd", _headers(body, int(now[0]) - 299), body) is None  # replay
    assert verifier.verify("sd", _headers(body, int(now[0]) - 299, "d9"), body) is None  # new id, same sig
    assert verifier.verify("sd", _headers(body, int(now[0]) + 301, "d2"), body) is None  # future
    assert verifier.verify("sd", _headers(body, int(now[0]) - 301, "d3"), body) is None  # stale
    assert verifier.verify("sd", _headers(body, int(now[0]), "d4", b"wrong-secret-123456"), body) is None
    assert verifier.verify("sd", _headers(body, int(now[0]), "d5"), body + b" ") is None  # tampered
    assert verifier.verify("other", _headers(body, int(now[0]), "d6"), body) is None
    assert (
        verifier.verify("sd", {**_headers(body, int(now[0]), "d7"), "x-bcdrill-delivery": ""}, body) is None
    )
    assert verifier.verify("sd", _headers(b"[1]", int(now[0]), "d8"), b"[1]") is None  # not an object


def test_mapping_matches_text_and_list_fields() -> None:
    code = correlation_code("run-7")
    assert code.startswith("BCD-") and len(code) == 12 and code == correlation_code("run-7")
    good = {"ticket": {"subject": f"shop down ({code})", "tags": ["urgent", "drill"]}}
    assert matches(HOOK, good, "run-7")
    assert not matches(HOOK, good, "run-8")
    assert not matches(HOOK, {"ticket": {"subject": code, "tags": ["urgent"]}}, "run-7")
    assert not matches(HOOK, {"ticket": "flat"}, "run-7")


def test_ticket_time_needs_a_zone() -> None:
    assert ticket_time(HOOK, {"ticket": {"created_at": "2026-03-01T10:00:00Z"}}) == datetime(
        2026, 3, 1, 10, tzinfo=UTC
    )
    assert ticket_time(HOOK, {"ticket": {"created_at": "2026-03-01T10:00:00"}}) is None
    assert ticket_time(HOOK, {"ticket": {"created_at": "yesterday"}}) is None


def test_load_webhooks_reports_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "lab.webhooks.yaml"
    path.write_text(
        "format: desk-webhooks/v1\n"
        "hooks:\n"
        "  sd:\n"
        "    secret: hunter2-inline\n"
        "    step: report\n"
        "    match: {}\n"
        "    colour: red\n"
    )
    with pytest.raises(InputError) as caught:
        load_webhooks(path)
    text = str(caught.value)
    assert "hooks.sd.secret" in text and "hooks.sd.step" in text and "hooks.sd.match" in text
    assert "colour" in text and "hunter2-inline" not in text
    assert ":4:" in text  # located: line of the secret
    assert sidecar_path(tmp_path / "lab.yaml") == path


def test_resolve_secret_by_reference_and_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET_T", "s3cret-value-for-the-hook")
    assert resolve_secret(SecretRef("env:HOOK_SECRET_T")) == b"s3cret-value-for-the-hook"
    assert "s3cret-value-for-the-hook" not in redact_text("got s3cret-value-for-the-hook")
    (tmp_path / "s").write_text("file-secret-value-1234\n")
    assert resolve_secret(SecretRef(f"file:{tmp_path / 's'}")) == b"file-secret-value-1234"
    with pytest.raises(SecretError, match="NOT_SET_VAR"):
        resolve_secret(SecretRef("env:NOT_SET_VAR"))
    monkeypatch.setenv("SHORT_SECRET", "short")
    with pytest.raises(SecretError, match="too short"):
        resolve_secret(SecretRef("env:SHORT_SECRET"))
