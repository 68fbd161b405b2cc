"""``bcdrill serve`` over real HTTP (uvicorn on loopback): per-client tokens, identical
refusals, only the client's own runs, escaped pages, no token in logs, no-referrer."""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import structlog
import uvicorn
from typer.testing import CliRunner

from engine.testing import free_port
from reports.portal.app import COOKIE, create_app
from reports.portal.tokens import ServeTokens
from reports.testing import sealed_debrief
from tests.test_reports_history import drill


class Server:
    """uvicorn serving the app in a thread, stopped at the end."""

    def __init__(self, runs: Path, tokens: ServeTokens) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            create_app(runs, tokens), host="127.0.0.1", port=self.port, access_log=False, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ServeTokens, dict[str, str]]]:
    root = tmp_path_factory.mktemp("serve")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BCDRILL_HOME", str(root / "home"))
        runs = root / "runs"
        acme = drill(
            runs,
            "20260302T090000Z-web-down-acme",
            datetime(2026, 3, 2, tzinfo=UTC),
            ack=200,
            report=100,
            restore=300,
        )
        other = drill(
            runs,
            "20260303T090000Z-web-down-evil",
            datetime(2026, 3, 3, tzinfo=UTC),
            ack=60,
            report=60,
            restore=100,
            client="Evil <script>alert(1)</script> Co",
        )
        for run in (acme, other):
            sealed_debrief(run.run_dir)
        tokens = ServeTokens(root / "home" / "serve-tokens.json")
        issued = {"acme": tokens.issue("Acme Ltd"), "evil": tokens.issue("Evil <script>alert(1)</script> Co")}
        yield runs, tokens, issued


@pytest.fixture(scope="module")
def base(store: tuple[Path, ServeTokens, dict[str, str]]) -> Iterator[str]:
    runs, tokens, _ = store
    with Server(runs, tokens) as url:
        yield url


def test_tokens_are_stored_only_as_hashes(store: tuple[Path, ServeTokens, dict[str, str]]) -> None:
    _, tokens, issued = store
    text = tokens.path.read_text()
    assert all(token not in text for token in issued.values())
    assert stat.S_IMODE(os.stat(tokens.path).st_mode) == 0o600
    assert tokens.client_of(issued["acme"]) == "Acme Ltd"
    assert tokens.client_of(issued["acme"][:-1]) is None
    assert tokens.client_of("") is None and tokens.client_of(None) is None


def test_missing_wrong_and_malformed_tokens_are_refused_identically(
    base: str, store: tuple[Path, ServeTokens, dict[str, str]]
) -> None:
    acme = store[2]["acme"]
    with httpx.Client(base_url=base, follow_redirects=False) as http:
        answers = [
            http.get("/"),
            http.get("/", headers={"Cookie": f"{COOKIE}={acme[:-2]}xx"}),
            http.get("/", headers={"Authorization": "Bearer " + "A" * 5000}),
            http.get("/access/" + acme[:-1]),
            http.get("/access/%00%ff"),
            http.get("/runs/20260302T090000Z-web-down-acme"),
        ]
    assert {r.status_code for r in answers} == {401}
    assert len({r.content for r in answers}) == 1
    for response in answers:
        assert "set-cookie" not in response.headers
        assert response.headers["referrer-policy"] == "no-referrer"


def test_a_client_sees_only_its_own_runs(base: str, store: tuple[Path, ServeTokens, dict[str, str]]) -> None:
    acme = store[2]["acme"]
    with httpx.Client(base_url=base, follow_redirects=False, timeout=60) as http:  # PDFs under load
        entry = http.get(f"/access/{acme}")
        assert entry.status_code == 303 and entry.headers["location"] == "/"
        cookie = entry.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert entry.headers["referrer-policy"] == "no-referrer"
        index = http.get("/")
        assert index.status_code == 200
        assert "20260302T090000Z-web-down-acme" in index.text
        assert "web-down-evil" not in index.text and "Evil" not in index.text
        page = http.get("/runs/20260302T090000Z-web-down-acme")
        assert page.status_code == 200 and "Drill debrief" in page.text
        assert "client version" in page.text  # the client never gets the internal version
        foreign = http.get("/runs/20260303T090000Z-web-down-evil")
        missing = http.get("/runs/nope")
        assert foreign.status_code == missing.status_code == 404
        assert foreign.content == missing.content
        pdf = http.get(  # WeasyPrint's first PDF takes seconds on a busy machine
            "/runs/20260302T090000Z-web-down-acme", params={"format": "pdf", "lang": "zh-CN"}, timeout=60
        )
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
        assert pdf.headers["content-type"] == "application/pdf"
        zh = http.get("/", params={"lang": "zh-CN"})
        assert "演练趋势" in zh.text
    csp = index.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp


def test_portal_shows_the_value_dashboard_and_links_its_pdf(
    base: str, store: tuple[Path, ServeTokens, dict[str, str]]
) -> None:
    acme = store[2]["acme"]
    # PDFs take seconds on a loaded machine: a longer read timeout than httpx's 5 s
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {acme}"}, timeout=60) as http:
        index = http.get("/", params={"lang": "zh-CN"})
        assert index.status_code == 200
        assert index.text.count("<svg ") == 4 and "损失人时" in index.text  # four charts
        assert 'href="/dashboard.pdf?lang=zh-CN"' in index.text
        pdf = http.get("/dashboard.pdf", params={"lang": "zh-CN"})
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
        assert pdf.headers["content-type"] == "application/pdf"
    refused = httpx.get(base + "/dashboard.pdf")
    assert refused.status_code == 401


