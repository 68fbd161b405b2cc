"""``host.port_block`` and ``host.partition``: iptables rules in chains of their own.

Each fault creates its own chains ``BCD-<fault>-<hash>-I`` / ``-O`` and jumps to them from the
top of ``INPUT`` / ``OUTPUT``. Revert removes exactly those jumps and chains, nothing else, so
foreign rules are untouched. IPv4 only (``iptables``).

The prior state follows from the environment (the engine's SSH port), so the fault is one round
trip: the dead-man timer, then one ``iptables-restore --noflush`` that creates the chains (``-N``:
it fails if they exist already), fills them and jumps to them — all or nothing.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from engine.errors import InjectionError, InputError, TransportError
from engine.faults.host_base import HostFault, host_params_schema

if TYPE_CHECKING:
    from engine.model.types import SshHost
    from engine.transports.ssh import SshTransport

_HOOKS = {"I": "INPUT", "O": "OUTPUT"}
# What an iptables-restore word may hold: rule words are ports, addresses, chain and module names.
_RESTORE_WORD = re.compile(r"^[A-Za-z0-9_.:/,-]+$")
# $@ = the fault's chains. Removes every jump to them, then the chains; absent ones are skipped.
_REMOVE_CHAINS = """for chain in "$@"; do
    for hook in INPUT OUTPUT FORWARD; do
        while iptables -w -C "$hook" -j "$chain" 2>/dev/null; do
            iptables -w -D "$hook" -j "$chain" || break
        done
    done
    if iptables -w -S "$chain" >/dev/null 2>&1; then
        iptables -w -F "$chain" && iptables -w -X "$chain"
    fi
done
"""


def _restore_line(words: list[str]) -> str:
    """One ``iptables-restore`` line; a word it could misread (space, quote) is refused."""
    bad = [w for w in words if not _RESTORE_WORD.match(w)]
    if bad:
        raise InputError(f"iptables rule word {bad[0]!r} is not allowed (letters, digits and _.:/,- only)")
    return " ".join(words)


def chain_name(fault_id: str, direction: str) -> str:
    """The fault's chain for ``I`` (INPUT) or ``O`` (OUTPUT): at most 25 characters."""
    readable = re.sub(r"[^A-Za-z0-9_]+", "_", fault_id)[:12]
    digest = hashlib.sha256(fault_id.encode()).hexdigest()[:6]
    return f"BCD-{readable}-{digest}-{direction}"


class _ChainFault(HostFault):
    """Common part: create chains with rules, jump to them, remove exactly them."""

    def directions(self) -> tuple[str, ...]:
        """``I``, ``O`` or both, from the ``direction`` param."""
        direction = self.params.get("direction", self.default_direction)
        return {"in": ("I",), "out": ("O",), "both": ("I", "O")}[direction]

    default_direction: ClassVar[str] = "in"

    def rules(self, direction: str, prior: Mapping[str, Any]) -> list[list[str]]:
        """Rule specs (without ``-A CHAIN``) for one direction's chain."""
        raise NotImplementedError

    def chains(self) -> list[str]:
        """This fault's chain names."""
        return [chain_name(self.fault_id, d) for d in self.directions()]

    def local_state(self, host: SshHost) -> dict[str, Any]:
        """The SSH port the engine uses: known from the environment, no round trip (existing
        chains are refused by ``iptables-restore`` itself, atomically)."""
        return {"ssh_port": host.port}

    atomic_inject: ClassVar[bool] = True  # iptables-restore commits all or nothing

    def refused_error(self, exc: TransportError) -> InjectionError:
        """Nothing applied: most likely the chains exist (an earlier run was not reverted)."""
        from engine.transports.ssh import UnexpectedExit

        detail = exc.result.stderr.strip() if isinstance(exc, UnexpectedExit) else str(exc)
        return InjectionError(
            f"{self._what()}: iptables-restore applied nothing ({detail}); if chains "
            f"{self.chains()!r} already exist, revert the earlier fault first"
        )

    def restore_input(self, prior: Mapping[str, Any]) -> str:
        """``iptables-restore`` text: declare each chain, fill it, jump to it from INPUT/OUTPUT."""
        lines = ["*filter"]
        lines += [_restore_line(["-N", chain_name(self.fault_id, d)]) for d in self.directions()]
        for direction in self.directions():
            chain = chain_name(self.fault_id, direction)
            lines += [_restore_line(["-A", chain, *rule]) for rule in self.rules(direction, prior)]
        for direction in self.directions():
            jump = ["-I", _HOOKS[direction], "1", "-j", chain_name(self.fault_id, direction)]
            lines.append(_restore_line(jump))
        return "\n".join([*lines, "COMMIT", ""])

    def inject_commands(self, prior: Mapping[str, Any]) -> list[list[str]]:
        """One ``iptables-restore --noflush``: chains, rules and jumps in one atomic commit."""
        return [["iptables-restore", "-w", "--noflush"]]

    def inject_stdin(self, prior: Mapping[str, Any]) -> str:
        """What ``iptables-restore`` reads (see :meth:`restore_input`)."""
        return self.restore_input(prior)

    def revert_script(self, prior: Mapping[str, Any]) -> str:
        """Remove the jumps to this fault's chains and the chains themselves."""
        return f"set -- {shlex.join(self.chains())}\n{_REMOVE_CHAINS}"

    def reverted(self, ssh: SshTransport, prior: Mapping[str, Any]) -> bool:
        """None of this fault's chains is mentioned by ``iptables -S``."""
        listing = ssh.run(["iptables", "-w", "-S"]).stdout
        return not any(chain in listing for chain in self.chains())

    def example_prior(self) -> dict[str, Any]:
        """The SSH port placeholder."""
        return {"ssh_port": "SSH_PORT"}  # placeholder: the host's SSH port


