"""The drill mailbox: an SMTP receiver (aiosmtpd) bound for the run, e-mail as evidence.

Registered as run service ``mailbox``; the engine starts it when the playbook has
``mailbox`` rules, on ``RunOptions.mailbox`` (``HOST:PORT``, default loopback with a free
port) and it writes ``<run>/mailbox.json`` (mode 0600) with its address and the run's key
for the participants' personal addresses (:mod:`drills.desk.mail_address`). An e-mail
counts only when one of its envelope recipients is a participant's personal address
(``drill+<tag>@…``, shown on their own desk page): it is attributed to that participant,
never to the unauthenticated ``From:``. When it also carries the drill's correlation code
(in the subject or the body) and matches a rule, it records the rule's step at the moment
the message is received: the step's note keeps who it went to (tags stripped) and its
subject. Bodies are read only to look for the code and are never stored. Every message is
answered ``250`` (a sender learns nothing about the rules or the tags), also one no parser can
read; one that records nothing is only logged, with the reason and without any tag. Only when
recording it fails (the journal cannot be written) is the answer ``451``, so that the sending
server tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from drills.desk.mail_address import (
    DEFAULT_DOMAIN,
    MAILBOX_FILE,
    mailbox_settings,
    new_key,
    participant_tag,
    tagged_participants,
    without_tags,
)
from drills.desk.recording import clean_note
from drills.desk.service import parse_bind
from drills.desk.webhooks import correlation_code
from engine.errors import PreflightError
from engine.logsetup import get_logger
from engine.model.exercise import MailRule
from engine.model.types import Participant
from engine.run.injects import recipients
from engine.run.responses import Ack, ResponderContext
from engine.web import listening_socket

__all__ = ["MAILBOX_FILE", "DrillMailbox", "mailbox_address"]  # MAILBOX_FILE: from mail_address

log = get_logger(__name__)

MAX_MESSAGE = 2 * 1024 * 1024
MAX_RECIPIENTS = 20  # per message: a drill's e-mail goes to a handful of people
START_TIMEOUT_S = 10.0


def mailbox_address(run_dir: Any) -> tuple[str, int] | None:
    """``(host, port)`` of a live run's mailbox, from ``<run>/mailbox.json``."""
    data = mailbox_settings(run_dir)
    try:
        return (str(data["host"]), int(data["port"])) if data else None
    except (ValueError, KeyError, TypeError):
        return None


def _text(message: Message) -> str:
    """The message's text parts, only to look for the drill's code (never kept)."""
    parts = message.walk() if message.is_multipart() else [message]
    chunks = []
    for part in parts:
        if part.get_content_maintype() == "text":
            with contextlib.suppress(LookupError, ValueError, AttributeError):
                chunks.append(str(part.get_content()))  # type: ignore[attr-defined]
    return "\n".join(chunks)


class _Handler:
    def __init__(self, mailbox: DrillMailbox) -> None:
        self._mailbox = mailbox

    async def handle_RCPT(
        self, _server: SMTP, _session: Session, envelope: Envelope, address: str, _options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode("utf-8", "replace")
        to = [str(r) for r in envelope.rcpt_tos]
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._mailbox.receive, to, raw)
        except Exception as exc:  # not recorded: the sending server is to try again later
            log.error("mailbox.failed", error=type(exc).__name__)
            return "451 Requested action aborted: local error in processing"
        return "250 OK"


async def _close(server: asyncio.base_events.Server) -> None:
    server.close()
    await server.wait_closed()


class DrillMailbox:
    """Receives e-mail for one run and records the communication steps it proves."""

    def __init__(self, context: ResponderContext) -> None:
        self._context = context
        self._rules = context.exercise.mailbox
        self._code = correlation_code(context.run_id)
        self._host, self._port = parse_bind(context.options.get("mailbox") or "127.0.0.1:0")
        self._domain = str(context.options.get("mailbox_domain") or DEFAULT_DOMAIN)
        self._key = new_key()
        self._tags = {p.name: participant_tag(self._key, p.name) for p in context.participants}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="drill-mailbox", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self.address: tuple[str, int] = (self._host, self._port)

    # ---------------------------------------------------------------- service

    def start(self) -> None:
        """Bind and serve in a background thread; write ``<run>/mailbox.json``."""
        sock = listening_socket(self._host, self._port, "the drill mailbox")
        self._thread.start()
        handler = _Handler(self)

        def protocol() -> SMTP:
            return SMTP(handler, hostname="bcdrill-mailbox", data_size_limit=MAX_MESSAGE, loop=self._loop)

        future = asyncio.run_coroutine_threadsafe(self._loop.create_server(protocol, sock=sock), self._loop)
        try:
            self._server = future.result(START_TIMEOUT_S)
        except Exception as exc:
            self.stop()
            raise PreflightError(f"the drill mailbox did not start on {self._host}:{self._port}") from exc
        self.address = sock.getsockname()[:2]
        self._write_file()
        log.info("mailbox.started", host=self.address[0], port=self.address[1], run_id=self._context.run_id)

    def stop(self) -> None:
        """Stop receiving (returns within a few seconds); stopping again does nothing more."""
        server, self._server = self._server, None
        if server is not None and self._thread.is_alive():
            # on the loop's own thread: asyncio's Server is not thread-safe (closed from here while
            # a connection ended there, both woke its waiters and one failed on None)
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(_close(server), self._loop).result(2)
        elif server is not None:
            server.close()  # a stopped loop runs nothing: nothing races either
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            (self._context.run_dir / MAILBOX_FILE).unlink()

    def _write_file(self) -> None:
        path = self._context.run_dir / MAILBOX_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when an old file was there with a looser mode
        settings = {"host": self.address[0], "port": self.address[1], "code": self._code}
        with os.fdopen(fd, "w") as handle:
            json.dump({**settings, "domain": self._domain, "key": self._key.hex()}, handle)

    # ---------------------------------------------------------------- mail

    def receive(self, to: list[str], raw: bytes) -> str | None:
        """Record the step this e-mail to the envelope recipients ``to`` proves (its key),
        or None when it proves nothing."""
        try:
            message = message_from_bytes(raw, policy=default_policy)
            subject = clean_note(without_tags(str(message.get("subject", "")), self._tags))[:200]
            text = _text(message)
        except (RecursionError, ValueError, LookupError, TypeError, AttributeError, IndexError) as exc:
            return self._ignored(f"unreadable ({type(exc).__name__})")  # it proves nothing
        if self._code not in subject and self._code not in text:
            return self._ignored("no drill code")
        people = tagged_participants(to, self._tags, self._context.participants)
        if len(people) != 1:
            return self._ignored("no personal drill address" if not people else "several personal addresses")
        (person,) = people
        for rule in self._rules:
            if self._matches(rule, person, subject):
                shown = ", ".join(without_tags(r, self._tags) for r in to)
                note = f"e-mail to {shown[:200]}; subject: {subject}"
                by = clean_note(person.contact or person.name)[:100]
                self._context.record(Ack(rule.step, by=by, source="email", note=note))
                return rule.step
        return self._ignored("no rule matches")

    @staticmethod
    def _ignored(reason: str) -> None:
        log.info("mailbox.ignored", reason=reason)

    def _matches(self, rule: MailRule, person: Participant, subject: str) -> bool:
        if rule.subject and rule.subject.casefold() not in subject.casefold():
            return False
        if not rule.sender:
            return True
        return person.name in {p.name for p in recipients(rule.sender, self._context.participants)}
