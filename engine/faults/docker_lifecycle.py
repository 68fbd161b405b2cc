"""Container lifecycle faults: stop, kill, pause, restart.

They share one revert: bring the container back to the run state captured before the fault
(running, paused or stopped), addressed by id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from engine.errors import TransportError
from engine.faults.base import EffectiveTime, FaultAction, FaultPlan
from engine.model.types import Environment
from engine.transports.connections import Transports


class ContainerStateFault(FaultAction):
    """Base of faults whose revert restores a container's captured run state."""

    target_kind = "container"
    verb: ClassVar[str]
    #: The daemon events that mark the moment the service stopped (see :func:`fatal_moment`).
    effect_events: ClassVar[tuple[str, ...]] = ("kill", "die")

    #: A responder can undo it (``docker start``/``unpause``): by default, responders restore.
    responder_restorable: ClassVar[bool] = True

    def effective_at(
        self, transports: Transports, prior: Mapping[str, Any], since: float, until: float
    ) -> EffectiveTime | None:
        """The Docker daemon's own time of the event that stopped the service."""
        try:
            events = transports.docker.event_times(str(prior["id"]), since, until)
        except TransportError:
            return None
        return fatal_moment([(a, ns) for a, ns in events if a in self.effect_events])

    def capture(self, transports: Transports) -> dict[str, Any]:
        """Record whether the container was running or paused."""
        container = transports.docker.container(self.target.ref)
        state = container.attrs.get("State", {})
        return {
            "id": container.id,
            "running": bool(state.get("Running")),
            "paused": bool(state.get("Paused")),
        }

    def revert(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        """Start/unpause the container if it was running before; otherwise leave it."""
        docker = transports.docker
        container = docker.container(prior["id"])
        state = container.attrs.get("State", {})
        if state.get("Paused") and not prior["paused"]:
            docker.call("unpause", container.unpause)
        elif prior["running"] and not state.get("Running"):
            docker.call("start", container.start)

    def is_reverted(self, transports: Transports, prior: Mapping[str, Any]) -> bool:
        """The container's running/paused flags equal the captured ones."""
        state = transports.docker.container(prior["id"]).attrs.get("State", {})
        return bool(state.get("Running")) == prior["running"] and bool(state.get("Paused")) == bool(
            prior["paused"]
        )

    def describe(self) -> FaultPlan:
        """The Docker API call and its revert."""
        return FaultPlan(
            fault_id=self.fault_id,
            action=self.name,
            target=self.target,
            inject=f"docker {self.verb} {self._inject_args()}{self.target.label}",
            revert=f"docker start {self.target.label}  (only if it was running before)",
        )

    def manual_revert(self, prior: Mapping[str, Any]) -> str:
        """The docker CLI command that restores the container by id."""
        if prior.get("paused"):
            return f"docker unpause {prior['id']}"
        return f"docker start {prior['id']}" if prior.get("running") else "nothing to do"

    def _inject_args(self) -> str:
        return ""


def fatal_moment(events: list[tuple[str, int]]) -> EffectiveTime | None:
    """The daemon's time of the event that ended the service, from ``(action, timeNano)``.

    A container dies of the *last* signal sent before its ``die`` event: ``docker stop -t 0``
    sends SIGTERM, which a PID 1 without a handler ignores, then SIGKILL; measured against a
    5 ms prober the service stops within ~15 ms of that last ``kill``, while ``die`` comes
    40–75 ms later (cleanup). Without a ``kill`` (or for ``pause``), the first event counts.
    """
    dies = [ns for action, ns in events if action == "die"]
    kills = [ns for action, ns in events if action == "kill" and (not dies or ns <= dies[0])]
    if kills:
        return EffectiveTime(max(kills) / 1e9, "docker daemon event 'kill' (the fatal signal)")
    if events:
        action, ns = min(events, key=lambda e: e[1])
        return EffectiveTime(ns / 1e9, f"docker daemon event {action!r}")
    return None


class StopContainer(ContainerStateFault):
    """Stop a container (``docker stop``), giving it ``timeout`` seconds to exit."""

    name = "docker.stop"
    verb = "stop"
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "timeout": {
                "type": "integer",
                "minimum": 0,
                "maximum": 300,
                "description": "seconds between SIGTERM and SIGKILL (default 0)",
            }
        },
    }

    def inject(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        """Stop the container."""
        api = transports.docker.client.api  # by id, no second lookup: one API call
        transports.docker.call("stop", api.stop, prior["id"], timeout=int(self.params.get("timeout", 0)))

    def _inject_args(self) -> str:
        return f"--time {int(self.params.get('timeout', 0))} "

    def inject_lasts_s(self, environment: Environment) -> float:
        """The daemon stops the container for up to its grace."""
        return float(self.params.get("timeout", 0))


class KillContainer(ContainerStateFault):
    """Send a signal to a container's main process (``docker kill``), SIGKILL by default."""

    name = "docker.kill"
    verb = "kill"
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "signal": {
                "type": "string",
                "pattern": "^(SIG)?[A-Z0-9]+$",
                "description": "signal name, default SIGKILL",
            }
        },
    }

    def inject(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        """Send the signal."""
        api = transports.docker.client.api
        transports.docker.call("kill", api.kill, prior["id"], signal=self._signal())

    def _signal(self) -> str:
        return str(self.params.get("signal", "SIGKILL"))

    def _inject_args(self) -> str:
        return f"--signal {self._signal()} "


class PauseContainer(ContainerStateFault):
    """Freeze a container (``docker pause``): it stops answering but keeps its state."""

    name = "docker.pause"
    verb = "pause"
    effect_events = ("pause",)

    def inject(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        """Pause the container."""
        transports.docker.call("pause", transports.docker.client.api.pause, prior["id"])

    def describe(self) -> FaultPlan:
        """Pause, reverted by unpause."""
        plan = super().describe()
        return FaultPlan(
            plan.fault_id,
            plan.action,
            plan.target,
            plan.inject,
            f"docker unpause {self.target.label}",
        )


class RestartContainer(ContainerStateFault):
    """Restart a container (a short, self-healing outage); revert makes sure it runs."""

    name = "docker.restart"
    verb = "restart"
    params_schema: ClassVar[dict[str, Any]] = StopContainer.params_schema

    def inject_lasts_s(self, environment: Environment) -> float:
        """The daemon stops the container for up to its grace, then starts it."""
        return float(self.params.get("timeout", 0))

    def inject(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        """Restart the container."""
        container = transports.docker.container(prior["id"])
        transports.docker.call("restart", container.restart, timeout=int(self.params.get("timeout", 0)))