class PortBlock(_ChainFault):
    """Block one port: ``port``, ``protocol`` (tcp/udp), ``direction`` (in/out/both), ``mode``.

    ``mode: reject`` (default) answers with a TCP reset / ICMP port unreachable, so clients see
    "connection refused" at once; ``drop`` makes them time out.
    """

    name: ClassVar[str] = "host.port_block"
    params_schema: ClassVar[dict[str, Any]] = host_params_schema(
        {
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "protocol": {"enum": ["tcp", "udp"]},
            "direction": {"enum": ["in", "out", "both"]},
            "mode": {"enum": ["reject", "drop"]},
        },
        required=("port",),
    )

    def check_before_inject(self, ssh: SshTransport, prior: Mapping[str, Any]) -> None:
        """Refuse to block the engine's own SSH port (that is a partition)."""
        cuts_ssh = (
            self.params.get("protocol", "tcp") == "tcp"
            and int(self.params["port"]) == int(prior["ssh_port"])
            and "I" in self.directions()
        )
        if cuts_ssh:
            raise InputError(
                f"{self._what()}: port {self.params['port']!r} is the engine's SSH port; "
                "blocking it would cut the drill's own connection (use host.partition)"
            )

    def rules(self, direction: str, prior: Mapping[str, Any]) -> list[list[str]]:
        """One rule matching the destination port."""
        protocol = self.params.get("protocol", "tcp")
        match = ["-p", protocol, "--dport", str(self.params["port"])]
        if self.params.get("mode", "reject") == "drop":
            return [[*match, "-j", "DROP"]]
        reply = "tcp-reset" if protocol == "tcp" else "icmp-port-unreachable"
        return [[*match, "-j", "REJECT", "--reject-with", reply]]


class Partition(_ChainFault):
    """Cut the host off the network: all traffic, or only to/from ``peers`` (IPv4 networks).

    Loopback stays up, and with ``keep_ssh`` (default true) so does the engine's SSH port,
    so the drill can still revert; the dead-man timer covers ``keep_ssh: false``.
    """

    name: ClassVar[str] = "host.partition"
    default_direction: ClassVar[str] = "both"
    params_schema: ClassVar[dict[str, Any]] = host_params_schema(
        {
            "peers": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "direction": {"enum": ["in", "out", "both"]},
            "keep_ssh": {"type": "boolean"},
        }
    )

    def peers(self) -> list[str]:
        """The validated peer networks (empty: everyone)."""
        networks = []
        for peer in self.params.get("peers", ()):
            try:
                network = ipaddress.ip_network(peer, strict=False)
            except ValueError:
                raise InputError(f"{self._what()}: peer {peer!r} is not an IP network") from None
            if network.version != 4:
                raise InputError(f"{self._what()}: peer {peer!r}: only IPv4 is supported")
            networks.append(str(network))
        return networks

    def rules(self, direction: str, prior: Mapping[str, Any]) -> list[list[str]]:
        """Let loopback and (optionally) SSH through, drop the rest or the peers."""
        inbound = direction == "I"
        rules = [["-i" if inbound else "-o", "lo", "-j", "RETURN"]]
        if self.params.get("keep_ssh", True):
            port_flag = "--dport" if inbound else "--sport"
            rules.append(["-p", "tcp", port_flag, str(prior["ssh_port"]), "-j", "RETURN"])
        peers = self.peers()
        if not peers:
            return [*rules, ["-j", "DROP"]]
        flag = "-s" if inbound else "-d"
        return rules + [[flag, peer, "-j", "DROP"] for peer in peers]
