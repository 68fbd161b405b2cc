"""The shared shape of every SSH host fault, with its target-side dead-man timer.

A host fault is a :class:`HostFault` subclass that gives four small hooks: ``read_state``
(the prior state, read-only), ``inject_commands`` (argv lists), ``revert_script`` (POSIX sh
text built only from constants and :func:`shlex.join`/:func:`shlex.quote`, idempotent) and
``reverted`` (verification). The base class does the rest:

* ``capture`` stores the subclass's prior state plus how the dead-man timer is armed;
* ``inject`` arms the **dead-man timer on the target** first, then runs the inject commands;
* ``revert`` runs the revert script, then disarms the timer; running it twice is harmless;
* ``is_reverted`` checks the subclass's verification and that no timer is left.

The dead-man timer runs the very same revert script by itself after ``deadman_ttl_s``
seconds (param; default :data:`DEFAULT_DEADMAN_TTL_S`) unless disarmed, so a fault never
outlives a vanished engine by more than the TTL. On a systemd host in the init network
namespace it is a transient ``systemd-run --on-active`` timer; elsewhere (containers, the
lab's network namespaces, where systemd would run the revert in the wrong namespace) it is
a ``setsid`` shell with a pidfile in ``/tmp`` that sleeps, then reverts.

Declared services and directories come from the environment's SSH host entry::

    services:
      web:
        start: "/srv/web.sh start"     # shell-free command lines, split with shlex
        stop: "/srv/web.sh stop"
        status: "/srv/web.sh status"   # exit 0 = running
        pidfile: /run/web.pid          # optional
        process: httpd                 # optional: the process name
        paths: {data: /srv/data, share: /srv/share}   # directories faults may touch

Everything ``revert`` needs is resolved at ``capture`` time and kept in the prior state
(journaled before inject), so ``bcdrill recover`` works even if the environment changed.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import structlog

from engine.errors import InjectionError, InputError, RevertError, TransportError
from engine.faults.base import FaultAction, FaultPlan, TargetKind
from engine.transports.ssh import UnexpectedExit

if TYPE_CHECKING:
    from engine.model.types import SshHost
    from engine.transports.connections import Transports
    from engine.transports.ssh import SshTransport

log = structlog.get_logger(__name__)

DEFAULT_DEADMAN_TTL_S = 600.0
# Pidfiles of timers and burns live here on the *target* (names carry fault id, host, hash).
TARGET_RUNTIME_DIR = "/tmp"  # noqa: S108 - a path on the target host, not a local temp file
DEADMAN_TTL_SCHEMA: dict[str, Any] = {
    "type": "number",
    "minimum": 1,
    "maximum": 86400,
    "description": "seconds after which the target reverts the fault by itself",
}

# $1 pidfile (written by the arming shell), $2 TTL seconds, $3 revert script. The pidfile
# goes before the revert runs, so disarming never interrupts a revert in progress.
_DEADMAN_SCRIPT = """exec </dev/null >/dev/null 2>&1
sleep "$2"
rm -f "$1"
sh -c "$3"
"""
# $1 the deadman script, $2 pidfile, $3 TTL, $4 revert script: start it in its own session
# (it outlives the SSH channel) and record its pid at once — no waiting for it to start.
_ARM_SCRIPT = """setsid sh -c "$1" bcdrill-deadman "$2" "$3" "$4" </dev/null >/dev/null 2>&1 &
echo $! > "$2.tmp" && mv -f "$2.tmp" "$2"
"""
# Exit codes of the one-round-trip inject script, to tell arming from injecting failures.
_ARM_FAILED = 97
_INJECT_FAILED = 98
_DISARM_SCRIPT = """if [ -f "$1" ]; then
    pid=$(cat "$1")
    rm -f "$1"
    [ -n "$pid" ] && kill -s TERM -- "-$pid" 2>/dev/null
