"""Each player's desk page shows their own personal drill mail address, and only theirs.

A real desk (uvicorn on loopback) and a real drill mailbox (aiosmtpd) in the same run
folder; players read their page over HTTP and send real SMTP mail with what it shows.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from drills.desk.mail_address import drill_mail_address
from drills.desk.mailbox import DrillMailbox
from drills.desk.participants import Card, ParticipantStore
from drills.desk.service import DrillDesk
from drills.desk.webhooks import correlation_code
from engine.clock import RunClock
from engine.model.types import Participant
from engine.record.journal import JOURNAL_NAME, Journal
from engine.run.context import responder_context
from engine.run.hotwash import HotwashBook
from engine.run.responses import StepBook
from engine.spec.loader import load_playbook
from tests.conftest import REPO
from tests.journal_helpers import records

PLAYBOOK = REPO / "playbooks" / "storefront-exercise.yaml"
CLIENT = "Demo Bakery Ltd"
PEOPLE = (
    Participant("Alex Moreau", "msp", "on-call engineer", "alex@msp.example"),
    Participant("Li Wei", "client", "shop manager", "li@bakery.example", language="zh-CN"),
    Participant("Eve Evans", "msp", "evaluator", "eve@msp.example"),
)
ADDRESS = re.compile(r"drill\+[a-z2-7]{20}@bcdrill\.invalid")


@dataclass
class Run:
    run_dir: Path
    book: StepBook
    clock: RunClock
    desk: DrillDesk
    mailbox: DrillMailbox
    cards: dict[str, Card]

    def page(self, name: str) -> str:
        with httpx.Client(base_url=self.desk.url, follow_redirects=True) as client:
            client.get(f"/p/{self.cards[name].token}")
            return client.get("/desk").text

    def mail(self, sender: str, subject: str, bcc: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = sender, "tom@bakery.example", subject
        message["Bcc"] = bcc
        message.set_content("a status update")
        with smtplib.SMTP("127.0.0.1", self.mailbox.address[1], timeout=10) as smtp:
            smtp.send_message(message)


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    monkeypatch.setenv("BCDRILL_HOME", str(tmp_path / "home"))
    cards = {c.participant.name: c for c in ParticipantStore(CLIENT).issue(PEOPLE, "http://desk.invalid")}
    playbook = load_playbook(PLAYBOOK)
    run_dir = tmp_path / "run-desk-mail"
    (run_dir / "inbox").mkdir(parents=True)
    clock = RunClock()
    journal = Journal(run_dir / JOURNAL_NAME, clock)
    book = StepBook(playbook, journal, clock)
    context = responder_context(
        playbook, book, HotwashBook(journal, PEOPLE), run_dir=run_dir, client=CLIENT, environment="ci",
        participants=PEOPLE, seed=1, clock=clock, options={"desk": "127.0.0.1:0", "mailbox": "127.0.0.1:0"},
    )  # fmt: skip
    mailbox, desk = DrillMailbox(context), DrillDesk(context)
    mailbox.start()
    desk.start()
    try:
        yield Run(run_dir, book, clock, desk, mailbox, cards)
    finally:
        desk.stop()
        mailbox.stop()


def test_each_desk_page_shows_its_holders_own_drill_address_only(run: Run) -> None:
    assert not ADDRESS.search(run.page("Alex Moreau")), "no address before the drill is live"
    run.book.start_impact(run.clock.now())
    addresses = {p.name: drill_mail_address(run.run_dir, p.name) for p in PEOPLE}
    assert all(addresses.values()) and len(set(addresses.values())) == len(PEOPLE)
    for person in PEOPLE:
        page = run.page(person.name)
        assert ADDRESS.findall(page) == [addresses[person.name]], person.name
    assert "Your drill mail address" in run.page("Alex Moreau") and "您的演练邮件地址" in run.page("Li Wei")


def test_a_player_records_a_mail_step_with_the_address_on_her_page_and_not_anyone_elses(run: Run) -> None:
    run.book.start_impact(run.clock.now())
    (li,) = ADDRESS.findall(run.page("Li Wei"))
    subject = f"[{correlation_code(run.run_dir.name)}] shop down"
    run.mail("Alex Moreau <alex@msp.example>", subject, bcc=li)  # forged From: still Li's mail
    assert run.book.recorded_at("msp.inform-client") is None
    assert run.book.recorded_at("client.inform-director") is not None
    (step,) = [r["data"] for r in records(run.run_dir) if r["type"] == "step.recorded"]
    assert step["by"] == "li@bakery.example" and li.split("@")[0] not in step["note"]

    (alex,) = ADDRESS.findall(run.page("Alex Moreau"))
    run.mail("alex@msp.example", subject, bcc=alex)
    assert run.book.recorded_at("msp.inform-client") is not None
