"""The drill desk over real HTTP (uvicorn on loopback) with the engine's real StepBook and journal.

No Docker here: impact start is set on the real StepBook directly. The full drill against the
Docker lab, with a real browser, is in test_desk_drill.py.
"""

from __future__ import annotations

import json
import secrets
import socket
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from drills.desk.app import Limits
from drills.desk.client import post_ack
from drills.desk.participants import Card, ParticipantStore
from drills.desk.service import DrillDesk
from drills.desk.simulated import DeskSimulatedResponders
from drills.desk.webhooks import correlation_code, sign
from engine.clock import RunClock
from engine.errors import InputError
from engine.model.types import Participant
from engine.record.journal import JOURNAL_NAME, Journal
from engine.run.context import responder_context
from engine.run.hotwash import HotwashBook
from engine.run.responses import Ack, ResponderContext, StepBook
from engine.spec.loader import load_playbook
from tests.conftest import REPO
from tests.journal_helpers import records

PLAYBOOK = REPO / "playbooks" / "storefront-down.yaml"
CLIENT = "Demo Bakery Ltd"
PEOPLE = (
    Participant("Alex Moreau", "msp", "on-call engineer", "alex@msp.example"),
    Participant("Priya Shah", "client", "shop manager", "priya@bakery.example"),
    Participant("Tom Becker", "client", "managing director", "tom@bakery.example"),
)
HOOK_SECRET = "whsec-" + "k3y" * 10
HOOKS_YAML = """\
format: desk-webhooks/v1
hooks:
  servicedesk:
    secret: env:TEST_DESK_HOOK_SECRET
    step: client.report
    match: {"ticket.subject": "{correlation}"}
    time_field: ticket.created_at
    by_field: ticket.requester
"""


@dataclass
class Harness:
    """A desk on loopback over a real journal; ``cards`` by participant name."""

    url: str
    run_dir: Path
    book: StepBook
    clock: RunClock
    cards: dict[str, Card]
    other_client_card: Card
    desk: DrillDesk
    context: ResponderContext

    def impact(self) -> None:
        """Pretend the first fault was just applied."""
        self.book.start_impact(self.clock.now())

    def recorded(self) -> list[dict[str, Any]]:
        """``step.recorded`` records so far."""
        return [r for r in records(self.run_dir) if r["type"] == "step.recorded"]

    def hook(
        self, payload: dict[str, Any], *, delivery: str = "", ts: int | None = None, name: str = "servicedesk"
    ) -> httpx.Response:
        """POST a correctly signed delivery."""
        body = json.dumps(payload).encode()
        stamp = str(int(time.time()) if ts is None else ts)
        headers = {
            "X-Bcdrill-Timestamp": stamp,
            "X-Bcdrill-Signature": sign(HOOK_SECRET.encode(), stamp, body),
            "X-Bcdrill-Delivery": delivery or secrets.token_hex(8),
            "Content-Type": "application/json",
        }
        return httpx.post(f"{self.url}/hooks/{name}", content=body, headers=headers)


def make_harness(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    limits: Limits | None = None,
    scale: float = 1.0,
    hooks_yaml: str = HOOKS_YAML,
) -> Harness:
    """Tokens, webhook settings, a real journal and StepBook, and a started desk."""
    home = tmp_path / "home"
    monkeypatch.setenv("BCDRILL_HOME", str(home))
    monkeypatch.setenv("TEST_DESK_HOOK_SECRET", HOOK_SECRET)
    (home / "webhooks").mkdir(parents=True)
    (home / "webhooks" / "demo-bakery-ltd.yaml").write_text(hooks_yaml)
    cards = {c.participant.name: c for c in ParticipantStore(CLIENT).issue(PEOPLE, "http://desk.invalid")}
    (other,) = ParticipantStore("Other Co").issue([Participant("Olga Other", "msp")], "http://desk.invalid")
    playbook = load_playbook(PLAYBOOK).scaled(scale)
    run_dir = tmp_path / "run-1"
    run_dir.mkdir()
    clock = RunClock()
    journal = Journal(run_dir / JOURNAL_NAME, clock)
    book = StepBook(playbook, journal, clock)
    context = responder_context(
        playbook, book, HotwashBook(journal, PEOPLE), run_dir=run_dir, client=CLIENT, environment="ci",
        participants=PEOPLE, seed=1, clock=clock, options={"desk": "127.0.0.1:0"},
    )  # fmt: skip
    desk = DrillDesk(context, limits)
    desk.start()
    return Harness(desk.url, run_dir, book, clock, cards, other, desk, context)


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    h = make_harness(tmp_path, monkeypatch)
    try:
        yield h
    finally:
        h.desk.stop()


