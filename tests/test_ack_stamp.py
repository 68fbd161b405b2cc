"""An ack counts at the moment the person acted: the client's stamp, inside the transit window.

The rule is pure (:func:`engine.run.stamps.decide_stamp`); the StepBook journals it; the real
``bcdrill ack`` process stamps its own start from the kernel; the desk's API passes a claim on.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.clock import FakeClock, RunClock
from engine.record.journal import JOURNAL_NAME, Journal
from engine.record.records import RecordType
from engine.record.runstore import write_owner
from engine.run.responses import Ack, AckInbox, StepBook, write_ack
from engine.run.stamps import MAX_TRANSIT_S, decide_stamp
from engine.spec.loader import load_playbook
from reports.debrief.compose import build_debrief
from reports.testing import ScriptedRun, step
from tests.conftest import BCDRILL, REPO
from tests.journal_helpers import records
from tests.test_desk import Harness, make_harness

PLAYBOOK = REPO / "playbooks" / "storefront-down.yaml"


# ---------------------------------------------------------------- the rule


def test_claim_inside_the_transit_window_is_used() -> None:
    decision = decide_stamp(claimed=100.0, sent=100.2, received=100.3)
    assert decision.source == "client" and decision.at == 100.0 and decision.reason == ""


def test_no_claim_means_receipt() -> None:
    assert decide_stamp(None, None, 50.0).source == "receipt"


def test_claim_after_the_send_loses_and_says_why() -> None:
    decision = decide_stamp(claimed=101.0, sent=100.2, received=100.3)
    assert decision.source == "receipt" and decision.at == 100.3
    assert "after the ack was sent" in decision.reason


def test_claim_older_than_the_window_loses_and_says_why() -> None:
    decision = decide_stamp(claimed=100.0 - MAX_TRANSIT_S - 0.5, sent=None, received=100.0)
    assert decision.source == "receipt" and decision.at == 100.0
    assert "transit window" in decision.reason


# ---------------------------------------------------------------- the StepBook


Book = tuple[StepBook, FakeClock, Path]  # the steps, the run's clock, the run folder


@pytest.fixture
def book(tmp_path: Path) -> Iterator[Book]:
    clock = FakeClock()
    journal_path = tmp_path / JOURNAL_NAME
    book = StepBook(load_playbook(PLAYBOOK), Journal(journal_path, clock), clock)
    clock.advance(10)
    book.start_impact(clock.now())
    clock.advance(20)  # now: 30 s into the run, 20 s after impact
    yield book, clock, tmp_path


@pytest.fixture
def just_after_impact(tmp_path: Path) -> Book:
    """Impact started at 10 s into the run; now: half a second later."""
    clock = FakeClock()
    steps = StepBook(load_playbook(PLAYBOOK), Journal(tmp_path / JOURNAL_NAME, clock), clock)
    clock.advance(10)
    steps.start_impact(clock.now())
    clock.advance(0.5)
    return steps, clock, tmp_path


def _epoch(clock: FakeClock, offset: float) -> float:
    return clock.utc(offset).timestamp()


def test_stepbook_counts_the_claimed_moment(book: Book) -> None:
    steps, clock, run_dir = book
    assert steps.record(Ack("msp.acknowledge", "alex", claimed_at=_epoch(clock, 29.6)))
    (rec,) = [r for r in records(run_dir) if r["type"] == RecordType.STEP_RECORDED]
    assert rec["data"]["stamp"] == "client"
    assert rec["data"]["acted_t"] == pytest.approx(29.6, abs=1e-6)
    assert steps.recorded_at("msp.acknowledge") == pytest.approx(29.6, abs=1e-6)


def test_stepbook_keeps_receipt_for_a_stale_claim(book: Book) -> None:
    steps, clock, run_dir = book
    assert steps.record(Ack("msp.acknowledge", "alex", claimed_at=_epoch(clock, 12.0)))
    (rec,) = [r for r in records(run_dir) if r["type"] == RecordType.STEP_RECORDED]
    assert rec["data"]["stamp"] == "receipt" and "acted_t" not in rec["data"]
    assert "transit window" in rec["data"]["stamp_reason"]
    assert steps.recorded_at("msp.acknowledge") == pytest.approx(30.0)


def test_stepbook_counts_an_ack_at_its_arrival_at_the_desk(book: Book) -> None:
    """The desk got the ack 0.3 s before its thread reached the engine: the arrival counts,
    and a claim is checked against it."""
    steps, clock, run_dir = book
    assert steps.record(Ack("msp.acknowledge", "alex", arrived_at=_epoch(clock, 29.7)))
    assert steps.record(
        Ack(
            "msp.declare",
            "sam",
            claimed_at=_epoch(clock, 29.8),
            sent_at=_epoch(clock, 29.7),
            arrived_at=_epoch(clock, 29.7),
        )
    )
    acked, declared = [r["data"] for r in records(run_dir) if r["type"] == RecordType.STEP_RECORDED]
    assert acked["stamp"] == "receipt" and acked["acted_t"] == pytest.approx(29.7, abs=1e-6)
    assert steps.recorded_at("msp.acknowledge") == pytest.approx(29.7, abs=1e-6)
    # stamped after it was sent: the claim loses to the arrival, not to the engine's later receipt
    assert declared["stamp"] == "receipt" and declared["acted_t"] == pytest.approx(29.7, abs=1e-6)


def test_an_ack_that_arrived_as_the_fault_was_applied_counts_at_impact_start(just_after_impact: Book) -> None:
    steps, clock, _ = just_after_impact
    assert steps.record(Ack("msp.acknowledge", "alex", arrived_at=_epoch(clock, 9.9)))
    assert steps.recorded_at("msp.acknowledge") == pytest.approx(10.0)


def test_stepbook_refuses_a_claim_before_impact(just_after_impact: Book) -> None:
    steps, clock, tmp_path = just_after_impact
    assert steps.record(Ack("msp.acknowledge", "alex", claimed_at=_epoch(clock, 9.5)))
    (rec,) = [r for r in records(tmp_path) if r["type"] == RecordType.STEP_RECORDED]
    assert rec["data"]["stamp"] == "receipt"
    assert rec["data"]["stamp_reason"] == "client stamp is before impact start"


def test_debrief_times_the_step_at_the_accepted_stamp(tmp_path: Path) -> None:
    run = ScriptedRun(tmp_path).start(steps=(step("msp", "acknowledge", 120),))
    run.at(10).inject("stop-web")
    run.at(70).record(
        RecordType.STEP_RECORDED,
        step="msp.acknowledge",
        party="msp",
        by="alex",
        source="ack",
        note="",
        stamp="client",
        acted_t=69.75,
    )
    run.at(90).revert("stop-web").end()
    from engine.record.journal import read_journal

    debrief = build_debrief(read_journal(tmp_path / JOURNAL_NAME))
    (ack,) = [s for s in debrief.steps if s.id == "acknowledge"]
    assert ack.actual_s == pytest.approx(59.75)


# ---------------------------------------------------------------- the real processes


def test_ack_command_records_the_moment_it_was_started(tmp_path: Path) -> None:
    """The journaled time is within 50 ms of the moment the command was started."""
    runs = tmp_path / "runs"
    run_dir = runs / "20261129T000000Z-ack-test"
    run_dir.mkdir(parents=True)
    clock = RunClock()
    book = StepBook(load_playbook(PLAYBOOK), Journal(run_dir / JOURNAL_NAME, clock), clock)
    inbox = AckInbox(run_dir, book)
    write_owner(run_dir)
    book.start_impact(clock.now() - 1.0)  # the fault took effect a second ago
    inbox.start()
    try:
        started = time.time()
        proc = subprocess.run(
            [BCDRILL, "ack", run_dir.name, "msp.acknowledge", "--by", "Alex", "--runs", str(runs)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "BCDRILL_PDF": "off"},
        )
        answered = time.time() - started
        assert proc.returncode == 0, proc.stderr
        deadline = time.monotonic() + 10
        while book.recorded_at("msp.acknowledge") is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        inbox.stop()
    acted_t = book.recorded_at("msp.acknowledge")
    assert acted_t is not None, "the ack never reached the journal"
    (rec,) = [r for r in records(run_dir) if r["type"] == RecordType.STEP_RECORDED]
    assert rec["data"]["stamp"] == "client", (rec["data"].get("stamp_reason"), answered)
    recorded_wall = clock.utc(acted_t).timestamp()
    assert abs(recorded_wall - started) <= 0.05, (recorded_wall - started, answered)


@pytest.fixture
def desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    harness = make_harness(tmp_path, monkeypatch)
    try:
        yield harness
    finally:
        harness.desk.stop()


def test_desk_api_passes_the_claim_on(desk: Harness) -> None:
    desk.book.start_impact(desk.clock.now() - 5)  # the fault took effect 5 s ago
    claimed = time.time() - 0.4
    token = desk.cards["Alex Moreau"].token
    headers = {"Authorization": f"Bearer {token}"}
    body = {"step": "acknowledge", "note": "", "claimed_at": claimed}
    response = httpx.post(f"{desk.url}/api/ack", json=body, headers=headers)
    assert response.status_code == 200, response.text
    stale = {"step": "declare", "claimed_at": time.time() - 3600}
    assert httpx.post(f"{desk.url}/api/ack", json=stale, headers=headers).status_code == 200
    unclaimed = {"step": "inform-client"}  # a client that sends no stamp: its arrival counts
    with httpx.Client() as http:  # made beforehand: its TLS context alone takes ~0.1 s
        sent = time.time()
        assert http.post(f"{desk.url}/api/ack", json=unclaimed, headers=headers).status_code == 200
    records = {r["data"]["step"]: r for r in desk.recorded()}
    ack = records["msp.acknowledge"]["data"]
    assert ack["stamp"] == "client"
    assert desk.clock.utc(ack["acted_t"]).timestamp() == pytest.approx(claimed, abs=0.005)
    declare = records["msp.declare"]["data"]
    assert declare["stamp"] == "receipt" and "transit window" in declare["stamp_reason"]
    for key in ("msp.declare", "msp.inform-client"):  # counted at the desk, before the engine's record
        assert records[key]["data"]["acted_t"] <= records[key]["t"]
    arrived = desk.clock.utc(records["msp.inform-client"]["data"]["acted_t"]).timestamp()
    assert sent <= arrived < sent + 0.05


def test_write_ack_carries_the_claim(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    path = write_ack(tmp_path, Ack("msp.acknowledge", "alex", claimed_at=123.5))
    assert '"claimed_at": 123.5' in path.read_text()


def test_a_claim_within_the_clock_grain_of_impact_counts_at_impact(just_after_impact: Book) -> None:
    steps, clock, tmp_path = just_after_impact
    assert steps.record(Ack("msp.acknowledge", "alex", claimed_at=_epoch(clock, 9.99)))
    (rec,) = [r for r in records(tmp_path) if r["type"] == RecordType.STEP_RECORDED]
    assert rec["data"]["stamp"] == "client" and rec["data"]["acted_t"] == pytest.approx(10.0)
