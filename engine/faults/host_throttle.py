"""``host.throttle``: rate-limit an interface with ``tc tbf``; revert restores the root qdisc."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from engine.faults.host_base import (
    FACT_PREFIX,
    REFUSED_ON_TARGET,
    TARGET_RUNTIME_DIR,
    HostFault,
    host_params_schema,
    slug,
)

if TYPE_CHECKING:
    from engine.model.types import SshHost
    from engine.transports.ssh import SshTransport

HANDLE = "bcd:"
_RATE = r"^\d+(\.\d+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$"
_SIZE = r"^\d+(\.\d+)?(b|k|kb|m|mb|kbit|mbit)?$"
_TIME = r"^\d+(\.\d+)?(us|ms|s)$"
# $1 marker file, $2 the interface ("" = the one holding address $3, else the only non-loopback
# one), $4 "netem" when the fault needs it; then the qdisc words. Decides the interface on the
# target and refuses (changing nothing) a root qdisc that is not the kernel's default or a
# missing netem; else writes the interface to the marker (the revert reads it there), reports
# what it found and adds the qdisc.
_THROTTLE = f"""refuse() {{ echo "$1" >&2; exit {REFUSED_ON_TARGET}; }}
set -f
marker=$1 dev=$2 address=$3 netem=$4
shift 4
if [ -z "$dev" ]; then
    dev=$(ip -o -4 addr show | awk -v a="$address" '{{split($4, p, "/")}} p[1] == a {{print $2; exit}}')
fi
if [ -z "$dev" ]; then
    others=$(ip -o -4 addr show | awk '$2 != "lo" {{print $2}}' | sort -u)
    [ "$(echo "$others" | wc -w)" -eq 1 ] ||
        refuse "say which 'interface' to throttle (found: $(echo $others))"
    dev=$others
fi
root=$(tc qdisc show dev "$dev" root) || refuse "cannot read the root qdisc of $dev"
root=$(echo $root)
case "$root" in
    "qdisc "*" 0: root"*) ;;
    *) refuse "$dev already has a configured root qdisc ($root); refusing because it could not be \\
restored exactly" ;;
esac
if [ "$netem" = netem ]; then
    [ -d /sys/module/sch_netem ] || {{
        m=/lib/modules/$(uname -r)
        grep -qs '/sch_netem\\.ko' "$m/modules.builtin" "$m/modules.dep"
    }} || refuse "delay and loss need tc netem, which this host's kernel does not have; \\
use 'rate' only (nothing was changed)"
fi
echo "$dev" > "$marker.tmp" && mv -f "$marker.tmp" "$marker" || exit 1
echo "{FACT_PREFIX}interface=$dev"
echo "{FACT_PREFIX}root_qdisc=$root"
tc qdisc add dev "$dev" root handle {HANDLE} "$@"
"""
# $1 marker: delete the root qdisc of the interface it names, only when it is ours; then the marker.
_REMOVE = """[ -f "$1" ] || exit 0
dev=$(cat "$1")
if [ -n "$dev" ] && tc qdisc show dev "$dev" root | grep -q '^qdisc [a-z_]* bcd: root'; then
    tc qdisc del dev "$dev" root || exit 1
fi
rm -f "$1"
"""
# $1 marker, $2 the interface when known: true unless our root qdisc is still there.
_OURS_GONE = """dev=$(cat "$1" 2>/dev/null) || dev=$2
[ -z "$dev" ] || ! tc qdisc show dev "$dev" root | grep -q '^qdisc [a-z_]* bcd: root'
"""
# Before markers: $1 interface.
_REMOVE_ON = """if tc qdisc show dev "$1" root | grep -q '^qdisc [a-z_]* bcd: root'; then
    tc qdisc del dev "$1" root
fi
"""


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

    def local_state(self, host: SshHost) -> dict[str, Any]:
        """The interface when the playbook names it, the host's address and the marker's path: no
        round trip. The inject script decides the rest on the target."""
        return {
            "interface": self.params.get("interface"),
            "address": host.address,
            "marker": self._marker(),
        }

    def _marker(self) -> str:
        return f"{TARGET_RUNTIME_DIR}/bcdrill-throttle-{slug(self.fault_id, self.target.ref, self.run_id)}"

    def inject_commands(self, prior: Mapping[str, Any]) -> list[list[str]]:
        """One script: pick the interface, check its root qdisc (and netem), then
        ``tc qdisc add … root handle bcd: tbf …`` (or ``netem`` with delay/loss)."""
        rate = str(self.params["rate"])
        if "delay" in self.params or "loss" in self.params:
            qdisc = ["netem", "rate", rate]
            if "delay" in self.params:
                qdisc += ["delay", str(self.params["delay"])]
            if "loss" in self.params:
                qdisc += ["loss", f"{self.params['loss']}%"]
        else:
            burst = str(self.params.get("burst", "32kbit"))
            latency = str(self.params.get("latency", "50ms"))
            qdisc = ["tbf", "rate", rate, "burst", burst, "latency", latency]
        interface, address = str(prior.get("interface") or ""), str(prior["address"])
        return [["sh", "-c", _THROTTLE, "sh", str(prior["marker"]), interface, address, qdisc[0], *qdisc]]

    def facts(self, raw: Mapping[str, str]) -> dict[str, Any]:
        """The interface throttled and its root qdisc before."""
        return dict(raw)

    def revert_script(self, prior: Mapping[str, Any]) -> str:
        """Delete our root qdisc (handle ``bcd:``) on the interface the marker names; the kernel
        puts its default back."""
        if "marker" not in prior:  # a prior state captured before markers existed
            return f"set -- {shlex.quote(str(prior['interface']))}\n{_REMOVE_ON}"
        return f"set -- {shlex.quote(str(prior['marker']))}\n{_REMOVE}"

    def reverted(self, ssh: SshTransport, prior: Mapping[str, Any]) -> bool:
        """Our root qdisc is gone from the throttled interface."""
        interface = str(self.applied_facts().get("interface") or prior.get("interface") or "")
        marker = str(prior.get("marker") or "/nonexistent")
        return ssh.run(["sh", "-c", _OURS_GONE, "sh", marker, interface], check=False).exit_code == 0

    def example_prior(self) -> dict[str, Any]:
        """Placeholder interface."""
        return {
            "interface": self.params.get("interface", "<interface>"),
            "address": "<address>",
            "marker": self._marker(),
        }