def _shape(response: httpx.Response) -> tuple[int, bytes, tuple[tuple[str, str], ...]]:
    headers = tuple(
        sorted((k, v) for k, v in response.headers.items() if k not in ("date", "content-length"))
    )
    return response.status_code, response.content, headers


def test_link_exchanges_token_for_cookie_and_token_free_url(harness: Harness) -> None:
    card = harness.cards["Priya Shah"]
    with httpx.Client(base_url=harness.url) as client:
        first = client.get(f"/p/{card.token}")
        assert first.status_code == 303 and first.headers["location"] == "/desk"
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and card.token not in cookie
        assert first.headers["referrer-policy"] == "no-referrer"
        page = client.get("/desk")
    assert page.status_code == 200
    assert "No drill in progress" in page.text  # before impact the drill stays a surprise
    assert 'name="viewport"' in page.text and card.token not in page.text


def test_desk_page_records_own_party_and_shows_engine_reasons(harness: Harness) -> None:
    with httpx.Client(base_url=harness.url, follow_redirects=True) as client:
        client.get(f"/p/{harness.cards['Priya Shah'].token}")
        harness.impact()
        page = client.get("/desk").text
        csrf = _csrf(page)
        assert "client.workaround" in page and "msp.acknowledge" not in page  # own party only
        done = client.post("/desk/ack", data={"csrf": csrf, "step": "client.report", "note": "<b>x</b>"})
        assert "Recorded: client.report" in done.text
        assert "&lt;b&gt;x&lt;/b&gt;" in done.text and "<b>x</b>" not in done.text  # autoescaped note
        again = client.post("/desk/ack", data={"csrf": csrf, "step": "client.report"})
        assert "already recorded" in again.text
        harness.book.close()  # the engine's reason reaches the person
        ended = client.post("/desk/ack", data={"csrf": csrf, "step": "client.workaround"})
        assert "Not recorded: the drill has ended" in ended.text
    (rec,) = harness.recorded()
    assert rec["data"] == {
        **rec["data"],
        "step": "client.report",
        "party": "client",
        "by": "Priya Shah",
        "source": "desk",
        "note": "<b>x</b>",
    }


def _csrf(html: str) -> str:
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def test_api_ack_and_client(harness: Harness) -> None:
    harness.impact()
    receipt = post_ack(harness.url, harness.cards["Alex Moreau"].token, "acknowledge", "paged")
    assert receipt.recorded and receipt.step == "msp.acknowledge"
    assert post_ack(harness.url, harness.cards["Alex Moreau"].token, "msp.acknowledge").status == "duplicate"
    with pytest.raises(InputError):
        post_ack(harness.url, harness.cards["Tom Becker"].token, "msp.declare")
    harness.book.close()
    late = post_ack(harness.url, harness.cards["Tom Becker"].token, "client.confirm")
    assert late.status == "rejected" and late.reason == "the drill has ended"
    (rec,) = harness.recorded()
    assert rec["data"]["by"] == "Alex Moreau" and rec["data"]["source"] == "ack"


