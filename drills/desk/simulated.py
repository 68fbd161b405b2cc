"""Simulated responders that go through the drill desk's JSON API, like real people.

Same seeded schedule as :class:`drills.desk.simulated_inbox.SimulatedResponders`; instead of dropping
files into the run's inbox, each simulated person holds a per-run token (only its hash is
written, to ``<run>/desk-participants.json``) and posts ``/api/ack`` with it. Registered as
responders ``simulate`` (through :func:`simulated_people`) when the run has a desk.
"""

from __future__ import annotations

import random
import time

import httpx

from drills.desk.client import post_ack
from drills.desk.service import desk_url, run_token_store
from drills.desk.simulated_inbox import SimulatedResponders
from engine.errors import DrillError, PreflightError
from engine.logsetup import get_logger
from engine.model.types import Participant, ResponseStep
from engine.run.injects import recipients
from engine.run.responses import ResponderContext

log = get_logger(__name__)

DESK_WAIT_S = 10.0
# Simulated people look at their desk for new messages one person at a time, once a second
# in all: the desk's rate limit per address (2 requests/s) must leave room for their acks.
READ_EVERY_S = 1.0
# What simulated people say in the hotwash, in their language (confidence is seeded, 3–5).
HOTWASH_ANSWERS = {
    "en": (
        "simulated: the alert and the messages reached us quickly",
        "simulated: send status updates sooner",
    ),
    "zh-CN": ("模拟：告警和消息很快送达", "模拟：应更早发送进展通报"),
}


class DeskSimulatedResponders(SimulatedResponders):
    """Simulated people who ack through the desk API with their own tokens."""

    def __init__(self, context: ResponderContext) -> None:
        super().__init__(context)
        self._tokens: dict[str, str] = {}
        self._base_url = ""
        self._http = httpx.Client()
        self._read_at = 0.0
        self._readers: list[str] = []  # tokens of people an inject asks to react, read in turn
        self.received: dict[str, float] = {}  # inject id → when a simulated person first saw it
        self._hotwash_tried: set[str] = set()
        self._prompted_by = {
            inject.id: inject.expect.step for inject in context.exercise.scripted if inject.expect is not None
        }

    def start(self) -> None:
        """Get tokens for every simulated person, find the desk, then start acking."""
        self._base_url = self._find_desk()
        people = {p.name: p for p in self._ctx.participants}
        for step in self._steps:
            name = self._person[step.key]
            people.setdefault(name, Participant(name=name, party=step.party, role="simulated"))
        cards = run_token_store(self._ctx).issue(people.values(), self._base_url, reissue=True)
        self._tokens = {card.participant.name: card.token for card in cards}
        addressed = [
            person
            for inject in self._ctx.exercise.scripted
            if inject.expect is not None
            for person in recipients(inject.to, tuple(people.values()))
        ]
        self._readers = sorted({self._tokens[p.name] for p in addressed if p.name in self._tokens})
        super().start()

    def stop(self) -> None:
        """Stop acking and close the HTTP connection pool."""
        super().stop()
        self._http.close()

    def _observe(self, now: float) -> None:
        """Read one person's desk messages (every READ_EVERY_S, in turn); note when each inject
        first arrived."""
        if not self._readers or now - self._read_at < READ_EVERY_S:
            return
        self._read_at = now
        self._readers.append(self._readers.pop(0))
        for token in self._readers[-1:]:
            try:
                response = self._http.get(
                    f"{self._base_url}/api/messages", headers={"Authorization": f"Bearer {token}"}, timeout=5
                )
            except httpx.HTTPError:
                continue
            if response.status_code != 200:
                continue
            for message in response.json().get("messages", []):
                self.received.setdefault(str(message.get("inject")), now)

    def _due(self, step: ResponseStep, anchor: float) -> float | None:
        """On their own schedule, or sooner when an inject asking for this step arrived."""
        own = super()._due(step, anchor)
        prompted = [
            self.received[inject] + self._gap[step.key]
            for inject, key in self._prompted_by.items()
            if key == step.key and inject in self.received
        ]
        if not prompted or own is None:
            return own
        return min(own, max(min(prompted), self._after_ready(step, own)))

    def _after_ready(self, step: ResponseStep, own: float) -> float:
        """The earliest moment the step's prerequisite allows (it never jumps the queue)."""
        if step.after is None:
            return 0.0
        after = step.after if "." in step.after else f"{step.party}.{step.after}"
        base = self._sent.get(after) or self._ctx.recorded_at(after)
        return own if base is None else base

    def _busy(self, now: float) -> bool:
        """Waits for the hotwash, then answers it for every participant (one each)."""
        if self._ctx.exercise.hotwash is None:
            return False
        states = {p.name: self._ctx.hotwash_state(p.name) for p in self._ctx.participants}
        for person in self._ctx.participants:
            if states[person.name] == "open" and person.name not in self._hotwash_tried:
                self._hotwash_tried.add(person.name)  # once each: a refusal is not retried
                self._answer_hotwash(person)
        return "none" in states.values()

    def _answer_hotwash(self, person: Participant) -> None:
        token = self._tokens.get(person.name)
        if token is None:
            return
        went_well, improve = HOTWASH_ANSWERS.get(person.language, HOTWASH_ANSWERS["en"])
        answers = {"went_well": went_well, "improve": improve, "confidence": self._confidence(person.name)}
        try:
            response = self._http.post(
                f"{self._base_url}/api/hotwash", json=answers, headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )  # fmt: skip
        except httpx.HTTPError as exc:
            log.warning("simulated.hotwash_failed", by=person.name, error=str(exc))
            return
        log.info("simulated.hotwash", by=person.name, status=response.status_code)

    def _confidence(self, name: str) -> int:
        rng = random.Random(f"{self._ctx.seed}:{name}")  # noqa: S311 - reproducible drills, not secrets
        return rng.randint(3, 5)

    def _find_desk(self) -> str:
        deadline = time.monotonic() + DESK_WAIT_S
        while time.monotonic() < deadline:
            url = desk_url(self._ctx.run_dir)
            if url:
                return url
            time.sleep(0.02)
        raise PreflightError("simulated desk responders need the run's drill desk (RunOptions.desk)")

    def _send(self, key: str, person: str) -> None:
        choice, note = self._choice(key)
        try:
            receipt = post_ack(
                self._base_url,
                self._tokens[person],
                key,
                note=note or "simulated",
                client=self._http,
                choice=choice or None,
            )
        except DrillError as exc:
            log.warning("simulated.ack_failed", step=key, error=str(exc))
            return
        log.info("simulated.ack", step=key, by=person, status=receipt.status)


def simulated_people(context: ResponderContext) -> SimulatedResponders:
    """Simulated people: through the run's drill desk when it has one, else the ack inbox.

    Registered as responders ``simulate``; with a desk they use its API like real people do.
    """
    if context.options.get("desk"):
        return DeskSimulatedResponders(context)
    return SimulatedResponders(context)
