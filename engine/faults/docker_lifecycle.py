"""Container lifecycle faults: stop, kill, pause, restart.

They share one revert: bring the container back to the run state captured before the fault
(running, paused or stopped), addressed by id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from engine.errors import TransportError
from engine.faults.base import EffectiveTime, FaultAction, FaultPlan
from engine.transports.connections import Transports


class ContainerStateFault(FaultAction):
    """Base of faults whose revert restores a container's captured run state."""

    target_kind = "container"
    verb: ClassVar[str]
    #: The daemon events that mark the moment the service stopped, in order of preference.
    effect_events: ClassVar[tuple[str, ...]] = ("die", "kill", "stop")

    def _effect_events(self) -> tuple[str, ...]:
        return self.effect_events

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
        for wanted in self._effect_events():
            times = [ns for action, ns in events if action == wanted]
            if times:
                return EffectiveTime(min(times) / 1e9, f"docker daemon event {wanted!r}")
        return None

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

    def _effect_events(self) -> tuple[str, ...]:
        """Without a grace period the service stops at the daemon's first signal (``kill``,
        ~100 ms before ``die``); with one, it may serve until the process dies."""
        return ("kill", "die") if int(self.params.get("timeout", 0)) == 0 else ("die", "kill")


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

    def _effect_events(self) -> tuple[str, ...]:
        """SIGKILL ends the service at the signal; another signal only when it dies of it."""
        return ("kill", "die") if self._signal() in ("SIGKILL", "KILL", "9") else ("die", "kill")

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

    def inject(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        """Restart the container."""
        container = transports.docker.container(prior["id"])
        transports.docker.call("restart", container.restart, timeout=int(self.params.get("timeout", 0)))
