"""``host.throttle``: rate-limit an interface with ``tc tbf``; revert restores the root qdisc."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from engine.errors import InjectionError, InputError
from engine.faults.host_base import HostFault, host_params_schema

if TYPE_CHECKING:
    from engine.model.types import SshHost
    from engine.transports.ssh import SshTransport

HANDLE = "bcd:"
_RATE = r"^\d+(\.\d+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$"
_SIZE = r"^\d+(\.\d+)?(b|k|kb|m|mb|kbit|mbit)?$"
_TIME = r"^\d+(\.\d+)?(us|ms|s)$"
# Read-only netem check: loaded, built in, or loadable as a module.
_NETEM_PRESENT = """[ -d /sys/module/sch_netem ] && exit 0
m=/lib/modules/$(uname -r)
grep -qs '/sch_netem\\.ko' "$m/modules.builtin" "$m/modules.dep" && exit 0
exit 1
"""
# $1 interface: delete the root qdisc only when it is ours.
_REMOVE = """if tc qdisc show dev "$1" root | grep -q '^qdisc [a-z_]* bcd: root'; then
    tc qdisc del dev "$1" root
fi
"""


def _normalise(line: str) -> str:
    return re.sub(r"\s+", " ", line.strip())


class Throttle(HostFault):
    """Limit an interface's egress to ``rate`` (``tbf``; ``burst``, ``latency`` optional).

    ``interface`` defaults to the one holding the host's address (or the only non-loopback
    one). ``delay``/``loss`` need ``tc netem``: when the kernel lacks it the fault is refused
    with a clear message rather than silently applied without them. A host whose root qdisc
    is already configured (not the kernel default) is refused: it could not be restored
    exactly.
    """

    name: ClassVar[str] = "host.throttle"
    params_schema: ClassVar[dict[str, Any]] = host_params_schema(
        {
            "rate": {"type": "string", "pattern": _RATE},
            "burst": {"type": "string", "pattern": _SIZE},
            "latency": {"type": "string", "pattern": _TIME},
            "interface": {"type": "string", "pattern": r"^[A-Za-z0-9_.@-]{1,15}$"},
            "delay": {"type": "string", "pattern": _TIME},
            "loss": {"type": "number", "minimum": 0, "maximum": 100},
        },
        required=("rate",),
    )

    def read_state(self, ssh: SshTransport, host: SshHost) -> dict[str, Any]:
        """The interface, its root qdisc line, and whether netem exists."""
        interface = self.params.get("interface") or self._interface(ssh, host)
        root = ssh.run(["tc", "qdisc", "show", "dev", interface, "root"]).stdout
        netem = ssh.run(["sh", "-c", _NETEM_PRESENT], check=False).exit_code == 0
        return {"interface": interface, "root_qdisc": _normalise(root), "netem": netem}

    def _interface(self, ssh: SshTransport, host: SshHost) -> str:
        lines = ssh.run(["ip", "-o", "-4", "addr", "show"]).stdout.splitlines()
        entries = [(ln.split()[1], ln.split()[3].split("/")[0]) for ln in lines if len(ln.split()) > 3]
        for name, address in entries:
            if address == host.address:
                return name
        others = sorted({name for name, _ in entries if name != "lo"})
        if len(others) == 1:
            return others[0]
        raise InputError(f"{self._what()}: say which 'interface' to throttle (found {others!r})")

    def check_before_inject(self, ssh: SshTransport, prior: Mapping[str, Any]) -> None:
        """Refuse delay/loss without netem, and a non-default root qdisc."""
        wanted = [p for p in ("delay", "loss") if p in self.params]
        if wanted and not prior["netem"]:
            raise InjectionError(
                f"{self._what()}: {' and '.join(wanted)} need tc netem, which this host's "
                "kernel does not have; use 'rate' only (nothing was changed)"
            )
        if not re.match(r"^qdisc \S+ 0: root", prior["root_qdisc"]):
            raise InjectionError(
                f"{self._what()}: {prior['interface']} already has a configured root qdisc "
                f"({prior['root_qdisc']!r}); refusing because it could not be restored exactly"
            )

    def inject_commands(self, prior: Mapping[str, Any]) -> list[list[str]]:
        """``tc qdisc add … root handle bcd: tbf …`` (or ``netem`` with delay/loss)."""
        base = ["tc", "qdisc", "add", "dev", str(prior["interface"]), "root", "handle", HANDLE]
        rate = str(self.params["rate"])
        if "delay" in self.params or "loss" in self.params:
            netem = ["netem", "rate", rate]
            if "delay" in self.params:
                netem += ["delay", str(self.params["delay"])]
            if "loss" in self.params:
                netem += ["loss", f"{self.params['loss']}%"]
            return [base + netem]
        burst = str(self.params.get("burst", "32kbit"))
        latency = str(self.params.get("latency", "50ms"))
        return [[*base, "tbf", "rate", rate, "burst", burst, "latency", latency]]

    def revert_script(self, prior: Mapping[str, Any]) -> str:
        """Delete our root qdisc (handle ``bcd:``); the kernel puts its default back."""
        return f"set -- {shlex.quote(str(prior['interface']))}\n{_REMOVE}"

    def reverted(self, ssh: SshTransport, prior: Mapping[str, Any]) -> bool:
        """The root qdisc line is the one captured before."""
        root = ssh.run(["tc", "qdisc", "show", "dev", str(prior["interface"]), "root"]).stdout
        return _normalise(root) == prior["root_qdisc"]

    def example_prior(self) -> dict[str, Any]:
        """Placeholder interface."""
        return {"interface": self.params.get("interface", "<interface>"), "netem": False}
