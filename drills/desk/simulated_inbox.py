"""Simulated responders: people who ack their steps at seeded, realistic random delays.

They go through the same durable hand-off as ``bcdrill ack`` (the run's inbox), so the
engine records them exactly like real people, with its own receipt time. A step with a
runbook action (e.g. ``docker: start`` for the MSP's mitigation) is really performed first,
as the MSP would: the service comes back because someone restarted it. Used by the demo
and CI (``bcdrill run --responders simulate``). Same seed, same delays.
"""

from __future__ import annotations

import random
import threading

from engine.errors import DrillError
from engine.logsetup import get_logger
from engine.model.types import ResponseStep
from engine.run.responses import Ack, ResponderContext, write_ack

log = get_logger(__name__)

TICK_S = 0.02
DELAY_RANGE = (0.3, 1.3)  # × the step's target: most on time, some late
GAP_AFTER = (0.05, 0.25)  # × target, after the prerequisite step
UPDATE_SHARE = 0.8  # status updates go out after 80 % of their cadence interval


class SimulatedResponders:
    """Acks every ``ack``/``webhook`` step of both parties once impact has started."""

    def __init__(self, context: ResponderContext) -> None:
        self._ctx = context
        rng = random.Random(context.seed)  # noqa: S311 - reproducible drills, not secrets
        manual = [s for s in context.steps if s.recorded_by.kind in ("ack", "webhook", "decision")]
        self._delay = {s.key: s.within_s * rng.uniform(*DELAY_RANGE) for s in manual}
        self._gap = {s.key: s.within_s * rng.uniform(*GAP_AFTER) for s in manual}
        self._person = {s.key: self._pick_person(rng, s) for s in manual}
        self._steps = manual
        self._keys = {s.key for s in context.steps}
        self._sent: dict[str, float] = {}
        self._updated: dict[str, float] = {}  # step key → last status update sent (cadence)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="simulated-responders", daemon=True)

    def _pick_person(self, rng: random.Random, step: ResponseStep) -> str:
        people = sorted(p.name for p in self._ctx.participants if p.party == step.party)
        return rng.choice(people) if people else f"simulated {step.party} responder"

    def start(self) -> None:
        """Begin acking in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop promptly."""
        self._stop.set()
        self._thread.join(timeout=2)

    def planned_delays(self) -> dict[str, float]:
        """Seconds after impact start each step is planned at (before prerequisites)."""
        return dict(self._delay)

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S):
            anchor = self._ctx.anchor()
            if anchor is None:
                continue
            now = self._ctx.clock.now()
            self._observe(now)
            for step in self._steps:
                due = self._due(step, anchor)
                if step.key not in self._sent and due is not None and now >= due:
                    self._sent[step.key] = now
                    self._perform(step)
                    self._send(step.key, self._person[step.key])
            self._send_updates(now)
            if len(self._sent) == len(self._steps) and not self._updates_pending() and not self._busy(now):
                return

    def _perform(self, step: ResponseStep) -> None:
        """Do the step's runbook action for real, if it has one (a failure is logged: the
        person still says they did it, and the probes show whether it worked)."""
        if step.runbook is None or self._ctx.perform_runbook is None:
            return
        try:
            done = self._ctx.perform_runbook(step.runbook)
        except DrillError as exc:
            log.warning("simulated.runbook_failed", step=step.key, error=str(exc))
            return
        log.info("simulated.runbook", step=step.key, action=done)

    def _send_updates(self, now: float) -> None:
        """Status updates for steps with a cadence, a little before each interval ends."""
        for key, cadence in self._ctx.exercise.cadences.items():
            last = self._updated.get(key, self._sent.get(key))
            if last is None or key not in self._person or self._ctx.recorded_at(cadence.until) is not None:
                continue
            if now >= last + cadence.every_s * UPDATE_SHARE:
                self._updated[key] = now
                self._send(key, self._person[key])

    def _updates_pending(self) -> bool:
        return any(self._ctx.recorded_at(c.until) is None for c in self._ctx.exercise.cadences.values())

    def _busy(self, now: float) -> bool:
        """More to do once every step is sent (e.g. the hotwash survey, through the desk)."""
        return False

    def _observe(self, now: float) -> None:
        """Look around before acting (people behind the desk read their messages here)."""

    def _send(self, key: str, person: str) -> None:
        """Hand one ack to the engine (the run's inbox, like ``bcdrill ack``)."""
        choice, note = self._choice(key)
        write_ack(self._ctx.run_dir, Ack(key, person, source="simulated", note=note, choice=choice))

    def _choice(self, key: str) -> tuple[str, str]:
        """For a decision step: the option a simulated lead picks (the plan's first) and why."""
        decision = self._ctx.exercise.decisions.get(key)
        if decision is None:
            return "", ""
        return (decision.expected or decision.options)[0], "simulated: the option the plan prefers"

    def _due(self, step: ResponseStep, anchor: float) -> float | None:
        own = anchor + self._delay[step.key]
        if step.after is None:
            return own
        after = step.after if "." in step.after else f"{step.party}.{step.after}"
        if after not in self._keys:
            return own
        base = self._sent.get(after) or self._ctx.recorded_at(after)
        if base is None:
            return None
        return max(own, base + self._gap[step.key])
