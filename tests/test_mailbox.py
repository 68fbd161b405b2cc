"""The drill mailbox: a real SMTP conversation (smtplib) records a communication step.

The receiver (aiosmtpd) runs on loopback for the run. A message quoting the drill code and
sent to the personal drill address (``drill+<tag>@…``) of a participant a rule names records
the step at its receipt time, attributed to that participant — never to the forgeable
``From:`` — keeping to (tags stripped) and subject, never the body. Anything else is accepted
and records nothing.
"""

from __future__ import annotations

import gc
import json
import secrets
import smtplib
import time
import warnings
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from drills.desk import mailbox as mailbox_module
from drills.desk.mail_address import drill_mail_address, new_key, participant_tag
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


def _send(
    port: int, sender: str, to: str, subject: str, body: str = SECRET_BODY, bcc: str = "",
    envelope: list[str] | None = None,
) -> float:  # fmt: skip
    """Send like a mail client: the envelope is To and Bcc (Bcc never in the headers sent)."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    if bcc:
        message["Bcc"] = bcc
    message.set_content(body)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(message, to_addrs=envelope)
        return time.monotonic()


def _address(run_dir: Path, name: str) -> str:
    address = drill_mail_address(run_dir, name)
    assert address, f"no personal drill address for {name}"
    return address


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

    alex, li = _address(run_dir, "Alex Moreau"), _address(run_dir, "Li Wei")

    # no code: accepted, records nothing; the code but no participant's address: nothing either
    _send(port, "alex@msp.example", "li@bakery.example", "storefront is down", bcc=alex)
    _send(port, "mallory@evil.example", "li@bakery.example", f"[{code}] storefront is down")
    assert book.recorded_at("msp.inform-client") is None

    before = clock.now()  # the run clock's reading just before the SMTP conversation
    subject = f"[{code}] Storefront outage, ETA 20 min"
    _send(port, "Alex Moreau <alex@msp.example>", "li@bakery.example", subject, bcc=alex)
    after = clock.now()
    recorded = book.recorded_at("msp.inform-client")
    assert recorded is not None and before <= recorded <= after

    (step,) = [r for r in _records(run_dir) if r["type"] == "step.recorded"]
    assert step["data"]["by"] == "alex@msp.example" and step["data"]["source"] == "email"
    assert step["data"]["note"] == f"e-mail to li@bakery.example, drill@bcdrill.invalid; subject: {subject}"

    # the code in the body also counts; the body itself is never stored
    body = f"ref {code} — {SECRET_BODY}"
    _send(port, "li@bakery.example", "tom@bakery.example", "shop down", body=body, bcc=li)
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


# ---------------------------------------------------------------- personal addresses, not From:


def _tag(address: str) -> str:
    return address.split("@")[0].split("+")[1]


def test_a_forged_from_with_another_players_address_does_not_record_their_step(
    mailbox: tuple[DrillMailbox, StepBook, Path],
) -> None:
    """The client's player signs as the MSP's engineer but can only Bcc her own address."""
    _box, book, run_dir = mailbox
    port, code = _box.address[1], correlation_code(run_dir.name)
    li = _address(run_dir, "Li Wei")
    _send(port, "Alex Moreau <alex@msp.example>", "tom@bakery.example", f"[{code}] update", bcc=li)
    _send(port, "alex@msp.example", li, f"[{code}] restored", envelope=[li])
    assert book.recorded_at("msp.inform-client") is None
    # what her address proves is her own step, as herself
    steps = [r["data"] for r in _records(run_dir) if r["type"] == "step.recorded"]
    assert [(s["step"], s["by"]) for s in steps] == [("client.inform-director", "li@bakery.example")]


def test_a_players_own_address_records_their_step_whatever_from_says(
    mailbox: tuple[DrillMailbox, StepBook, Path],
) -> None:
    box, book, run_dir = mailbox
    alex = _address(run_dir, "Alex Moreau")
    subject = f"[{correlation_code(run_dir.name)}] restarting the shop"
    _send(box.address[1], "someone <li@bakery.example>", "li@bakery.example", subject, bcc=alex.upper())
    assert book.recorded_at("msp.inform-client") is not None
    (step,) = [r["data"] for r in _records(run_dir) if r["type"] == "step.recorded"]
    assert step["by"] == "alex@msp.example" and step["source"] == "email"
    assert _tag(alex) not in step["note"].lower() and "drill@bcdrill.invalid" in step["note"].lower()


@pytest.mark.parametrize(
    "where",
    [
        "no tag",
        "wrong tag",
        "header only",
        "in the subject",
        "in the domain",
        "as the local part",
        "another run",
    ],
)
def test_a_mail_without_a_valid_personal_address_records_nothing(
    mailbox: tuple[DrillMailbox, StepBook, Path], where: str
) -> None:
    box, book, run_dir = mailbox
    alex = _address(run_dir, "Alex Moreau")
    tag, code = _tag(alex), correlation_code(run_dir.name)
    sender, to, subject = "Alex Moreau <alex@msp.example>", "li@bakery.example", f"[{code}] restarting"
    bcc, envelope = "", [to]
    if where == "wrong tag":
        bcc = f"drill+{secrets.token_hex(10)}@bcdrill.invalid"
    elif where == "header only":  # in the To: header, not among the envelope's recipients
        to = f"li@bakery.example, {alex}"
    elif where == "in the subject":
        subject = f"{subject} {alex} {tag}"
    elif where == "in the domain":
        bcc = f"drill@{tag}.bcdrill.invalid"
    elif where == "as the local part":
        bcc = f"{tag}@bcdrill.invalid"
    elif where == "another run":  # the same name's tag under another key
        bcc = f"drill+{participant_tag(new_key(), 'Alex Moreau')}@bcdrill.invalid"
    _send(box.address[1], sender, to, subject, bcc=bcc, envelope=[*envelope, bcc] if bcc else envelope)
    assert book.recorded_at("msp.inform-client") is None
    assert not [r for r in _records(run_dir) if r["type"] == "step.recorded"]


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append(json.dumps({"event": event, **fields}, default=str))


def test_the_journal_and_the_log_never_show_a_tag(
    mailbox: tuple[DrillMailbox, StepBook, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, book, run_dir = mailbox
    logged = _Log()
    monkeypatch.setattr(mailbox_module, "log", logged)
    alex, li = _address(run_dir, "Alex Moreau"), _address(run_dir, "Li Wei")
    port, code = box.address[1], correlation_code(run_dir.name)
    _send(port, "alex@msp.example", "li@bakery.example", f"[{code}] no address")
    _send(port, "li@bakery.example", "tom@bakery.example", f"[{code}] {li} in the subject", bcc=li)
    _send(port, "li@bakery.example", alex, f"[{code}] {alex}", bcc=li)  # both: ambiguous
    _send(port, "alex@msp.example", "li@bakery.example", f"[{code}] eta {alex}", bcc=alex)
    assert book.recorded_at("client.inform-director") is not None
    assert book.recorded_at("msp.inform-client") is not None
    reasons = [json.loads(line).get("reason") for line in logged.lines if "mailbox.ignored" in line]
    assert reasons == ["no personal drill address", "several personal addresses"]
    journal = (run_dir / JOURNAL_NAME).read_text().lower()
    secret = json.loads((run_dir / "mailbox.json").read_text())["key"]
    assert (run_dir / "mailbox.json").stat().st_mode & 0o777 == 0o600
    for text in (journal, "\n".join(logged.lines).lower()):
        assert _tag(alex) not in text and _tag(li) not in text and secret not in text


def test_a_message_no_parser_can_read_is_answered_250_and_records_nothing(
    mailbox: tuple[DrillMailbox, StepBook, Path],
) -> None:
    """A message nested deeper than the e-mail parser can follow (it raised RecursionError, and
    the sender got ``500 Error: (RecursionError)``) is answered as any other, and records nothing."""
    box, book, run_dir = mailbox
    alex, code = _address(run_dir, "Alex Moreau"), correlation_code(run_dir.name)
    head = f"From: a@b.example\r\nTo: {alex}\r\nSubject: [{code}] restarting\r\nMIME-Version: 1.0\r\n"
    depth = 1500
    nested = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(depth)
    )
    raw = (head + nested + "Content-Type: text/plain\r\n\r\nx\r\n").encode()
    with smtplib.SMTP("127.0.0.1", box.address[1], timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.mail("a@b.example")[0] == 250 and smtp.rcpt(alex)[0] == 250
        code_, answer = smtp.data(raw)
    assert (code_, answer) == (250, b"OK")
    assert book.recorded_at("msp.inform-client") is None


def test_a_message_takes_at_most_twenty_recipients(mailbox: tuple[DrillMailbox, StepBook, Path]) -> None:
    box, _, _ = mailbox
    with smtplib.SMTP("127.0.0.1", box.address[1], timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("a@b.example")
        answers = [smtp.rcpt(f"person{i}@bakery.example")[0] for i in range(25)]
    assert answers == [250] * 20 + [452] * 5


def test_a_message_that_cannot_be_recorded_is_refused_for_now_so_it_is_sent_again(
    mailbox: tuple[DrillMailbox, StepBook, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, _, run_dir = mailbox

    def journal_full(_to: list[str], _raw: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(box, "receive", journal_full)
    alex, code = _address(run_dir, "Alex Moreau"), correlation_code(run_dir.name)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        _send(box.address[1], "a@b.example", alex, f"[{code}] restarting")
    assert refused.value.smtp_code == 451
