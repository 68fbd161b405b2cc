"""Hostile input against the drill desk, its webhooks and the run-reference commands.

Real HTTP (uvicorn on loopback) over the desk's real journal; the commands run through the
installed ``bcdrill`` console script in a subprocess. Every invalid request must get the one
uniform refusal — never a 500 — and record nothing; every bad run reference a one-line
message and exit 2 — never a traceback.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from drills.desk.webhooks import WebhookVerifier, sign
from engine.errors import RunNotFoundError
from engine.record.runstore import find_run
from engine.web import BOUNDED_HTTP, ProxySettings
from tests.conftest import BCDRILL
from tests.test_desk import HOOK_SECRET, Harness, _csrf, _shape, make_harness


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    monkeypatch.delenv("BCDRILL_BEHIND_TLS", raising=False)
    monkeypatch.delenv("BCDRILL_TRUSTED_PROXIES", raising=False)
    h = make_harness(tmp_path, monkeypatch)
    try:
        yield h
    finally:
        h.desk.stop()


def _signed(stamp: str, body: bytes, delivery: str) -> dict[bytes, bytes]:
    """Headers of a correctly signed delivery; the timestamp goes on the wire as Latin-1 (the
    desk reads header bytes as Latin-1, so '²' arrives as '²')."""
    return {
        b"X-Bcdrill-Timestamp": stamp.encode("latin-1"),
        b"X-Bcdrill-Signature": sign(HOOK_SECRET.encode(), stamp, body).encode(),
        b"X-Bcdrill-Delivery": delivery.encode(),
        b"Content-Type": b"application/json",
    }


def test_hostile_requests_get_the_uniform_refusal_and_record_nothing(harness: Harness) -> None:
    harness.impact()
    url = harness.url
    body = json.dumps({"ticket": {"subject": "x"}}).encode()
    with httpx.Client(base_url=url) as browser:
        browser.get(f"/p/{harness.cards['Priya Shah'].token}")
        csrf = _csrf(browser.get("/desk").text)
        many_fields = {"csrf": csrf, "step": "client.report", **{f"f{i}": "x" for i in range(12)}}
        hostile = {
            # parse_qs(max_num_fields=10) raises ValueError past ten fields
            "done form with 14 fields": browser.post("/desk/ack", data=many_fields),
            "done form, not url-encoded": browser.post("/desk/ack", content=b"\xff\xfe&&&=" * 5),
            "desk page, wrong method": browser.put("/desk"),
        }
    hostile |= {
        # '²'.isdigit() is True but int('²') fails: a valid signature over a superscript two
        "superscript timestamp": httpx.post(
            f"{url}/hooks/servicedesk", content=body, headers=_signed("²", body, "h-1")
        ),
        "superscripts timestamp": httpx.post(
            f"{url}/hooks/servicedesk", content=body, headers=_signed("¹²³", body, "h-2")
        ),
        # int() refuses strings of more than 4300 digits
        "5000-digit timestamp": httpx.post(
            f"{url}/hooks/servicedesk", content=body, headers=_signed("9" * 5000, body, "h-3")
        ),
        "negative timestamp": httpx.post(
            f"{url}/hooks/servicedesk", content=body, headers=_signed("-1", body, "h-4")
        ),
        "api ack, JSON list": httpx.post(
            f"{url}/api/ack",
            content=b"[1, 2]",
            headers={"Authorization": f"Bearer {harness.cards['Alex Moreau'].token}"},
        ),
        "webhook, wrong method": httpx.get(f"{url}/hooks/servicedesk"),
    }
    reference = _shape(httpx.get(f"{url}/nothing-here"))
    assert reference[0] == 404
    different = {name: _shape(r) for name, r in hostile.items() if _shape(r) != reference}
    assert not different, different
    assert harness.recorded() == []
    # the same form with its three fields is still recorded
    with httpx.Client(base_url=url, follow_redirects=True) as browser:
        browser.get(f"/p/{harness.cards['Priya Shah'].token}")
        csrf = _csrf(browser.get("/desk").text)
        done = browser.post("/desk/ack", data={"csrf": csrf, "step": "client.report", "note": "ok"})
    assert "Recorded: client.report" in done.text
    assert len(harness.recorded()) == 1


def test_webhook_timestamp_must_be_ascii_digits() -> None:
    verifier = WebhookVerifier({}, {}, wall=lambda: 1_700_000_000.0)
    for stamp in ("²", "١٧٠٠٠٠٠٠٠٠", "9" * 5000, "", " 1700000000", "1700000000\n", "+1700000000"):
        assert verifier._fresh(stamp) is False, stamp
    assert verifier._fresh("1700000000") is True
    assert verifier._fresh("1700000301") is False


# ---------------------------------------------------------------- cookies behind TLS


def _cookie(harness: Harness, headers: dict[str, str] | None = None) -> str:
    response = httpx.get(f"{harness.url}/p/{harness.cards['Alex Moreau'].token}", headers=headers or {})
    assert response.status_code == 303
    return response.headers["set-cookie"]


def test_desk_cookie_is_secure_only_behind_tls(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = _cookie(harness)
    assert "secure" not in plain.lower()
    # a client cannot claim TLS: forwarded headers count only from a named proxy
    assert "secure" not in _cookie(harness, {"X-Forwarded-Proto": "https"}).lower()
    harness.desk.stop()

    monkeypatch.setenv("BCDRILL_BEHIND_TLS", "1")
    behind = make_harness(tmp_path / "tls", monkeypatch)
    try:
        cookie = _cookie(behind)
        assert "; secure" in cookie.lower() and "httponly" in cookie.lower()
    finally:
        behind.desk.stop()

    monkeypatch.delenv("BCDRILL_BEHIND_TLS")
    monkeypatch.setenv("BCDRILL_TRUSTED_PROXIES", "127.0.0.1")
    proxied = make_harness(tmp_path / "proxy", monkeypatch)
    try:
        assert "; secure" in _cookie(proxied, {"X-Forwarded-Proto": "https"}).lower()
        assert "secure" not in _cookie(proxied).lower()
    finally:
        proxied.desk.stop()


def test_proxy_settings_trust_nobody_unless_named() -> None:
    assert ProxySettings.from_env(environ={}) == ProxySettings(False, ())
    assert ProxySettings.from_env(environ={}).uvicorn_options() == {"proxy_headers": False, **BOUNDED_HTTP}
    env = {"BCDRILL_BEHIND_TLS": "yes", "BCDRILL_TRUSTED_PROXIES": "10.0.0.1, 127.0.0.1,"}
    settings = ProxySettings.from_env(environ=env)
    assert settings == ProxySettings(True, ("10.0.0.1", "127.0.0.1"))
    assert settings.secure_cookies("http") is True
    assert settings.uvicorn_options()["forwarded_allow_ips"] == ["10.0.0.1", "127.0.0.1"]
    explicit = ProxySettings.from_env(False, ["192.0.2.7"], environ=env)
    assert explicit == ProxySettings(False, ("192.0.2.7",))
    assert explicit.secure_cookies("https") and not explicit.secure_cookies("http")


# ---------------------------------------------------------------- run references


LONG_REF = "r" * 300  # past the 255-byte file-name limit: the OS refuses to even look


def test_find_run_refuses_a_reference_the_os_cannot_look_up(tmp_path: Path) -> None:
    for ref in (LONG_REF, f"{LONG_REF}/x", "a\0b", ""):
        with pytest.raises(RunNotFoundError) as info:
            find_run(ref, tmp_path)
        assert len(str(info.value)) < 200  # cut short, not 300 characters echoed back


@pytest.mark.parametrize(
    "argv",
    [
        ["report", LONG_REF],
        ["recover", LONG_REF],
        ["ack", LONG_REF, "msp.acknowledge", "--by", "Alex"],
        ["abort", LONG_REF],
    ],
    ids=["report", "recover", "ack", "abort"],
)
def test_overlong_run_reference_is_a_clean_usage_error(argv: list[str], tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [BCDRILL, *argv, "--runs", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "File name too long" not in result.stderr
    message = " ".join(result.stderr.split())  # the console may wrap a long line
    assert message.startswith("bcdrill") and "no run" in message and "(300 characters)" in message, message
    assert LONG_REF not in result.stderr  # cut short, not echoed back whole
    assert time.monotonic() - started < 60


def test_same_run_reference_works_when_it_names_a_run(tmp_path: Path) -> None:
    run = tmp_path / f"20261129T000000Z-demo-{secrets.token_hex(2)}"
    run.mkdir()
    (run / "journal.jsonl").write_text("")
    assert find_run(run.name[:20], tmp_path) == run
    assert find_run(str(run), tmp_path) == run
