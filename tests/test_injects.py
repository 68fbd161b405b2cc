"""The kick-off alert and injects: due when scripted, delivered into real local receivers.

The receivers are real HTTP servers on loopback: one takes the Alertmanager-style webhook,
one the apprise ``json://`` notification. A channel that cannot deliver (nobody listening, a
secret that is not set) is journaled as ``inject.failed`` with its reason, never dropped.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from engine.clock import FakeClock
from engine.model.exercise import Channel, Condition, Exercise, Inject, Reaction
from engine.model.types import Participant, Playbook
from engine.record.journal import JOURNAL_NAME, Journal
from engine.record.records import RecordType
from engine.run.injects import InjectScript, recipients, write_adhoc_inject
from engine.run.responses import Ack, StepBook
from engine.spec.loader import load_playbook
from tests.conftest import REPO

PEOPLE = (
    Participant("Alex Moreau", "msp", "on-call engineer"),
    Participant("Li Wei", "client", "shop manager", language="zh-CN"),
    Participant("Tom Becker", "client", "managing director"),
)


class Receiver:
    """A real HTTP server on loopback that keeps every JSON body posted to it."""

    def __init__(self) -> None:
        bodies: list[tuple[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                bodies.append((self.path, json.loads(self.rfile.read(length) or b"null")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.bodies = bodies
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _playbook() -> Playbook:
    return load_playbook(REPO / "playbooks" / "storefront-down.yaml")


def _script(tmp_path: Path, exercise: Exercise) -> tuple[InjectScript, Journal, StepBook, FakeClock]:
    clock = FakeClock()
    playbook = _playbook()
    journal = Journal(tmp_path / JOURNAL_NAME, clock)
    book = StepBook(playbook, journal, clock)
    (tmp_path / "inbox").mkdir()
    script = InjectScript(exercise, playbook.steps, PEOPLE, journal, book, clock, tmp_path)
    return script, journal, book, clock


def _records(tmp_path: Path, kind: str) -> list[dict[str, Any]]:
    lines = (tmp_path / JOURNAL_NAME).read_text().splitlines()
    return [r["data"] for r in map(json.loads, lines) if r["type"] == kind]


ALERT_TEXT = {"en": "storefront HTTP check failing", "zh-CN": "网店 HTTP 检查失败"}


def test_kickoff_alert_reaches_alertmanager_and_apprise_and_a_failing_channel_is_journaled(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T15_AM_URL", f"http://127.0.0.1:{receiver.port}/am")
    monkeypatch.setenv("T15_APPRISE_URL", f"json://127.0.0.1:{receiver.port}/apprise")
    monkeypatch.setenv("T15_DEAD_URL", f"http://127.0.0.1:{_closed_port()}/nobody")
    monkeypatch.delenv("T15_UNSET_URL", raising=False)
    alert = Inject(
        id="alert",
        kind="alert",
        to=("msp",),
        text=ALERT_TEXT,
        via=(
            Channel("alertmanager", "env:T15_AM_URL"),
            Channel("apprise", "env:T15_APPRISE_URL"),
            Channel("alertmanager", "env:T15_DEAD_URL"),
            Channel("pagerduty", "env:T15_UNSET_URL"),
        ),
    )
    script, journal, book, _clock = _script(tmp_path, Exercise(alert=alert))
    script.tick()
    assert not _records(tmp_path, RecordType.INJECT_SENT), "nothing goes out before impact"
    book.start_impact(0.0)
    script.tick()
    script.stop()
    journal.close()

    by_path = dict(receiver.bodies)
    payload = by_path["/am"]
    assert payload["version"] == "4" and payload["status"] == "firing"
    (am_alert,) = payload["alerts"]
    assert am_alert["labels"]["alertname"] == "BcdrillExercise"
    assert am_alert["labels"]["bcdrill_run"] == tmp_path.name
    description = am_alert["annotations"]["description"]
    assert description.startswith("EXERCISE EXERCISE EXERCISE") and description.endswith(
        "EXERCISE EXERCISE EXERCISE"
    )
    assert "storefront HTTP check failing" in description
    assert "EXERCISE EXERCISE EXERCISE" in by_path["/apprise"]["message"]

    sent = _records(tmp_path, RecordType.INJECT_SENT)
    assert sorted(s["channel"] for s in sent) == ["alertmanager", "apprise", "desk"]
    desk = next(s for s in sent if s["channel"] == "desk")
    assert desk["recipients"] == ["Alex Moreau"] and desk["text"]["zh-CN"].startswith("演练 演练 演练")
    failed = {f["channel"]: f["reason"] for f in _records(tmp_path, RecordType.INJECT_FAILED)}
    assert set(failed) == {"alertmanager", "pagerduty"}
    assert "ConnectError" in failed["alertmanager"]
    assert "T15_UNSET_URL" in failed["pagerduty"] and "not set" in failed["pagerduty"]
    journal_text = (tmp_path / JOURNAL_NAME).read_text()
    assert str(receiver.port) not in journal_text, "channel URLs are secrets: never journaled"


def test_pagerduty_event_carries_the_routing_key_and_trigger(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T15_PD_URL", f"http://127.0.0.1:{receiver.port}/v2/enqueue")
    monkeypatch.setenv("T15_PD_KEY", "R0UTINGKEY0000000000000000000000")
    alert = Inject(
        id="alert",
        kind="alert",
        to=("msp",),
        text=ALERT_TEXT,
        via=(Channel("pagerduty", "env:T15_PD_URL", routing_key="env:T15_PD_KEY"),),
    )
    script, journal, book, _clock = _script(tmp_path, Exercise(alert=alert))
    book.start_impact(0.0)
    script.tick()
    script.stop()
    journal.close()
    ((path, event),) = receiver.bodies
    assert path == "/v2/enqueue"
    assert event["event_action"] == "trigger" and event["routing_key"] == "R0UTINGKEY0000000000000000000000"
    assert event["payload"]["severity"] == "critical" and event["payload"]["source"] == "bcdrill"
    assert "R0UTINGKEY" not in (tmp_path / JOURNAL_NAME).read_text()


def test_injects_go_out_at_their_offset_or_when_their_condition_holds(tmp_path: Path) -> None:
    injects = (
        Inject(id="customer-calls", to=("client",), text={"en": "the shop shows an error"}, at_s=3.0),
        Inject(
            id="director-asks",
            to=("managing director",),
            text={"en": "when is it back?", "zh-CN": "什么时候恢复？"},
            when=Condition(state="late", step="msp.inform-client"),
            expect=Reaction("msp.inform-client", 60.0),
        ),
        Inject(
            id="thanks",
            to=("Alex Moreau",),
            text={"en": "thanks for the ack"},
            when=Condition(state="done", step="msp.acknowledge"),
        ),
    )
    script, journal, book, clock = _script(tmp_path, Exercise(injects=injects))
    book.start_impact(0.0)
    script.tick()
    assert _records(tmp_path, RecordType.INJECT_SENT) == []
    clock.advance(3.0)
    script.tick()
    assert [s["inject"] for s in _records(tmp_path, RecordType.INJECT_SENT)] == ["customer-calls"]
    assert book.record(Ack("msp.acknowledge", "Alex Moreau"))
    script.tick()
    clock.advance(15 * 60 - 3.0)  # exactly at inform-client's 15-minute target: not late yet
    script.tick()
    assert [s["inject"] for s in _records(tmp_path, RecordType.INJECT_SENT)] == ["customer-calls", "thanks"]
    clock.advance(0.5)
    script.tick()
    sent = _records(tmp_path, RecordType.INJECT_SENT)
    assert [s["inject"] for s in sent] == ["customer-calls", "thanks", "director-asks"]
    director = sent[-1]
    assert director["recipients"] == ["Tom Becker"] and director["trigger"] == "when msp.inform-client late"
    assert director["expect"] == {"step": "msp.inform-client", "within_s": 60.0}
    script.tick()
    assert len(_records(tmp_path, RecordType.INJECT_SENT)) == 3, "each inject goes out once"
    script.stop()
    journal.close()


def test_adhoc_inject_from_a_controller_is_sent_and_bad_input_refused(tmp_path: Path) -> None:
    script, journal, book, _clock = _script(tmp_path, Exercise())
    script.start()
    book.start_impact(0.0)
    inject_id = write_adhoc_inject(tmp_path, "client", "供应商可以帮你接电话订单", language="zh-CN")
    script.stop()
    journal.close()
    (sent,) = _records(tmp_path, RecordType.INJECT_SENT)
    assert sent["inject"] == inject_id and sent["adhoc"] is True
    assert sent["text"] == {"zh-CN": "演练 演练 演练 — 供应商可以帮你接电话订单 — 演练 演练 演练"}
    assert sent["recipients"] == ["Li Wei", "Tom Becker"]
    from engine.errors import InputError

    with pytest.raises(InputError, match="language"):
        write_adhoc_inject(tmp_path, "client", "hello", language="fr")
    with pytest.raises(InputError, match="characters"):
        write_adhoc_inject(tmp_path, "client", "   ")


def test_recipients_match_party_role_or_name_case_insensitively() -> None:
    assert [p.name for p in recipients(("Shop Manager",), PEOPLE)] == ["Li Wei"]
    assert [p.name for p in recipients(("msp", "tom becker"), PEOPLE)] == ["Alex Moreau", "Tom Becker"]
    assert recipients(("nobody",), PEOPLE) == []


def test_bcdrill_inject_queues_an_adhoc_inject_and_refuses_bad_input(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    run_dir = tmp_path / "20261129T000000Z-storefront-exercise-abcd"
    (run_dir / "inbox").mkdir(parents=True)
    (run_dir / JOURNAL_NAME).write_text("")
    ok = run_cli("inject", str(run_dir), "--to", "shop manager", "--lang", "zh-CN", "--text", "供应商来电")
    assert ok.returncode == 0, ok.stderr
    (queued,) = (run_dir / "injects").glob("*.json")
    data = json.loads(queued.read_text())
    assert data["to"] == "shop manager" and data["text"] == {"zh-CN": "供应商来电"}
    assert ok.stdout.strip() == f"inject {data['id']} queued for shop manager"
    bad = run_cli("inject", str(run_dir), "--to", "client", "--lang", "fr", "--text", "bonjour")
    assert bad.returncode == 2 and "language 'fr'" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr
