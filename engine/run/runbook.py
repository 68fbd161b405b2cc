"""Runbook automation: the real recovery actions behind response steps.

A playbook step may carry a ``runbook`` action (``docker: start`` on a target, a shell
``command`` on a target's SSH hosts, an ``http`` call). In CI (``--responders auto``) the
:class:`RunbookResponders` perform each such action for real once the impact has started
and record the step when the action has completed, so the recovery time the debrief
measures is the runbook's. Steps without automation are not exercised in ``auto`` mode, and
the debrief says the recovery time was then not measured. The simulated responders perform
the same actions before they record the step (see :func:`perform`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from engine.errors import DrillError, TransportError
from engine.logsetup import get_logger
from engine.model.types import Environment, ResponseStep, RunbookAction
from engine.run.responses import Ack, ResponderContext
from engine.transports.connections import Transports

log = get_logger(__name__)

TICK_S = 0.01

#: The Docker SDK call behind each ``docker:`` verb.
_DOCKER_VERBS = {"start": "start", "restart": "restart", "unpause": "unpause"}


class RunbookFailed(DrillError):
    """A runbook action could not be performed; the message names the step and the action."""


def perform(action: RunbookAction, environment: Environment, transports: Transports) -> str:
    """Perform ``action`` against ``environment`` and return what was done (one line).

    Raises :class:`RunbookFailed` when it cannot be done (unknown target, transport error,
    unexpected HTTP answer).
    """
    try:
        if action.kind == "docker":
            return _docker(action, environment, transports)
        if action.kind == "command":
            return _command(action, environment, transports)
        return _http(action, environment)
    except (TransportError, OSError) as exc:
        raise RunbookFailed(f"runbook action {action.describe()!r} failed: {exc}") from exc


def _refs(action: RunbookAction, environment: Environment, kind: str) -> tuple[str, ...]:
    binding = environment.targets.get(action.target or "")
    if binding is None or binding.kind != kind:
        raise RunbookFailed(
            f"runbook action {action.describe()!r}: target {action.target!r} is not a {kind} "
            f"target in environment {environment.name!r}"
        )
    return binding.refs


def _docker(action: RunbookAction, environment: Environment, transports: Transports) -> str:
    method = _DOCKER_VERBS[action.verb]
    for ref in _refs(action, environment, "container"):
        container = transports.docker.container(ref)
        state = container.attrs.get("State", {})
        if action.verb == "start" and state.get("Running"):
            continue  # already running: starting it again is a no-op, not an error
        if action.verb == "unpause" and not state.get("Paused"):
            continue
        transports.docker.call(action.verb, getattr(container, method))
    return action.describe()


def _command(action: RunbookAction, environment: Environment, transports: Transports) -> str:
    for ref in _refs(action, environment, "host"):
        transports.ssh(ref).run(["sh", "-c", action.verb], timeout=action.timeout_s)
    return action.describe()


def _http(action: RunbookAction, environment: Environment) -> str:
    raw = action.url or ""
    url = environment.urls.get(raw, raw)
    if urlsplit(url).scheme not in ("http", "https"):
        raise RunbookFailed(
            f"runbook url {raw!r} is neither an http(s) URL nor a name in the environment's urls"
        )
    try:
        status = httpx.request(action.verb, url, timeout=action.timeout_s).status_code
    except httpx.HTTPError as exc:
        raise RunbookFailed(f"runbook action {action.describe()!r} failed: {exc}") from exc
    ok = status == action.expect_status if action.expect_status is not None else 200 <= status < 300
    if not ok:
        raise RunbookFailed(f"runbook action {action.describe()!r} answered HTTP {status}")
    return f"{action.describe()} → HTTP {status}"


Performer = Callable[[RunbookAction], str]


class RunbookResponders:
    """The ``auto`` responder: performs every automated step's runbook action, in order.

    A step is performed once the impact has started and its ``after`` step (if that one is
    automated too) is recorded; it is recorded when its action completed, by ``runbook``.
    A failed action leaves the step unrecorded (it is then missed) and is logged.
    """

    def __init__(self, context: ResponderContext) -> None:
        if context.perform_runbook is None:
            raise RunbookFailed("the run offers no runbook performer to the auto responder")
        self._ctx = context
        self._perform: Performer = context.perform_runbook
        self._steps = [s for s in context.steps if s.runbook is not None]
        self._automated = {s.key for s in self._steps}
        self._done: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runbook-responders", daemon=True)

    def start(self) -> None:
        """Begin in the background (nothing to do without automated steps)."""
        if self._steps:
            self._thread.start()

    def stop(self) -> None:
        """Stop after the action in progress (each action has its own deadline)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _ready(self, step: ResponseStep) -> bool:
        if step.after is None or step.after not in self._automated:
            return True
        return self._ctx.recorded_at(step.after) is not None or step.after in self._done

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S):
            if self._ctx.anchor() is None:
                continue
            for step in self._steps:
                if step.key not in self._done and self._ready(step) and not self._stop.is_set():
                    self._done.add(step.key)
                    self._run(step)
            if len(self._done) == len(self._steps):
                return

    def _run(self, step: ResponseStep) -> None:
        assert step.runbook is not None
        try:
            done = self._perform(step.runbook)
        except DrillError as exc:
            log.warning("runbook.failed", step=step.key, error=str(exc))
            return
        log.info("runbook.performed", step=step.key, action=done)
        self._ctx.record(Ack(step.key, by="runbook", source="runbook", note=done[:500]))


__all__ = ["RunbookFailed", "RunbookResponders", "perform"]
