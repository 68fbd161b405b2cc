"""The desk as players see it in an evaluated exercise: messages, a blind list, decisions, zh-CN.

A real desk (uvicorn on loopback) over a real journal, with the playbook's script
(:class:`InjectScript`) sending the alert and injects; people use it over HTTP like a phone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from drills.desk.client import post_ack
from drills.desk.participants import Card, ParticipantStore
from drills.desk.service import DrillDesk
from engine.clock import RunClock
from engine.model.types import Participant, Playbook
from engine.record.journal import JOURNAL_NAME, Journal
from engine.record.records import RecordType
from engine.run.context import responder_context
from engine.run.hotwash import HotwashBook
from engine.run.injects import InjectScript, write_adhoc_inject
from engine.run.responses import Ack, StepBook
from engine.spec.loader import load_playbook
from tests.conftest import REPO
from tests.journal_helpers import records

SENT = RecordType.INJECT_SENT
PLAYBOOK = REPO / "playbooks" / "storefront-exercise.yaml"
CLIENT = "Demo Bakery Ltd"
SCALE = 0.002  # the customer calls at +0.24 s; inform-client is late after 1.8 s
PEOPLE = (
    Participant("Alex Moreau", "msp", "on-call engineer", "alex@msp.example"),
    Participant("Li Wei", "client", "shop manager", "li@bakery.example", language="zh-CN"),
    Participant("Tom Becker", "client", "managing director", "tom@bakery.example"),
    Participant("Eve Evans", "msp", "evaluator", "eve@msp.example"),
    Participant("Wang Fang", "client", "controller", "wang@bakery.example", language="zh-CN"),
)


@dataclass
class Exercise:
    url: str
    run_dir: Path
    book: StepBook
    cards: dict[str, Card]
    desk: DrillDesk
    script: InjectScript
    clock: RunClock
    hotwash: HotwashBook

    def impact(self) -> None:
        self.book.start_impact(self.clock.now())

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [r["data"] for r in records(self.run_dir) if r["type"] == kind]

    def session(self, name: str) -> httpx.Client:
        client = httpx.Client(base_url=self.url, follow_redirects=True)
        client.get(f"/p/{self.cards[name].token}")
        return client


def _start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, playbook: Playbook) -> Exercise:
    monkeypatch.setenv("BCDRILL_HOME", str(tmp_path / "home"))
    cards = {c.participant.name: c for c in ParticipantStore(CLIENT).issue(PEOPLE, "http://desk.invalid")}
    run_dir = tmp_path / "run-ex"
    (run_dir / "inbox").mkdir(parents=True)
    clock = RunClock()
    journal = Journal(run_dir / JOURNAL_NAME, clock)
    book = StepBook(playbook, journal, clock)
    hotwash = HotwashBook(journal, PEOPLE)
    script = InjectScript(playbook.exercise, playbook.steps, PEOPLE, journal, book, clock, run_dir)
    context = responder_context(
        playbook, book, hotwash, run_dir=run_dir, client=CLIENT, environment="ci",
        participants=PEOPLE, seed=1, clock=clock, options={"desk": "127.0.0.1:0"},
    )  # fmt: skip
    desk = DrillDesk(context)
    desk.start()
    script.start()
    return Exercise(desk.url, run_dir, book, cards, desk, script, clock, hotwash)


@pytest.fixture
def exercise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Exercise]:
    monkeypatch.delenv("BCDRILL_ALERT_WEBHOOK", raising=False)
    monkeypatch.delenv("BCDRILL_ALERT_APPRISE", raising=False)
    ex = _start(tmp_path, monkeypatch, load_playbook(PLAYBOOK).scaled(SCALE))
    try:
        yield ex
    finally:
        ex.script.stop()
        ex.desk.stop()


def _poll(what: str, check: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no csrf field"
    return found.group(1)


def test_players_get_messages_in_their_language_and_a_blind_list(exercise: Exercise) -> None:
    li, alex = exercise.session("Li Wei"), exercise.session("Alex Moreau")
    assert "演练服务台" in li.get("/desk").text and "data-step" not in li.get("/desk").text  # not live yet
    exercise.impact()
    _poll(
        "the customer's call",
        lambda: any(s["inject"] == "customer-calls" for s in exercise.of(SENT)),
    )

    page = li.get("/desk").text
    assert '<html lang="zh-CN">' in page and "演练服务台" in page and "消息" in page
    assert "演练 演练 演练 — 你们的网店报错，我无法付款。怎么回事？ — 演练 演练 演练" in page
    assert "EXERCISE EXERCISE EXERCISE" not in page, "the zh-CN page carries the Chinese mark"
    # blind: no targets, no numbering, no order — the client's manual actions alphabetically
    assert "目标" not in page and "within" not in page and not re.search(r'class="title">\d+\.', page)
    titles = re.findall(r'<div class="title">([^<]+)</div>', page)
    assert titles == sorted(titles, key=str.casefold) and len(titles) == 4
    assert "msp." not in page and "the storefront answers" not in page.lower()

    msp_page = alex.get("/desk").text
    assert "EXERCISE EXERCISE EXERCISE — [FIRING] storefront HTTP check failing" in msp_page
    assert "你们的网店" not in msp_page, "the customer's call went to the client only"
    assert "Storefront answers again" not in msp_page, "probe-recorded steps are not players' actions"
    assert "target" not in msp_page

    # the alert's outside channels are not configured here: journaled as failed, never dropped
    failed = exercise.of("inject.failed")
    assert {f["channel"] for f in failed} == {"alertmanager", "apprise"}
    assert all("is not set" in f["reason"] for f in failed)

    # the same messages through the API, for tools and simulated people
    token = exercise.cards["Li Wei"].token
    api = httpx.get(f"{exercise.url}/api/messages", headers={"Authorization": f"Bearer {token}"}).json()
    assert [m["inject"] for m in api["messages"]] == ["customer-calls"]
    bad = httpx.get(f"{exercise.url}/api/messages", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 404


def test_decision_is_asked_with_options_and_recorded_with_its_rationale(exercise: Exercise) -> None:
    alex = exercise.session("Alex Moreau")
    exercise.impact()
    page = alex.get("/desk").text
    assert "Restart the web tier in place, or fail over to the standby?" in page
    assert 'value="restart-in-place"' in page and 'value="fail-over"' in page
    # a wrong option is refused by the engine, with the reason
    refused = post_ack(
        exercise.url, exercise.cards["Alex Moreau"].token, "msp.choose-recovery", "x", choice="reboot"
    )
    assert not refused.recorded and "choose one of" in refused.reason
    # a plain "done" cannot record a decision: it needs a choice
    csrf = _csrf(page)
    plain = alex.post("/desk/ack", data={"csrf": csrf, "step": "msp.choose-recovery"})
    assert plain.status_code == 404
    done = alex.post(
        "/desk/decide",
        data={"csrf": csrf, "step": "msp.choose-recovery", "choice": "fail-over", "note": "standby is warm"},
    )
    assert "Recorded: msp.choose-recovery" in done.text and "decided: fail-over" in done.text
    (decision,) = [s for s in exercise.of("step.recorded") if s["step"] == "msp.choose-recovery"]
    assert decision["choice"] == "fail-over" and decision["note"] == "standby is warm"
    assert decision["by"] == "Alex Moreau"
    # the client side is not asked
    assert "fail-over" not in exercise.session("Tom Becker").get("/desk").text


def test_free_text_entries_go_to_the_evaluator_and_adhoc_injects_arrive(exercise: Exercise) -> None:
    tom = exercise.session("Tom Becker")
    exercise.impact()
    page = tom.get("/desk").text
    logged = tom.post(
        "/desk/entry", data={"csrf": _csrf(page), "text": "called our <b>bank</b> about refunds"}
    )
    assert "Logged for the evaluator" in logged.text
    (entry,) = exercise.of(RecordType.ENTRY_LOGGED)
    assert entry == {"by": "Tom Becker", "party": "client", "text": "called our <b>bank</b> about refunds"}
    assert not any(s["by"] == "Tom Becker" for s in exercise.of("step.recorded")), "nothing mapped by itself"

    write_adhoc_inject(exercise.run_dir, "managing director", "The bank asks whether card data leaked.")
    _poll("the ad-hoc inject", lambda: any(s["adhoc"] for s in exercise.of(SENT)))
    page = tom.get("/desk").text
    assert "EXERCISE EXERCISE EXERCISE — The bank asks whether card data leaked." in page
    assert "The bank asks" not in exercise.session("Li Wei").get("/desk").text


def test_checklist_mode_shows_the_ordered_steps_with_targets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    playbook = load_playbook(PLAYBOOK).scaled(SCALE)
    playbook = replace(playbook, exercise=replace(playbook.exercise, players="checklist"))
    ex = _start(tmp_path, monkeypatch, playbook)
    try:
        ex.impact()
        page = ex.session("Alex Moreau").get("/desk").text
        titles = re.findall(r'<div class="title">([^<]+)</div>', page)
        assert titles[:2] == [
            "1. On-call engineer acknowledges the storefront alert",
            "2. Incident declared and priority set",
        ]
        assert "target: within" in page
    finally:
        ex.script.stop()
        ex.desk.stop()


def test_a_step_with_an_update_cadence_takes_status_updates_until_its_end(exercise: Exercise) -> None:
    alex = exercise.session("Alex Moreau")
    exercise.impact()
    csrf = _csrf(alex.get("/desk").text)
    first = alex.post("/desk/ack", data={"csrf": csrf, "step": "msp.inform-client", "note": "told Priya"})
    assert "Recorded: msp.inform-client" in first.text
    assert re.search(r'data-step="msp.inform-client".*?Send update', first.text, re.S), "update button"
    again = alex.post("/desk/ack", data={"csrf": csrf, "step": "msp.inform-client", "note": "ETA 10 min"})
    assert "Recorded: msp.inform-client" in again.text
    (update,) = exercise.of(RecordType.STEP_UPDATE)
    assert update["note"] == "ETA 10 min" and update["by"] == "Alex Moreau"
    assert len([s for s in exercise.of("step.recorded") if s["step"] == "msp.inform-client"]) == 1
    # once the service is restored, updates end: a further one is a plain duplicate
    assert exercise.book.record(Ack("msp.restore", "probe:storefront", source="probe"))
    late = alex.post("/desk/ack", data={"csrf": csrf, "step": "msp.inform-client"})
    assert "already recorded" in late.text and len(exercise.of(RecordType.STEP_UPDATE)) == 1


def test_evaluator_sees_both_parties_live_and_records_observations_and_ratings(exercise: Exercise) -> None:
    eve, li = exercise.session("Eve Evans"), exercise.session("Li Wei")
    exercise.impact()
    assert exercise.book.record(Ack("client.report", "Li Wei", note="called the service desk"))
    _poll("the alert", lambda: any(s["inject"] == "alert" for s in exercise.of(SENT)))
    page = eve.get("/desk").text
    assert "Evaluator desk" in page and 'data-party="msp"' in page and 'data-party="client"' in page
    assert 'data-step="client.report"' in page and 'data-step="msp.acknowledge"' in page
    assert "step client.report by Li Wei — called the service desk" in page  # the live timeline
    assert "alert → msp" in page and "target" in page
    csrf = _csrf(page)
    observed = eve.post(
        "/desk/observe",
        data={
            "csrf": csrf,
            "kind": "improvement",
            "step": "client.report",
            "capability": "communication",
            "text": "reported without the drill code",
            "internal": "1",
        },
    )
    assert "Recorded: observation" in observed.text, re.findall(r"class=.flash[^>]*>([^<]*)", observed.text)
    rated = eve.post(
        "/desk/rate",
        data={"csrf": csrf, "capability": "communication", "rating": "S", "rationale": "on time, no ETA"},
    )
    assert "Recorded: rating" in rated.text and "communication: S (Eve Evans)" in rated.text
    (observation,) = exercise.of(RecordType.OBSERVATION_RECORDED)
    assert observation == {
        "by": "Eve Evans",
        "kind": "improvement",
        "step": "client.report",
        "capability": "communication",
        "text": "reported without the drill code",
        "internal": True,
    }
    (rating,) = exercise.of(RecordType.RATING_RECORDED)
    assert rating == {
        "by": "Eve Evans",
        "capability": "communication",
        "rating": "S",
        "rationale": "on time, no ETA",
    }
    bad = eve.post("/desk/rate", data={"csrf": csrf, "capability": "x", "rating": "A", "rationale": "y"})
    assert "Not recorded" in bad.text and len(exercise.of(RecordType.RATING_RECORDED)) == 1
    # players cannot evaluate, and see no evaluator view
    li_page = li.get("/desk").text
    assert "Evaluator desk" not in li_page
    forged = li.post(
        "/desk/rate", data={"csrf": _csrf(li_page), "capability": "x", "rating": "P", "rationale": "y"}
    )
    assert forged.status_code == 404 and len(exercise.of(RecordType.RATING_RECORDED)) == 1


def test_evaluator_maps_entries_to_steps_at_the_entrys_time_and_corrects_a_wrong_step(
    exercise: Exercise,
) -> None:
    eve, tom, alex = (exercise.session(n) for n in ("Eve Evans", "Tom Becker", "Alex Moreau"))
    exercise.impact()
    for text in ("phoned the <b>service desk</b> about the shop", "tidied my desk"):
        tom.post("/desk/entry", data={"csrf": _csrf(tom.get("/desk").text), "text": text})
    first, second = (r for r in records(exercise.run_dir) if r["type"] == RecordType.ENTRY_LOGGED)
    page = eve.get("/desk").text
    assert f'data-entry="{first["seq"]}"' in page and "phoned the &lt;b&gt;service desk&lt;/b&gt;" in page
    csrf = _csrf(page)
    # a step of another party, an unknown entry and a forged CSRF are refused
    wrong = eve.post("/desk/map", data={"csrf": csrf, "entry": str(first["seq"]), "step": "msp.acknowledge"})
    assert "Not recorded: msp.acknowledge is not a step of the client party" in wrong.text
    assert eve.post("/desk/map", data={"csrf": csrf, "entry": "99999", "step": "-"}).status_code == 200
    assert not exercise.of(RecordType.ENTRY_MAPPED)
    forged = eve.post("/desk/map", data={"csrf": "x", "entry": str(first["seq"]), "step": "client.report"})
    assert forged.status_code == 404
    mapped = eve.post("/desk/map", data={"csrf": csrf, "entry": str(first["seq"]), "step": "client.report"})
    assert "Recorded: client.report" in mapped.text
    eve.post("/desk/map", data={"csrf": csrf, "entry": str(second["seq"]), "step": "-"})
    assert exercise.of(RecordType.ENTRY_MAPPED) == [
        {"entry": first["seq"], "step": "client.report", "by": "Eve Evans"},
        {"entry": second["seq"], "step": "", "by": "Eve Evans"},
    ]
    report = next(r for r in records(exercise.run_dir) if r["type"] == "step.recorded")
    assert report["data"]["acted_t"] == first["t"] < report["t"], "done at the entry's time"
    assert report["data"]["by"] == "Tom Becker" and report["data"]["source"] == "evaluator"
    assert report["data"]["note"].startswith("mapped by evaluator Eve Evans")
    again = eve.post("/desk/map", data={"csrf": csrf, "entry": str(first["seq"]), "step": "client.report"})
    assert "already mapped" in again.text
    # players cannot map; a player's wrongly picked action is moved by the evaluator
    assert (
        tom.post(
            "/desk/map", data={"csrf": _csrf(tom.get("/desk").text), "entry": "1", "step": ""}
        ).status_code
        == 404
    )
    alex.post("/desk/ack", data={"csrf": _csrf(alex.get("/desk").text), "step": "msp.declare"})
    moved = eve.post("/desk/correct", data={"csrf": csrf, "step": "msp.declare", "to": "msp.acknowledge"})
    assert "Recorded: msp.declare → msp.acknowledge" in moved.text
    (correction,) = exercise.of(RecordType.STEP_CORRECTED)
    assert (correction["step"], correction["to"], correction["by"]) == (
        "msp.declare",
        "msp.acknowledge",
        "Eve Evans",
    )
    assert exercise.book.recorded_at("msp.declare") is None and exercise.book.recorded_at("msp.acknowledge")
    assert 'data-step="msp.declare"' in eve.get("/desk").text
    assert re.search(r'data-step="msp.declare">.*?open</td>', eve.get("/desk").text, re.S)


def test_the_evaluator_page_is_in_the_evaluators_language(exercise: Exercise) -> None:
    wang = exercise.session("Wang Fang")
    assert "评估员服务台" in wang.get("/desk").text  # before impact too
    exercise.impact()
    exercise.book.log_entry("Li Wei", "client", "给银行打了电话")
    page = wang.get("/desk").text
    assert '<html lang="zh-CN">' in page and "评估员服务台" in page and "时间线" in page
    assert "参演人员的自行记录" in page and "归类" in page and "记录观察" in page and "HSEEP 评级" in page
    assert "Evaluator desk" not in page and "Timeline" not in page and "Record observation" not in page
    assert "网店经理向服务商服务台报告故障" in page  # step titles in Chinese from the playbook
    rated = wang.post(
        "/desk/rate", data={"csrf": _csrf(page), "capability": "沟通", "rating": "P", "rationale": "及时"}
    )
    assert "已记录：rating。" in rated.text


def test_after_endex_each_participant_answers_the_hotwash_once_in_their_language(exercise: Exercise) -> None:
    alex, li = exercise.session("Alex Moreau"), exercise.session("Li Wei")
    exercise.impact()
    assert "hotwash" not in alex.get("/desk").text, "no survey during the drill"
    exercise.book.log_entry("Alex Moreau", "msp", "paged the on-call lead")
    exercise.book.close()
    exercise.book.keep_evaluating()
    exercise.hotwash.open(60.0)
    # players can no longer act, but evaluators still map entries during the hotwash
    assert (
        "the drill has ended"
        in alex.post("/desk/ack", data={"csrf": _csrf(alex.get("/desk").text), "step": "msp.declare"}).text
    )
    eve = exercise.session("Eve Evans")
    (entry,) = [r for r in records(exercise.run_dir) if r["type"] == RecordType.ENTRY_LOGGED]
    mapped = eve.post(
        "/desk/map",
        data={"csrf": _csrf(eve.get("/desk").text), "entry": str(entry["seq"]), "step": "msp.acknowledge"},
    )
    assert "Recorded: msp.acknowledge" in mapped.text
    page, li_page = alex.get("/desk").text, li.get("/desk").text
    assert "Hotwash: your view of the drill" in page and 'name="internal"' in page
    assert "演练后复盘" in li_page and "哪些方面做得好" in li_page and 'name="internal"' not in li_page
    bad = alex.post("/desk/hotwash", data={"csrf": _csrf(page), "went_well": "alert", "confidence": "9"})
    assert "Not recorded: confidence must be a whole number from 1 to 5" in bad.text
    done = alex.post(
        "/desk/hotwash",
        data={"csrf": _csrf(page), "went_well": "<script>x</script> fast alert", "improve": "ETA sooner",
              "confidence": "4", "internal": "1"},
    )  # fmt: skip
    assert "Thank you: your hotwash answers are recorded." in done.text and "<script>x" not in done.text
    again = alex.post("/desk/hotwash", data={"csrf": _csrf(page), "improve": "x", "confidence": "2"})
    assert "already answered" in again.text
    token = exercise.cards["Li Wei"].token
    api = httpx.Client(base_url=exercise.url, headers={"Authorization": f"Bearer {token}"})
    assert api.get("/api/messages").json()["hotwash"] == "open"
    assert api.post("/api/hotwash", json={"went_well": "x" * 501, "confidence": 3}).status_code == 409
    assert api.post("/api/hotwash", json={"went_well": "电话订单很顺利", "confidence": 5}).status_code == 200
    assert api.get("/api/messages").json()["hotwash"] == "answered" and "谢谢" in li.get("/desk").text
    forged = httpx.post(
        f"{exercise.url}/api/hotwash", json={"confidence": 3}, headers={"Authorization": "Bearer x"}
    )
    assert forged.status_code == 404
    answers = exercise.of(RecordType.HOTWASH_ANSWERED)
    assert [(a["by"], a["confidence"], a["internal"], a["language"]) for a in answers] == [
        ("Alex Moreau", 4, True, "en"),
        ("Li Wei", 5, False, "zh-CN"),
    ]
    assert answers[0]["went_well"] == "<script>x</script> fast alert"  # kept as written, escaped on display
    timeline = exercise.session("Eve Evans").get("/desk").text  # the evaluator sees the answers live
    assert "Alex Moreau: 4/5 — &lt;script&gt;x&lt;/script&gt; fast alert / ETA sooner" in timeline
    exercise.hotwash.close()
    assert api.post("/api/hotwash", json={"went_well": "late", "confidence": 3}).status_code == 409
