"""Findings of the desk's security review, each over the real desk (uvicorn on loopback) and
the engine's real StepBook, journal and ack inbox.

* a body nested too deep to parse, or any unexpected failure, gets the uniform refusal;
* outside the drill (before the first fault, after ENDEX) every ack gets the same answer;
* an out-of-range "done at" claim is no claim, at the desk and in the ack inbox;
* a controller of the client sees what the client's debrief shows, not the MSP's internals.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from drills.desk.recording import Outcome
from drills.desk.webhooks import sign
from engine.record.inbox import read_ack
from engine.run.responses import AckInbox
from tests.test_desk import (
    HOOK_SECRET,
    Harness,
    _csrf,
    _shape,
    harness,  # noqa: F401 — a fixture
)
from tests.test_desk_exercise import Exercise, exercise  # noqa: F401 — a fixture
from tests.test_desk_exercise import _csrf as _csrf_of

DEEP = b"[" * 50_000  # json.loads raises RecursionError, not ValueError


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- 1. the uniform refusal


def test_a_body_nested_too_deep_gets_the_uniform_refusal(harness: Harness) -> None:
    harness.impact()
    url, token = harness.url, harness.cards["Priya Shah"].token
    stamp = str(int(time.time()))
    hook_headers = {
        "X-Bcdrill-Timestamp": stamp,
        "X-Bcdrill-Signature": sign(HOOK_SECRET.encode(), stamp, DEEP),
        "X-Bcdrill-Delivery": "deep-1",
    }
    hostile = {
        "ack, valid token": httpx.post(f"{url}/api/ack", content=DEEP, headers=_bearer(token)),
        "ack, unknown token": httpx.post(f"{url}/api/ack", content=DEEP, headers=_bearer("x")),
        "hotwash, valid token": httpx.post(f"{url}/api/hotwash", content=DEEP, headers=_bearer(token)),
        "hotwash, unknown token": httpx.post(f"{url}/api/hotwash", content=DEEP, headers=_bearer("x")),
        "signed webhook": httpx.post(f"{url}/hooks/servicedesk", content=DEEP, headers=hook_headers),
    }
    reference = _shape(httpx.get(f"{url}/nothing-here"))
    different = {name: _shape(r)[0] for name, r in hostile.items() if _shape(r) != reference}
    assert not different, different
    assert harness.recorded() == []


def test_an_unexpected_failure_gets_the_uniform_refusal_and_one_log_line(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.impact()
    token = harness.cards["Priya Shah"].token

    def broken(*_args: object) -> Outcome:
        raise LookupError("secret detail of the body")

    monkeypatch.setattr(harness.desk.desk.recorder, "ack", broken)
    reference = _shape(httpx.get(f"{harness.url}/nothing-here"))
    capsys.readouterr()
    response = httpx.post(
        f"{harness.url}/api/ack", json={"step": "client.report", "note": "n0te"}, headers=_bearer(token)
    )
    assert _shape(response) == reference
    captured = capsys.readouterr()
    logged = captured.out + captured.err
    (line,) = [line for line in logged.splitlines() if "desk.request_failed" in line]
    assert "LookupError" in line and "/api/ack" in line  # key=value on a terminal, JSON in CI
    assert token not in logged and "n0te" not in logged and "secret detail" not in logged
    assert "Traceback" not in logged


# ---------------------------------------------------------------- 2. no answer key outside the drill


def _ack_shapes(url: str, token: str) -> dict[str, tuple[int, bytes, tuple[tuple[str, str], ...]]]:
    guesses = {
        "own step": "client.report",
        "own step, short": "report",
        "no such step": "client.nosuch",
        "the other party's step": "msp.declare",
        "a probe's step": "msp.restore",
    }
    return {
        name: _shape(httpx.post(f"{url}/api/ack", json={"step": step}, headers=_bearer(token)))
        for name, step in guesses.items()
    }


def test_before_the_first_fault_every_ack_gets_the_same_answer(harness: Harness) -> None:
    shapes = _ack_shapes(harness.url, harness.cards["Priya Shah"].token)
    assert len(set(shapes.values())) == 1, shapes
    status, content, _headers = shapes["own step"]
    assert status == 409 and json.loads(content) == {
        "status": "rejected",
        "step": "",
        "reason": "no fault has been applied yet",
    }
    assert harness.recorded() == []


def test_after_endex_every_ack_gets_the_same_answer(exercise: Exercise) -> None:
    token = exercise.cards["Li Wei"].token
    exercise.impact()
    live = _ack_shapes(exercise.url, token)
    assert live["no such step"][0] == 404 and live["own step"][0] != 404  # during the drill: as before
    exercise.book.close()  # ENDEX, as the runner does it
    exercise.book.keep_evaluating()
    exercise.hotwash.open(60.0)
    shapes = _ack_shapes(exercise.url, token)
    decision = httpx.post(
        f"{exercise.url}/api/ack", json={"step": "client.nosuch", "choice": "x"}, headers=_bearer(token)
    )
    assert len({*shapes.values(), _shape(decision)}) == 1, shapes
    assert json.loads(shapes["no such step"][1])["reason"] == "the drill has ended"


# ---------------------------------------------------------------- 3. out-of-range claims


def test_an_out_of_range_claim_is_no_claim_at_the_desk(harness: Harness) -> None:
    harness.impact()
    url = harness.url
    alex, priya = harness.cards["Alex Moreau"].token, harness.cards["Priya Shah"].token
    claims = {"msp.acknowledge": 10**400, "msp.declare": 1e300, "msp.inform-client": time.time() - 2 * 86_400}
    for step, claimed in claims.items():
        body = json.dumps({"step": step, "claimed_at": claimed})
        response = httpx.post(url + "/api/ack", content=body, headers=_bearer(alex))
        assert response.status_code == 200 and response.json()["status"] == "recorded", (step, response.text)
    with httpx.Client(base_url=url, follow_redirects=True) as browser:
        browser.get(f"/p/{priya}")
        csrf = _csrf(browser.get("/desk").text)
        done = browser.post("/desk/ack", data={"csrf": csrf, "step": "client.report", "claimed_at": "9" * 12})
    assert "Recorded: client.report" in done.text
    recorded = {r["data"]["step"]: r["data"] for r in harness.recorded()}
    assert set(recorded) == {*claims, "client.report"}
    assert all(d["stamp"] == "receipt" and "claimed_at" not in d for d in recorded.values()), recorded
    # a believable claim still counts (the engine's transit window decides)
    fair = httpx.post(
        url + "/api/ack", json={"step": "msp.mitigate", "claimed_at": time.time()}, headers=_bearer(alex)
    )
    assert fair.json()["status"] == "recorded"
    (mitigate,) = [r["data"] for r in harness.recorded() if r["data"]["step"] == "msp.mitigate"]
    assert mitigate["stamp"] == "client" and "claimed_at" in mitigate


def _drop(inbox: Path, name: str, content: str) -> None:
    tmp = inbox / f".{name}.tmp"
    tmp.write_text(content)
    os.replace(tmp, inbox / name)


def test_the_ack_inbox_survives_bad_files_and_records_the_next_ack(harness: Harness) -> None:
    harness.impact()
    run_dir, book = harness.run_dir, harness.book
    inbox = AckInbox(run_dir, book)
    inbox.start()
    try:
        bad = {
            "far.json": json.dumps({"step": "msp.declare", "by": "x", "claimed_at": 1e300}),
            "huge.json": '{"step": "msp.acknowledge", "by": "x", "claimed_at": 1' + "0" * 400 + "}",
            "deep.json": "[" * 50_000,
            "list.json": "[1, 2]",
        }
        for name, content in bad.items():
            _drop(run_dir / "inbox", name, content)
        deadline = time.monotonic() + 10
        while any((run_dir / "inbox" / n).exists() for n in bad) and time.monotonic() < deadline:
            time.sleep(0.02)
        _drop(run_dir / "inbox", "good.json", json.dumps({"step": "msp.mitigate", "by": "Alex Moreau"}))
        while book.recorded_at("msp.mitigate") is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert book.recorded_at("msp.mitigate") is not None, "the inbox thread died on a bad file"
        assert all((run_dir / "inbox" / "done" / n).exists() for n in bad), "bad files are moved aside"
    finally:
        inbox.stop()
    recorded = {r["data"]["step"]: r["data"] for r in harness.recorded()}
    # far-off claims are dropped: those steps count at their receipt
    assert "claimed_at" not in recorded["msp.declare"] and "acted_t" not in recorded["msp.declare"]
    assert "claimed_at" not in recorded["msp.acknowledge"]


def test_read_ack_keeps_a_believable_claim_only(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    now = time.time()
    for claimed, kept in ((now - 5, True), (now - 2 * 86_400, False), (1e300, False), ("soon", False)):
        path.write_text(json.dumps({"step": "msp.declare", "by": "x", "claimed_at": claimed}))
        ack = read_ack(path)
        assert ack is not None and (ack.claimed_at is not None) is kept, claimed
    path.write_text('{"step": "a", "by": "x", "claimed_at": 1' + "0" * 400 + "}")
    assert (ack := read_ack(path)) is not None and ack.claimed_at is None
    for content in ("[" * 50_000, "[1]", "{}", "not json"):
        path.write_text(content)
        assert read_ack(path) is None


# ---------------------------------------------------------------- 4. the client's controllers


def test_a_controller_of_the_client_does_not_see_the_msps_internals(exercise: Exercise) -> None:
    exercise.impact()
    eve = exercise.session("Eve Evans")
    observed = eve.post(
        "/desk/observe",
        data={"csrf": _csrf_of(eve.get("/desk").text), "kind": "improvement",
              "text": "MSP-INTERNAL on-call ignored the page", "internal": "1"},
    )  # fmt: skip
    assert observed.status_code == 200
    eve.post(
        "/desk/observe",
        data={"csrf": _csrf_of(eve.get("/desk").text), "kind": "strength", "text": "SHARED fast alert"},
    )
    alex = exercise.cards["Alex Moreau"].token
    note = {"step": "msp.acknowledge", "note": "MSP-NOTE vendor contract lapsed"}
    assert httpx.post(f"{exercise.url}/api/ack", json=note, headers=_bearer(alex)).status_code == 200
    li = exercise.cards["Li Wei"].token
    client_note = {"step": "client.report", "note": "CLIENT-NOTE called the MSP"}
    assert httpx.post(f"{exercise.url}/api/ack", json=client_note, headers=_bearer(li)).status_code == 200
    exercise.book.close()
    exercise.book.keep_evaluating()
    exercise.hotwash.open(60.0)
    answer = {"went_well": "MSP-HOTWASH blame the vendor", "confidence": 2, "internal": True}
    assert httpx.post(f"{exercise.url}/api/hotwash", json=answer, headers=_bearer(alex)).status_code == 200

    internal = ("MSP-INTERNAL", "MSP-NOTE", "MSP-HOTWASH")
    msp_page = exercise.session("Eve Evans").get("/desk").text
    assert all(marker in msp_page for marker in (*internal, "SHARED", "CLIENT-NOTE")), "the MSP sees it all"
    client_page = exercise.session("Wang Fang").get("/desk").text
    assert "SHARED fast alert" in client_page and "CLIENT-NOTE" in client_page
    assert "step msp.acknowledge by Alex Moreau" in client_page, "the step itself is shown, not its note"
    leaked = [marker for marker in internal if marker in client_page]
    assert not leaked, leaked


def test_an_ack_the_book_fails_on_does_not_stop_the_inbox(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever recording one ack raises, the acks after it (and the run's end) still count."""
    harness.impact()
    run_dir, book = harness.run_dir, harness.book
    record = book.record

    def failing(ack: Any) -> bool:
        if ack.step == "msp.declare":
            raise RuntimeError("a step the book cannot take")
        return record(ack)

    monkeypatch.setattr(book, "record", failing)
    inbox = AckInbox(run_dir, book)
    inbox.start()
    try:
        _drop(run_dir / "inbox", "a.json", json.dumps({"step": "msp.declare", "by": "Alex Moreau"}))
        time.sleep(0.05)
        _drop(run_dir / "inbox", "b.json", json.dumps({"step": "msp.mitigate", "by": "Alex Moreau"}))
        deadline = time.monotonic() + 10
        while book.recorded_at("msp.mitigate") is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert book.recorded_at("msp.mitigate") is not None, "the inbox thread died on one ack"
    finally:
        inbox.stop()  # drains again: must not raise either
    assert (run_dir / "inbox" / "done" / "a.json").exists()
