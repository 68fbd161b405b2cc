"""``host.service_stop``: stop a declared service (or a systemd unit); revert starts it again."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from engine.errors import InputError
from engine.faults.host_base import (
    FACT_PREFIX,
    TARGET_RUNTIME_DIR,
    HostFault,
    declared_service,
    host_params_schema,
    slug,
)

if TYPE_CHECKING:
    from engine.model.types import SshHost
    from engine.transports.ssh import SshTransport


class ServiceStop(HostFault):
    """Stop a service with the host's declared ``stop`` command, or ``systemctl stop UNIT``.

    Params: ``service`` (a service declared on the host; optional when it declares exactly
    one) or ``unit`` (a systemd unit). Revert starts it again when it was running before.

    Whether it was running only the host knows, so the inject script asks it there, in the
    same round trip: when the service runs, the script first leaves a marker file on the host
    (the prior state, written before anything changes), then stops the service; when it does
    not run, nothing is stopped and no marker is left. The revert — the engine's, the dead-man
    timer's or ``bcdrill recover``'s — starts the service only where the marker says so, then
    removes the marker; ``fault.applied`` records ``observed: {running: …}``.
    """

    name: ClassVar[str] = "host.service_stop"
    params_schema: ClassVar[dict[str, Any]] = host_params_schema(
        {
            "service": {"type": "string", "minLength": 1},
            "unit": {"type": "string", "pattern": r"^[A-Za-z0-9@_.:-]+$"},
        }
    )

    def local_state(self, host: SshHost) -> dict[str, Any]:
        """The resolved start/stop/status commands and the marker's path: no round trip."""
        return {**self._commands(host), "marker": self._marker()}

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

    def _marker(self) -> str:
        return f"{TARGET_RUNTIME_DIR}/bcdrill-stopped-{slug(self.fault_id, self.target.ref, self.run_id)}"

    def inject_commands(self, prior: Mapping[str, Any]) -> list[list[str]]:
        """If the service runs: the marker, then its stop command; else nothing."""
        status, stop = shlex.join(prior["status"]), shlex.join(prior["stop"])
        marker = shlex.quote(str(prior["marker"]))
        script = (
            f"if {status} >/dev/null 2>&1; then\n"
            f"    echo running > {marker}.tmp && mv -f {marker}.tmp {marker} || exit 1\n"
            f"    echo {FACT_PREFIX}running=true\n"
            f"    {stop}\n"
            f"else\n"
            f"    echo {FACT_PREFIX}running=false\n"
            f"fi\n"
        )
        return [["sh", "-c", script]]

    def facts(self, raw: Mapping[str, str]) -> dict[str, Any]:
        """Whether the service was running (and so was stopped)."""
        return {"running": raw.get("running") == "true"} if "running" in raw else {}

    def revert_script(self, prior: Mapping[str, Any]) -> str:
        """Start the service where the marker says it ran, unless it runs already; drop the marker."""
        status, start = shlex.join(prior["status"]), shlex.join(prior["start"])
        if "marker" not in prior:  # a prior state captured before markers existed
            if not prior.get("running"):
                return ": service was not running before the fault; nothing to restart"
            return f"{status} >/dev/null 2>&1 || {start}"
        marker = shlex.quote(str(prior["marker"]))
        return (
            f"if [ -e {marker} ]; then\n"
            f"    {status} >/dev/null 2>&1 || {start} || exit 1\n"
            f"    rm -f {marker}\n"
            f"fi\n"
        )

    def reverted(self, ssh: SshTransport, prior: Mapping[str, Any]) -> bool:
        """The service runs where it ran before: its status says so when this engine saw it
        running, or while the marker is there (the revert removes it once the service runs);
        a service that did not run before is left as it is."""
        status = list(prior["status"])
        if "marker" not in prior:
            return not prior.get("running") or ssh.run(status, check=False).exit_code == 0
        running = f"{shlex.join(status)} >/dev/null 2>&1"
        if not self.applied_facts().get("running", False):  # not known here: the marker tells
            running = f"if [ -e {shlex.quote(str(prior['marker']))} ]; then {running}; fi"
        return ssh.run(["sh", "-c", running], check=False).exit_code == 0

    def known_prior(self, host: SshHost) -> dict[str, Any]:
        """The declared (or systemd) commands: exactly what a run will send."""
        return self.local_state(host)

    def example_prior(self) -> dict[str, Any]:
        """Placeholders naming the declared commands."""
        what = self.params.get("unit") or self.params.get("service") or "the declared service"
        return {
            "start": [f"<start of {what}>"],
            "stop": [f"<stop of {what}>"],
            "status": [f"<status of {what}>"],
            "marker": self._marker(),
        }
