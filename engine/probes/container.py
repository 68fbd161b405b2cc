"""Container probe: is the target container running (and not paused, and healthy if it has a health check)?"""

from __future__ import annotations

from typing import Any, ClassVar

from engine.errors import TransportError
from engine.probes.base import ProbeKind, ProbeResult


class ContainerProbe(ProbeKind):
    """Ask the Docker Engine about the probe's target container."""

    name = "container"
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "container": {
                "type": "string",
                "description": "defaults to the target's first container",
            }
        },
    }

    def container_name(self) -> str:
        """The container watched."""
        explicit = self.spec.params.get("container")
        if explicit:
            return str(explicit)
        binding = self.environment.targets[self.spec.target or ""]
        return binding.refs[0]

    def check(self) -> ProbeResult:
        """Inspect the container once."""
        try:
            state = self.transports.docker.container(self.container_name()).attrs.get("State", {})
        except TransportError as exc:
            return ProbeResult(False, str(exc))
        if state.get("Paused"):
            return ProbeResult(False, "paused")
        if not state.get("Running"):
            return ProbeResult(False, str(state.get("Status", "not running")))
        health = (state.get("Health") or {}).get("Status")
        if health and health != "healthy":
            return ProbeResult(False, f"health {health}")
        return ProbeResult(True, "running")

    def describe(self) -> str:
        """Which container."""
        return f"docker inspect {self.container_name()}"
