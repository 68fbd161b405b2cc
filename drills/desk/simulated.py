"""Simulated responders that go through the drill desk's JSON API, like real people.

Same seeded schedule as :class:`drills.desk.simulated_inbox.SimulatedResponders`; instead of dropping
files into the run's inbox, each simulated person holds a per-run token (only its hash is
written, to ``<run>/desk-participants.json``) and posts ``/api/ack`` with it. Registered as
responders ``simulate`` (through :func:`simulated_people`) when the run has a desk.
"""

from __future__ import annotations

import time

import httpx
import structlog

from drills.desk.client import post_ack
from drills.desk.service import desk_url, run_token_store
from drills.desk.simulated_inbox import SimulatedResponders
from engine.errors import DrillError, PreflightError
from engine.model.types import Participant
from engine.run.responses import ResponderContext

log = structlog.get_logger(__name__)

DESK_WAIT_S = 10.0


class DeskSimulatedResponders(SimulatedResponders):
    """Simulated people who ack through the desk API with their own tokens."""

    def __init__(self, context: ResponderContext) -> None:
        super().__init__(context)
        self._tokens: dict[str, str] = {}
        self._base_url = ""
        self._http = httpx.Client()

    def start(self) -> None:
        """Get tokens for every simulated person, find the desk, then start acking."""
        self._base_url = self._find_desk()
        people = {p.name: p for p in self._ctx.participants}
        for step in self._steps:
            name = self._person[step.key]
            people.setdefault(name, Participant(name=name, party=step.party, role="simulated"))
        cards = run_token_store(self._ctx).issue(people.values(), self._base_url, reissue=True)
        self._tokens = {card.participant.name: card.token for card in cards}
        super().start()

    def stop(self) -> None:
        """Stop acking and close the HTTP connection pool."""
        super().stop()
        self._http.close()

    def _find_desk(self) -> str:
        deadline = time.monotonic() + DESK_WAIT_S
        while time.monotonic() < deadline:
            url = desk_url(self._ctx.run_dir)
            if url:
                return url
            time.sleep(0.02)
        raise PreflightError("simulated desk responders need the run's drill desk (RunOptions.desk)")

    def _send(self, key: str, person: str) -> None:
        try:
            receipt = post_ack(self._base_url, self._tokens[person], key, note="simulated", client=self._http)
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
