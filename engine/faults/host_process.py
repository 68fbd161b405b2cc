"""``host.process_kill``: signal processes by exact name or pidfile; revert restarts a service."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from engine.errors import InjectionError, InputError
from engine.faults.host_base import HostFault, declared_service, host_params_schema

if TYPE_CHECKING:
    from engine.model.types import SshHost
    from engine.transports.ssh import SshTransport

SIGNALS = ("KILL", "TERM", "INT", "HUP", "QUIT", "STOP", "ABRT")

# Processes named exactly $1 in the caller's network namespace only: lab hosts share one PID
# namespace, and on an ordinary host this is every process.
_PIDS_BY_NAME = 'pgrep --ns "$$" --nslist net -x -- "$1" || true'
# The pid in file $1 when that process is alive (a zombie is not).
_PID_FROM_FILE = """if [ -f "$1" ]; then
    pid=$(cat "$1")
    grep -qs '^State:[[:space:]]*[^Z[:space:]]' "/proc/$pid/status" && echo "$pid"
fi
true
"""


class ProcessKill(HostFault):
    """Send ``signal`` (default KILL) to the processes named ``name`` or listed in ``pidfile``.

    With ``service`` (a declared service), its ``pidfile``/``process`` are the default
    selection and revert runs its ``start`` command unless its status says it runs. Without a
    service the revert restarts nothing (say so in the drill: someone must start it).
    """

    name: ClassVar[str] = "host.process_kill"
    params_schema: ClassVar[dict[str, Any]] = host_params_schema(
        {
            "name": {"type": "string", "pattern": r"^[^/\s]{1,15}$"},
            "pidfile": {"type": "string", "pattern": "^/"},
            "service": {"type": "string", "minLength": 1},
            "signal": {"enum": list(SIGNALS)},
        }
    )

    def read_state(self, ssh: SshTransport, host: SshHost) -> dict[str, Any]:
        """The processes that will be signalled and the service that restarts them."""
        state: dict[str, Any] = {"start": None, "status": None}
        name, pidfile = self.params.get("name"), self.params.get("pidfile")
        if "service" in self.params:
            service = declared_service(host, self.params["service"])
            state["start"], state["status"] = list(service.start), list(service.status)
            if name is None and pidfile is None:
                name, pidfile = service.process, service.pidfile
        if pidfile:
            out = ssh.run(["sh", "-c", _PID_FROM_FILE, "sh", pidfile]).stdout
            state["selector"] = f"pidfile {pidfile}"
        elif name:
            out = ssh.run(["sh", "-c", _PIDS_BY_NAME, "sh", name]).stdout
            state["selector"] = f"process name {name}"
        else:
            raise InputError(f"{self._what()}: give 'name', 'pidfile' or a 'service' declaring one")
        state["pids"] = [int(p) for p in out.split() if p.isdigit()]
        return state

    def check_before_inject(self, ssh: SshTransport, prior: Mapping[str, Any]) -> None:
        """Refuse when nothing matches: the steady state is not what the drill expects."""
        if not prior["pids"]:
            raise InjectionError(f"{self._what()}: no running process for {prior['selector']}")

    def inject_commands(self, prior: Mapping[str, Any]) -> list[list[str]]:
        """``kill -s SIGNAL`` on exactly the processes found by capture."""
        signal = self.params.get("signal", "KILL")
        return [["kill", "-s", signal, *[str(p) for p in prior["pids"]]]]

    def revert_script(self, prior: Mapping[str, Any]) -> str:
        """Start the declared service unless it already runs; else nothing."""
        if not prior.get("start"):
            return ": no service declared to restart the killed process"
        status, start = shlex.join(prior["status"]), shlex.join(prior["start"])
        return f"{status} >/dev/null 2>&1 || {start}"

    def reverted(self, ssh: SshTransport, prior: Mapping[str, Any]) -> bool:
        """The declared service runs again (always true without a service)."""
        if not prior.get("status"):
            return True
        return ssh.run(list(prior["status"]), check=False).exit_code == 0

    def known_prior(self, host: SshHost) -> dict[str, Any]:
        """The declared service's commands; the pids only the host knows."""
        prior = self.example_prior()
        if "service" in self.params:
            service = declared_service(host, self.params["service"])
            prior.update(start=list(service.start), status=list(service.status))
        return prior

    def example_prior(self) -> dict[str, Any]:
        """Placeholders for the pids and the service commands."""
        service = self.params.get("service")
        return {
            "pids": ["<pids>"],
            "start": [f"<start of {service}>"] if service else None,
            "status": [f"<status of {service}>"] if service else None,
        }
