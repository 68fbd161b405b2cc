"""``host.service_stop``: stop a declared service (or a systemd unit); revert starts it again."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from engine.errors import InputError
from engine.faults.host_base import HostFault, declared_service, host_params_schema

if TYPE_CHECKING:
    from engine.model.types import SshHost
    from engine.transports.ssh import SshTransport


class ServiceStop(HostFault):
    """Stop a service with the host's declared ``stop`` command, or ``systemctl stop UNIT``.

    Params: ``service`` (a service declared on the host; optional when it declares exactly
    one) or ``unit`` (a systemd unit). Revert starts it again when it was running before.
    """

    name: ClassVar[str] = "host.service_stop"
    params_schema: ClassVar[dict[str, Any]] = host_params_schema(
        {
            "service": {"type": "string", "minLength": 1},
            "unit": {"type": "string", "pattern": r"^[A-Za-z0-9@_.:-]+$"},
        }
    )

    def read_state(self, ssh: SshTransport, host: SshHost) -> dict[str, Any]:
        """The resolved start/stop/status commands and whether the service was running."""
        commands = self._commands(host)
        running = ssh.run(commands["status"], check=False).exit_code == 0
        return {**commands, "running": running}

    def _commands(self, host: SshHost) -> dict[str, list[str]]:
        unit = self.params.get("unit")
        if unit is not None:
            if "service" in self.params:
                raise InputError(f"{self._what()}: give 'service' or 'unit', not both")
            return {
                "label": [f"systemd unit {unit}"],
                "start": ["systemctl", "start", unit],
                "stop": ["systemctl", "stop", unit],
                "status": ["systemctl", "is-active", "--quiet", unit],
            }
        service = declared_service(host, self.params.get("service"))
        return {
            "label": [f"service {service.name}"],
            "start": list(service.start),
            "stop": list(service.stop),
            "status": list(service.status),
        }

    def inject_commands(self, prior: Mapping[str, Any]) -> list[list[str]]:
        """The service's stop command."""
        return [list(prior["stop"])]

    def revert_script(self, prior: Mapping[str, Any]) -> str:
        """Start the service unless its status says it already runs (nothing if it was down)."""
        if not prior.get("running"):
            return ": service was not running before the fault; nothing to restart"
        status, start = shlex.join(prior["status"]), shlex.join(prior["start"])
        return f"{status} >/dev/null 2>&1 || {start}"

    def reverted(self, ssh: SshTransport, prior: Mapping[str, Any]) -> bool:
        """The service runs again (when it ran before)."""
        if not prior.get("running"):
            return True
        return ssh.run(list(prior["status"]), check=False).exit_code == 0

    def known_prior(self, host: SshHost) -> dict[str, Any]:
        """The declared (or systemd) commands: exactly what a run will send."""
        return {**self._commands(host), "running": True}

    def example_prior(self) -> dict[str, Any]:
        """Placeholders naming the declared commands."""
        what = self.params.get("unit") or self.params.get("service") or "the declared service"
        return {
            "start": [f"<start of {what}>"],
            "stop": [f"<stop of {what}>"],
            "status": [f"<status of {what}>"],
            "running": True,
        }
