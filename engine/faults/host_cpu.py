"""``host.cpu_burn``: N busy shell loops in one process group; revert kills exactly that group."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from engine.faults.host_base import (
    REFUSED_ON_TARGET,
    TARGET_RUNTIME_DIR,
    HostFault,
    host_params_schema,
    slug,
)

if TYPE_CHECKING:
    from engine.model.types import SshHost
    from engine.transports.ssh import SshTransport

# $1 pidfile, $2 workers, $3 seconds. The leader's pid is the group id of all the workers
# (``timeout --foreground`` stays in the group), and each worker stops by itself at $3.
_BURN = """exec </dev/null >/dev/null 2>&1
echo $$ > "$1.tmp" && mv -f "$1.tmp" "$1"
n=0
while [ "$n" -lt "$2" ]; do
    timeout --foreground "$3" sh -c 'while :; do :; done' &
    n=$((n+1))
done
wait
rm -f "$1"
"""
# $1 the burn script, then its arguments: refuse a burn whose pidfile exists (changing nothing),
# else start detached and wait for the pidfile.
_START = f"""if [ -e "$2" ]; then
    echo "$2 exists already: a burn of this fault is running" >&2; exit {REFUSED_ON_TARGET}
fi
setsid -f sh -c "$1" bcdrill-cpu-burn "$2" "$3" "$4"
i=0
while [ ! -s "$2" ] && [ $i -lt 200 ]; do sleep 0.01; i=$((i+1)); done
[ -s "$2" ]
"""
# $1 pidfile: kill the group, wait until no live member is left (zombies do not count: an
# init that does not reap leaves them behind), remove the pidfile.
_STOP = """if [ -f "$1" ]; then
    pid=$(cat "$1")
    if [ -n "$pid" ]; then
        kill -s TERM -- "-$pid" 2>/dev/null
        i=0
        while pgrep -g "$pid" -r R,S,D,T,t >/dev/null 2>&1 && [ $i -lt 200 ]; do
            sleep 0.01; i=$((i+1))
        done
        kill -s KILL -- "-$pid" 2>/dev/null
    fi
    rm -f "$1"
fi
exit 0
"""


class CpuBurn(HostFault):
    """Run ``workers`` (default 1) busy loops; they also stop by themselves at the dead-man TTL."""

    name: ClassVar[str] = "host.cpu_burn"
    params_schema: ClassVar[dict[str, Any]] = host_params_schema(
        {"workers": {"type": "integer", "minimum": 1, "maximum": 64}}
    )

    def local_state(self, host: SshHost) -> dict[str, Any]:
        """The pidfile the burn will use: known without a round trip (the inject script refuses
        on the target when it exists already)."""
        return {"pidfile": self._pidfile()}

    def inject_commands(self, prior: Mapping[str, Any]) -> list[list[str]]:
        """Start the detached burn and wait for its pidfile."""
        workers = str(int(self.params.get("workers", 1)))
        seconds = f"{self.deadman_ttl_s:g}"
        return [["sh", "-c", _START, "sh", _BURN, str(prior["pidfile"]), workers, seconds]]

    def revert_script(self, prior: Mapping[str, Any]) -> str:
        """Kill exactly the burn's process group."""
        return f"set -- {shlex.quote(str(prior['pidfile']))}\n{_STOP}"

    def reverted(self, ssh: SshTransport, prior: Mapping[str, Any]) -> bool:
        """The pidfile is gone (revert removes it only after the group died)."""
        return ssh.run(["test", "-e", str(prior["pidfile"])], check=False).exit_code != 0

    def example_prior(self) -> dict[str, Any]:
        """Placeholder pidfile."""
        return {"pidfile": self._pidfile()}

    def _pidfile(self) -> str:
        return f"{TARGET_RUNTIME_DIR}/bcdrill-cpu-{slug(self.fault_id, self.target.ref, self.run_id)}.pid"