def test_forgeries_are_rejected_identically_and_record_nothing(harness: Harness) -> None:
    harness.impact()
    url = harness.url
    alex, priya = harness.cards["Alex Moreau"], harness.cards["Priya Shah"]
    revoked = harness.cards["Tom Becker"]
    ParticipantStore(CLIENT).revoke("Tom Becker")
    # a legitimate delivery that does not concern this drill (ignored), to replay later
    original = {"ticket": {"subject": "printer jam", "requester": "Priya Shah"}}
    body = json.dumps(original).encode()
    stamp = str(int(time.time()))
    signed = {
        "X-Bcdrill-Timestamp": stamp,
        "X-Bcdrill-Signature": sign(HOOK_SECRET.encode(), stamp, body),
        "X-Bcdrill-Delivery": "d-1",
    }
    assert httpx.post(f"{url}/hooks/servicedesk", content=body, headers=signed).json()["status"] == "ignored"
    matching = json.dumps({"ticket": {"subject": correlation_code("run-1")}}).encode()
    stale = str(int(time.time()) - 400)

    def api(token: str | None, step: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.post(f"{url}/api/ack", json={"step": step}, headers=headers)

    forgeries = {
        "no token": lambda: api(None, "msp.acknowledge"),
        "random token": lambda: api(secrets.token_urlsafe(32), "msp.acknowledge"),
        "other client's token": lambda: api(harness.other_client_card.token, "msp.acknowledge"),
        "client token, msp step": lambda: api(priya.token, "msp.acknowledge"),
        "revoked token": lambda: api(revoked.token, "client.report"),
        "random link": lambda: httpx.get(f"{url}/p/{secrets.token_urlsafe(32)}"),
        "revoked link": lambda: httpx.get(f"{url}/p/{revoked.token}"),
        "desk without session": lambda: httpx.get(f"{url}/desk"),
        "form without session": lambda: httpx.post(f"{url}/desk/ack", data={"step": "client.report"}),
        "tampered webhook body": lambda: httpx.post(
            f"{url}/hooks/servicedesk", content=matching, headers={**signed, "X-Bcdrill-Delivery": "d-2"}
        ),
        "replayed delivery": lambda: httpx.post(f"{url}/hooks/servicedesk", content=body, headers=signed),
        "replay, new delivery id": lambda: httpx.post(
            f"{url}/hooks/servicedesk", content=body, headers={**signed, "X-Bcdrill-Delivery": "d-3"}
        ),
        "stale timestamp": lambda: httpx.post(
            f"{url}/hooks/servicedesk",
            content=matching,
            headers={
                "X-Bcdrill-Timestamp": stale,
                "X-Bcdrill-Signature": sign(HOOK_SECRET.encode(), stale, matching),
                "X-Bcdrill-Delivery": "d-4",
            },
        ),
        "unknown hook": lambda: httpx.post(f"{url}/hooks/nope", content=body, headers=signed),
        "unknown route": lambda: httpx.get(f"{url}/admin"),
    }
    shapes: dict[str, set[tuple[int, bytes, tuple[tuple[str, str], ...]]]] = {}
    tries: dict[str, list[float]] = {}
    # three rounds over every forgery: each one's fastest try is the server's own floor, and a
    # burst of load on this machine falls on all of them alike
    for _ in range(3):
        for name, send in forgeries.items():
            started = time.perf_counter()
            response = send()
            tries.setdefault(name, []).append(time.perf_counter() - started)
            shapes.setdefault(name, set()).add(_shape(response))
    timings = {name: min(spent) for name, spent in tries.items()}
    reference = _shape(httpx.get(f"{url}/nothing-here"))
    assert reference[0] == 404
    different = {name: shape for name, shape in shapes.items() if shape != {reference}}
    assert not different, different
    assert harness.recorded() == []
    # the same floor for every failure: no path answers much faster than the others
    assert min(timings.values()) >= 0.03
    median = statistics.median(timings.values())
    assert max(timings.values()) - median < max(0.1, median / 2), timings
    # the genuine token still works after all that
    assert post_ack(url, alex.token, "msp.acknowledge").recorded


def test_csrf_field_is_required(harness: Harness) -> None:
    harness.impact()
    with httpx.Client(base_url=harness.url) as client:
        client.get(f"/p/{harness.cards['Alex Moreau'].token}")
        bad = client.post("/desk/ack", data={"csrf": "forged", "step": "msp.acknowledge"})
        missing = client.post("/desk/ack", data={"step": "msp.acknowledge"})
    assert bad.status_code == missing.status_code == 404
    assert harness.recorded() == []


def test_revocation_ends_open_sessions(harness: Harness) -> None:
    with httpx.Client(base_url=harness.url) as client:
        client.get(f"/p/{harness.cards['Tom Becker'].token}")
        assert client.get("/desk").status_code == 200
        ParticipantStore(CLIENT).revoke("Tom Becker")
        assert client.get("/desk").status_code == 404


def test_webhook_records_step_with_ticket_time(harness: Harness) -> None:
    harness.impact()
    created = harness.clock.utc()
    payload = {
        "ticket": {
            "subject": f"Shop is down [{correlation_code('run-1')}]",
            "requester": "Priya Shah",
            "created_at": created.isoformat(),
        }
    }
    response = harness.hook(payload, delivery="t-1")
    assert response.status_code == 202 and response.json()["status"] == "recorded"
    (rec,) = harness.recorded()
    data = rec["data"]
    assert data["step"] == "client.report" and data["source"] == "webhook" and data["by"] == "Priya Shah"
    assert "ticket created" in data["note"] and "servicedesk" in data["note"]
    update = {"ticket": {**payload["ticket"], "status": "in progress"}}
    assert harness.hook(update, delivery="t-2").json()["status"] == "duplicate"
    assert len(harness.recorded()) == 1


def test_rate_limit_per_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = make_harness(tmp_path, monkeypatch, Limits(token_burst=3, token_rate=0.01))
    try:
        token = secrets.token_urlsafe(32)
        codes = [
            httpx.post(f"{h.url}/api/ack", json={"step": "x"}, headers={"Authorization": f"Bearer {token}"})
            for _ in range(5)
        ]
        assert [c.status_code for c in codes] == [404, 404, 404, 429, 429]
        other = httpx.post(
            f"{h.url}/api/ack",
            json={"step": "x"},
            headers={"Authorization": f"Bearer {h.cards['Alex Moreau'].token}"},
        )
        # another token still has its own budget (before impact: the one answer to every ack)
        assert other.status_code == 409
    finally:
        h.desk.stop()


def test_requests_without_a_token_share_no_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ack without a bearer token is answered as an unknown one, however many came
    before: they drew on one shared token budget, so after a burst a missing token got 429."""
    h = make_harness(tmp_path, monkeypatch, Limits(token_burst=3, token_rate=0.01))
    try:
        missing = [httpx.post(f"{h.url}/api/ack", json={"step": "x"}) for _ in range(5)]
        empty = httpx.post(f"{h.url}/api/ack", json={"step": "x"}, headers={"Authorization": "Bearer"})
        unknown = {"Authorization": f"Bearer {secrets.token_urlsafe(32)}"}
        wrong = httpx.post(f"{h.url}/api/ack", json={"step": "x"}, headers=unknown)
        answers = [*missing, empty, wrong]
        assert {r.status_code for r in answers} == {404}
        assert len({r.content for r in answers}) == 1
    finally:
        h.desk.stop()


def test_a_request_with_headers_over_16_kib_is_refused_before_any_check(harness: Harness) -> None:
    """The request line and headers are bounded: an endless header no longer fills memory."""
    host, port = harness.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /desk HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 20_000)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert httpx.get(f"{harness.url}/desk").status_code == 404  # the desk still answers


def test_rate_limit_per_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = make_harness(tmp_path, monkeypatch, Limits(address_burst=4, address_rate=0.01))
    try:
        codes = [httpx.get(f"{h.url}/desk").status_code for _ in range(6)]
        assert codes == [404, 404, 404, 404, 429, 429]
    finally:
        h.desk.stop()


def test_stop_frees_the_port_and_removes_desk_file(harness: Harness) -> None:
    assert (harness.run_dir / "desk.json").exists()
    harness.desk.stop()
    assert not (harness.run_dir / "desk.json").exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{harness.url}/desk", timeout=1)


def test_simulated_people_ack_through_the_desk_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = make_harness(tmp_path, monkeypatch, scale=0.001)  # the slowest target, 40 min, becomes 2.4 s
    people = DeskSimulatedResponders(h.context)
    try:
        people.start()
        h.impact()
        manual = {s.key for s in h.context.steps if s.recorded_by.kind != "probe"}
        deadline = time.monotonic() + 15
        while not manual <= {r["data"]["step"] for r in h.recorded()} and time.monotonic() < deadline:
            if h.book.recorded_at("msp.mitigate") is not None:  # what the storefront probe would do
                h.book.record(Ack("msp.restore", by="probe:storefront", source="probe"))
            time.sleep(0.05)
    finally:
        people.stop()
        h.desk.stop()
    recorded = {r["data"]["step"]: r["data"] for r in h.recorded() if r["data"]["source"] != "probe"}
    assert set(recorded) == manual
    names = {p.name: p.party for p in PEOPLE}
    for key, data in recorded.items():
        assert data["source"] == "ack"  # through /api/ack, not the inbox
        assert names[data["by"]] == key.split(".")[0]
    assert not list((h.run_dir / "inbox").glob("*.json")) if (h.run_dir / "inbox").exists() else True
    text = (h.run_dir / "desk-participants.json").read_text()
    assert all(token not in text for token in people._tokens.values())
