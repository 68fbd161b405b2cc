"""``host.process_kill``: signal processes by exact name or pidfile; revert restarts a service."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from engine.errors import InputError
from engine.faults.host_base import (
    FACT_PREFIX,
    REFUSED_ON_TARGET,
    HostFault,
    declared_service,
    host_params_schema,
)

if TYPE_CHECKING:
    from engine.model.types import SshHost
    from engine.transports.ssh import SshTransport

SIGNALS = ("KILL", "TERM", "INT", "HUP", "QUIT", "STOP", "ABRT")

# $1 signal, $2 "name" or "pidfile", $3 the process name or the pidfile; then "$4" says what was
# looked for. Finds the processes — by exact name in the caller's network namespace only (lab
# hosts share one PID namespace, and on an ordinary host this is every process), or the live
# (not zombie) pid in the pidfile — refuses (changing nothing) when none runs, else reports and
# signals exactly those (decimal pids only: a pidfile holding "-1" must not signal everything).
_KILL = f"""set -f
pids=
if [ "$2" = pidfile ]; then
    pid=$(cat -- "$3" 2>/dev/null)
    case $pid in
        '' | *[!0-9]*) ;;
        *) grep -qs '^State:[[:space:]]*[^Z[:space:]]' "/proc/$pid/status" && pids=$pid ;;
    esac
else
    for pid in $(pgrep --ns "$$" --nslist net -x -- "$3"); do
        case $pid in '' | *[!0-9]*) ;; *) pids="$pids $pid" ;; esac
    done
fi
pids=${{pids# }}
if [ -z "$pids" ]; then echo "no running process for $4" >&2; exit {REFUSED_ON_TARGET}; fi
echo "{FACT_PREFIX}pids=$pids"
kill -s "$1" $pids
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

    def local_state(self, host: SshHost) -> dict[str, Any]:
        """How the processes are found and the service that restarts them: no round trip. The
        inject command finds the pids on the target as it signals them."""
        state: dict[str, Any] = {"start": None, "status": None}
        name, pidfile = self.params.get("name"), self.params.get("pidfile")
        if "service" in self.params:
            service = declared_service(host, self.params["service"])
            state["start"], state["status"] = list(service.start), list(service.status)
            if name is None and pidfile is None:
                name, pidfile = service.process, service.pidfile
        if pidfile:
            state["by"], state["selector"] = ["pidfile", pidfile], f"pidfile {pidfile}"
        elif name:
            state["by"], state["selector"] = ["name", name], f"process name {name}"
        else:
            raise InputError(f"{self._what()}: give 'name', 'pidfile' or a 'service' declaring one")
        return state

    def inject_commands(self, prior: Mapping[str, Any]) -> list[list[str]]:
        """One script: find the processes, refuse when none runs, ``kill -s SIGNAL`` exactly them."""
        signal = self.params.get("signal", "KILL")
        return [["sh", "-c", _KILL, "sh", signal, *[str(w) for w in prior["by"]], str(prior["selector"])]]

    def facts(self, raw: Mapping[str, str]) -> dict[str, Any]:
        """The pids signalled, as numbers."""
        return {"pids": [int(p) for p in raw.get("pids", "").split() if p.isdecimal()]}

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
        """Exactly what a run will use (the pids only the host knows, at inject)."""
        return self.local_state(host)

    def example_prior(self) -> dict[str, Any]:
        """Placeholders for the selection and the service commands."""
        service = self.params.get("service")
        name, pidfile = self.params.get("name"), self.params.get("pidfile")
        by = ["pidfile", pidfile] if pidfile else ["name", name or f"<process of {service}>"]
        return {
            "by": by,
            "selector": f"{by[0]} {by[1]}",
            "start": [f"<start of {service}>"] if service else None,
            "status": [f"<status of {service}>"] if service else None,
        }