fi
exit 0
"""
_DETECT_SCRIPT = """if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then
    init=$(readlink /proc/1/ns/net 2>/dev/null)
    if [ -n "$init" ] && [ "$init" = "$(readlink /proc/self/ns/net)" ]; then
        echo systemd; exit 0
    fi
fi
echo setsid
"""


def host_params_schema(properties: Mapping[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A host fault's params schema: its own properties plus ``deadman_ttl_s``."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {**properties, "deadman_ttl_s": DEADMAN_TTL_SCHEMA},
        "required": list(required),
    }


def slug(*parts: str) -> str:
    """A file-, chain- and unit-safe name for ``parts`` (readable prefix + short hash)."""
    raw = "-".join(parts)
    readable = re.sub(r"[^A-Za-z0-9_]+", "_", raw)[:24].strip("_") or "x"
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


def argv_of(command_line: str, what: str) -> list[str]:
    """Split a declared command line (no shell) into argv; reject empty or malformed ones."""
    try:
        argv = shlex.split(command_line)
    except ValueError as exc:
        raise InputError(f"{what}: cannot parse command {command_line!r}: {exc}") from None
    if not argv:
        raise InputError(f"{what}: empty command")
    return argv


@dataclass(frozen=True)
class DeclaredService:
    """A service declared on an SSH host: its command lines, pidfile and process name."""

    name: str
    start: tuple[str, ...]
    stop: tuple[str, ...]
    status: tuple[str, ...]
    pidfile: str | None
    process: str | None


def declared_service(host: SshHost, name: str | None) -> DeclaredService:
    """The service ``name`` on ``host`` (the only one when ``name`` is None)."""
    services = host.services
    if name is None:
        if len(services) != 1:
            known = ", ".join(sorted(services)) or "none"
            raise InputError(f"host {host.name!r}: say which service (declared: {known})")
        name = next(iter(services))
    entry = services.get(name)
    if not isinstance(entry, Mapping):
        known = ", ".join(sorted(services)) or "none"
        raise InputError(f"host {host.name!r} declares no service {name!r} (declared: {known})")
    what = f"host {host.name!r} service {name!r}"
    commands = {}
    for verb in ("start", "stop", "status"):
        if not isinstance(entry.get(verb), str):
            raise InputError(f"{what}: missing '{verb}' command")
        commands[verb] = tuple(argv_of(entry[verb], f"{what} {verb}"))
    return DeclaredService(
        name=name,
        start=commands["start"],
        stop=commands["stop"],
        status=commands["status"],
        pidfile=entry.get("pidfile"),
        process=entry.get("process"),
    )


def declared_path(host: SshHost, name: str) -> str:
    """The directory declared as ``paths.<name>`` by a service of ``host`` (must be unique)."""
    found = {
        str(entry["paths"][name])
        for entry in host.services.values()
        if isinstance(entry, Mapping) and isinstance(entry.get("paths"), Mapping) and name in entry["paths"]
    }
    if len(found) != 1:
        problem = "declares no" if not found else "declares more than one"
        raise InputError(f"host {host.name!r} {problem} path {name!r} (under services.*.paths)")
    path = found.pop()
    if not path.startswith("/"):
        raise InputError(f"host {host.name!r}: declared path {name!r} must be absolute: {path!r}")
    return path.rstrip("/") or "/"


class HostFault(FaultAction):
    """Base class of SSH host faults: dead-man timer, inject, revert, verify."""

    target_kind: ClassVar[TargetKind] = "host"

    # ------------------------------------------------------------ subclass hooks

    def read_state(self, ssh: SshTransport, host: SshHost) -> dict[str, Any]:
        """The prior state this fault needs to revert (read-only). JSON-able."""
        return {}

    @abstractmethod
    def inject_commands(self, prior: Mapping[str, Any]) -> list[list[str]]:
        """The argv lists that apply the fault, run in order."""

    @abstractmethod
    def revert_script(self, prior: Mapping[str, Any]) -> str:
        """Idempotent POSIX sh text that restores ``prior`` (also run by the dead-man timer)."""

    @abstractmethod
    def reverted(self, ssh: SshTransport, prior: Mapping[str, Any]) -> bool:
        """True when the target is back in ``prior`` as far as this fault goes."""

    @abstractmethod
    def example_prior(self) -> dict[str, Any]:
        """A stand-in prior state for :meth:`describe` (placeholders, no target access)."""

    # ------------------------------------------------------------ FaultAction

    @property
    def deadman_ttl_s(self) -> float:
        """Seconds after which the target reverts by itself (param ``deadman_ttl_s``)."""
        return float(self.params.get("deadman_ttl_s", DEFAULT_DEADMAN_TTL_S))

    @property
    def deadman_name(self) -> str:
        """The timer's name on the target: per fault and per host."""
        return f"bcdrill-deadman-{slug(self.fault_id, self.target.ref)}"

    def known_prior(self, host: SshHost) -> dict[str, Any]:
        """The prior state as far as the environment file tells it, without reaching the host.

        Raises :class:`InputError` when the host entry lacks a declaration this fault needs (a
        service, a path); placeholders stand for what only the host can say. ``bcdrill plan``
        and ``validate --env`` use it. Default: :meth:`example_prior`.
        """
        return self.example_prior()

    def describe(self) -> FaultPlan:
        """The exact commands with placeholders where the prior state is not known yet."""
        return self._plan(self.example_prior())

    def describe_on(self, host: SshHost) -> FaultPlan:
        """The exact commands with what the environment declares for ``host`` filled in."""
        return self._plan(self.known_prior(host))

    def _plan(self, prior: Mapping[str, Any]) -> FaultPlan:
        inject = " && ".join(shlex.join(argv) for argv in self.inject_commands(prior))
        return FaultPlan(
            fault_id=self.fault_id,
            action=self.name,
            target=self.target,
            inject=f"on {self.target.label}: {inject}",
            revert=f"on {self.target.label}: sh -c {shlex.quote(self.revert_script(prior))}",
        )

    def capture(self, transports: Transports) -> dict[str, Any]:
        """Read the prior state and decide how the dead-man timer will be armed."""
        ssh, host = self._connection(transports)
        try:
            state = self.read_state(ssh, host)
            mode = ssh.run(["sh", "-c", _DETECT_SCRIPT]).stdout.strip()
        except TransportError as exc:
            raise InjectionError(f"{self._what()}: cannot read the prior state: {exc}") from exc
        state["deadman"] = {
            "mode": "systemd" if mode == "systemd" else "setsid",
            "name": self.deadman_name,
            "pidfile": f"{TARGET_RUNTIME_DIR}/{self.deadman_name}.pid",
            "ttl_s": self.deadman_ttl_s,
        }
        return state

    def inject(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        """Arm the dead-man timer, then apply the fault — in one round trip to the host."""
        ssh, host = self._connection(transports)
        self.check_before_inject(ssh, prior)
        steps = [f"{self._arm_command(prior)} || exit {_ARM_FAILED}"]
        steps += [f"{shlex.join(argv)} || exit {_INJECT_FAILED}" for argv in self.inject_commands(prior)]
        try:
            ssh.run(["sh", "-c", "\n".join(steps)])
        except UnexpectedExit as exc:
            if exc.result.exit_code == _ARM_FAILED:
                raise InjectionError(f"{self._what()}: cannot arm the dead-man timer: {exc}") from exc
            raise self.injection_error(exc) from exc
        except TransportError as exc:
            raise self.injection_error(exc) from exc
        log.info("fault.host.injected", fault=self.fault_id, action=self.name, host=host.name)

    def revert(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        """Run the revert script, then disarm the timer. Idempotent."""
        ssh, host = self._connection(transports)
        try:
            ssh.run(["sh", "-c", self.revert_script(prior)])
            self._disarm(ssh, prior)
        except TransportError as exc:
            raise RevertError(
                f"{self._what()}: revert failed: {exc}. Run by hand on {host.name}: "
                f"{self.manual_revert(prior)}"
            ) from exc
        log.info("fault.host.reverted", fault=self.fault_id, action=self.name, host=host.name)

    def is_reverted(self, transports: Transports, prior: Mapping[str, Any]) -> bool:
        """True when the target state is restored and no dead-man timer is left."""
        ssh, _ = self._connection(transports)
        return self.reverted(ssh, prior) and not self.deadman_armed(ssh, prior)

    def manual_revert(self, prior: Mapping[str, Any]) -> str:
        """The revert a person runs on the host (as root) when the automatic one failed."""
        return f"sh -c {shlex.quote(self.revert_script(prior) + self._disarm_text(prior))}"

    # ------------------------------------------------------------ helpers for subclasses

    def check_before_inject(self, ssh: SshTransport, prior: Mapping[str, Any]) -> None:
        """Refuse to inject when the prior state makes the fault unsafe (default: accept)."""

    def injection_error(self, exc: TransportError) -> InjectionError:
        """The error raised when an inject command fails (subclasses may explain better)."""
        return InjectionError(f"{self._what()}: inject failed: {exc}")

    def _what(self) -> str:
        return f"fault {self.fault_id!r} ({self.name}) on {self.target.label}"

    def _connection(self, transports: Transports) -> tuple[SshTransport, SshHost]:
        host = transports.environment.hosts.get(self.target.ref)
        if host is None:
            raise InputError(f"{self._what()}: no SSH host {self.target.ref!r} in the environment")
        return transports.ssh(self.target.ref), host

    # ------------------------------------------------------------ dead-man timer

    def _arm_command(self, prior: Mapping[str, Any]) -> str:
        """The shell-quoted command that arms this fault's dead-man timer on the target."""
        deadman = prior["deadman"]
        ttl = f"{float(deadman['ttl_s']):g}"
        script = self.revert_script(prior)
        if deadman["mode"] == "systemd":
            unit = deadman["name"]
            timer = [f"--unit={unit}", f"--on-active={ttl}s", "--timer-property=AccuracySec=100ms"]
            return shlex.join(["systemd-run", *timer, "--", "sh", "-c", script])
        pidfile = deadman["pidfile"]
        return shlex.join(["sh", "-c", _ARM_SCRIPT, "sh", _DEADMAN_SCRIPT, pidfile, ttl, script])

    def _disarm(self, ssh: SshTransport, prior: Mapping[str, Any]) -> None:
        ssh.run(["sh", "-c", self._disarm_text(prior)])

    def _disarm_text(self, prior: Mapping[str, Any]) -> str:
        deadman = prior.get("deadman")
        if not deadman:
            return ""
        if deadman["mode"] == "systemd":
            unit = shlex.quote(deadman["name"])
            return (
                f"\nsystemctl stop {unit}.timer >/dev/null 2>&1; "
                f"systemctl reset-failed {unit}.service >/dev/null 2>&1; true"
            )
        return f"\nset -- {shlex.quote(deadman['pidfile'])}\n{_DISARM_SCRIPT}"

    def deadman_armed(self, ssh: SshTransport, prior: Mapping[str, Any]) -> bool:
        """True while the target still holds this fault's dead-man timer."""
        deadman = prior.get("deadman")
        if not deadman:
            return False
        if deadman["mode"] == "systemd":
            check = ["systemctl", "is-active", "--quiet", f"{deadman['name']}.timer"]
            return ssh.run(check, check=False).exit_code == 0
        probe = 'test -f "$1" && pgrep -g "$(cat "$1")" -r R,S,D,T,t >/dev/null'
        return ssh.run(["sh", "-c", probe, "sh", deadman["pidfile"]], check=False).exit_code == 0
