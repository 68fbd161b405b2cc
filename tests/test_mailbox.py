"""The drill mailbox: a real SMTP conversation (smtplib) records a communication step.

The receiver (aiosmtpd) runs on loopback for the run. A message quoting the drill code from
a participant a rule names records the step at its receipt time, keeping from, to and
subject — never the body. Anything else is accepted and records nothing.
"""

from __future__ import annotations

import gc
import json
import smtplib
import time
import warnings
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from drills.desk.mailbox import DrillMailbox, mailbox_address
from drills.desk.webhooks import correlation_code
from engine.clock import RunClock
from engine.model.types import Participant
from engine.record.journal import JOURNAL_NAME, Journal
from engine.run.context import responder_context
from engine.run.hotwash import HotwashBook
from engine.run.responses import StepBook
from engine.spec.loader import load_playbook
from tests.conftest import REPO

PLAYBOOK = REPO / "playbooks" / "storefront-exercise.yaml"
PEOPLE = (
    Participant("Alex Moreau", "msp", "on-call engineer", "alex@msp.example"),
    Participant("Li Wei", "client", "shop manager", "li@bakery.example", language="zh-CN"),
)
SECRET_BODY = "the body says: standby password is hunter2"


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[tuple[DrillMailbox, StepBook, Path]]:
    playbook = load_playbook(PLAYBOOK)
    run_dir = tmp_path / "run-mail"
    run_dir.mkdir()
    clock = RunClock()
    journal = Journal(run_dir / JOURNAL_NAME, clock)
    book = StepBook(playbook, journal, clock)
    context = responder_context(
        playbook, book, HotwashBook(journal, PEOPLE), run_dir=run_dir, client="Demo Bakery Ltd",
        environment="ci", participants=PEOPLE, seed=1, clock=clock, options={"mailbox": "127.0.0.1:0"},
    )  # fmt: skip
    box = DrillMailbox(context)
    box.start()
    book.start_impact(clock.now())
    try:
        yield box, book, run_dir
    finally:
        box.stop()


def _send(port: int, sender: str, to: str, subject: str, body: str = SECRET_BODY) -> float:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message.set_content(body)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(message)
        return time.monotonic()


def _records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / JOURNAL_NAME).read_text().splitlines()]


def test_an_email_with_the_drill_code_records_the_step_at_receipt(
    mailbox: tuple[DrillMailbox, StepBook, Path],
) -> None:
    box, book, run_dir = mailbox
    clock = box._context.clock
    host, port = mailbox_address(run_dir) or ("", 0)
    assert host == "127.0.0.1" and port == box.address[1] > 0
    code = correlation_code(run_dir.name)

    # no code: accepted, records nothing; the code but the wrong sender: nothing either
    _send(port, "alex@msp.example", "li@bakery.example", "storefront is down")
    _send(port, "mallory@evil.example", "li@bakery.example", f"[{code}] storefront is down")
    assert book.recorded_at("msp.inform-client") is None

    before = clock.now()  # the run clock's reading just before the SMTP conversation
    _send(
        port, "Alex Moreau <alex@msp.example>", "li@bakery.example", f"[{code}] Storefront outage, ETA 20 min"
    )
    after = clock.now()
    recorded = book.recorded_at("msp.inform-client")
    assert recorded is not None and before <= recorded <= after

    (step,) = [r for r in _records(run_dir) if r["type"] == "step.recorded"]
    assert step["data"]["by"] == "alex@msp.example" and step["data"]["source"] == "email"
    assert (
        step["data"]["note"]
        == f"e-mail to li@bakery.example; subject: [{code}] Storefront outage, ETA 20 min"
    )

    # the code in the body also counts; the body itself is never stored
    _send(port, "li@bakery.example", "tom@bakery.example", "shop down", body=f"ref {code} — {SECRET_BODY}")
    assert book.recorded_at("client.inform-director") is not None
    journal = (run_dir / JOURNAL_NAME).read_text()
    assert "hunter2" not in journal and "mallory" not in journal


def test_stop_frees_the_port_and_removes_the_address_file(
    mailbox: tuple[DrillMailbox, StepBook, Path],
) -> None:
    box, _book, run_dir = mailbox
    port = box.address[1]
    box.stop()
    assert mailbox_address(run_dir) is None
    with pytest.raises(OSError):
        smtplib.SMTP("127.0.0.1", port, timeout=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = time.monotonic()
        box.stop()  # again, as the run's cleanup may: nothing waits on its stopped loop (2 s)
        took = time.monotonic() - again
        gc.collect()
    assert took < 1.5 and not [w for w in caught if "never awaited" in str(w.message)]