def test_pages_escape_client_data(base: str, store: tuple[Path, ServeTokens, dict[str, str]]) -> None:
    evil = store[2]["evil"]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {evil}"}) as http:
        index = http.get("/")
        page = http.get("/runs/20260303T090000Z-web-down-evil")
    for response in (index, page):
        assert response.status_code == 200
        assert "<script>" not in response.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


def test_no_token_reaches_a_log(
    store: tuple[Path, ServeTokens, dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    runs, tokens, issued = store
    acme = issued["acme"]
    caplog.set_level(logging.DEBUG)
    server = Server(runs, tokens)
    with structlog.testing.capture_logs() as events, server as url, httpx.Client(base_url=url) as http:
        http.get(f"/access/{acme}")
        http.get("/", headers={"Authorization": f"Bearer {acme}"})
        http.get(f"/access/{acme}x")
    assert any(e.get("route") == "/access/{token}" for e in events)
    # The server's loggers only: the test's own HTTP client (httpx, httpcore) logs its URLs.
    server_side = [r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = repr(events) + "\n".join(server_side)
    assert acme not in logged


def test_serve_token_command_prints_a_link_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from reports.commands import register

    monkeypatch.setenv("BCDRILL_HOME", str(tmp_path))
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["serve", "token", "Acme Ltd", "--runs", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    link = result.stdout.strip()
    assert link.startswith("http://127.0.0.1:8780/access/")
    token = link.rsplit("/", 1)[1]
    assert len(token) >= 43 and token not in (tmp_path / "serve-tokens.json").read_text()
    assert ServeTokens(tmp_path / "serve-tokens.json").client_of(token) == "Acme Ltd"
    again = CliRunner().invoke(app, ["serve", "token", "Acme Ltd", "--runs", str(tmp_path / "runs")])
    assert ServeTokens(tmp_path / "serve-tokens.json").client_of(token) is None  # rotated
    assert again.exit_code == 0


def test_cookie_holds_a_session_id_never_the_token(
    base: str, store: tuple[Path, ServeTokens, dict[str, str]]
) -> None:
    acme = store[2]["acme"]
    with httpx.Client(base_url=base, follow_redirects=False) as http:
        entry = http.get(f"/access/{acme}")
        session = http.cookies[COOKIE]
        assert acme not in entry.headers["set-cookie"] and session != acme and len(session) >= 43
        assert "secure" not in entry.headers["set-cookie"].lower()  # plain HTTP, no TLS proxy named
        assert http.get("/").status_code == 200
        second = httpx.get(f"{base}/access/{acme}", follow_redirects=False)
        assert second.cookies[COOKIE] != session  # a fresh session per visit of the link
    # the raw token in the cookie is refused: only sessions the server issued count
    assert httpx.get(f"{base}/", cookies={COOKIE: acme}).status_code == 401


def test_revoking_a_token_ends_its_sessions(tmp_path: Path) -> None:
    tokens = ServeTokens(tmp_path / "serve-tokens.json")
    token = tokens.issue("Acme Ltd")
    with Server(tmp_path / "runs", tokens) as url, httpx.Client(base_url=url) as http:
        http.get(f"/access/{token}")
        assert http.get("/").status_code == 200
        tokens.issue("Acme Ltd")  # re-issued: the old link and its sessions stop working
        assert http.get("/").status_code == 401


def test_unknown_routes_and_methods_get_the_same_refusals(
    base: str, store: tuple[Path, ServeTokens, dict[str, str]]
) -> None:
    acme = store[2]["acme"]
    with httpx.Client(base_url=base, follow_redirects=False) as anonymous:
        denied = anonymous.get("/")
        for response in (anonymous.get("/admin"), anonymous.post("/"), anonymous.delete("/runs/x")):
            assert (response.status_code, response.content) == (401, denied.content)
            assert response.headers["referrer-policy"] == "no-referrer"
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {acme}"}) as client:
        missing = client.get("/runs/nope")
        for response in (client.get("/admin"), client.post("/"), client.put("/runs/x")):
            assert (response.status_code, response.content) == (404, missing.content)


def test_cookies_are_secure_behind_tls(store: tuple[Path, ServeTokens, dict[str, str]]) -> None:
    from engine.web import ProxySettings

    runs, tokens, issued = store
    for proxy, headers in (
        (ProxySettings(behind_tls=True), {}),
        (ProxySettings(trusted_proxies=("127.0.0.1",)), {"X-Forwarded-Proto": "https"}),
    ):
        port = free_port()
        app = create_app(runs, tokens, proxy=proxy)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", **proxy.uvicorn_options()
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 10
            while not server.started:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            entry = httpx.get(
                f"http://127.0.0.1:{port}/access/{issued['acme']}", headers=headers, follow_redirects=False
            )
            assert entry.status_code == 303 and "; secure" in entry.headers["set-cookie"].lower()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
