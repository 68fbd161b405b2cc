"""The shared shape of every SSH host fault, with its target-side dead-man timer.

A host fault is a :class:`HostFault` subclass that gives four small hooks: ``local_state``
(the prior state as the environment tells it; ``read_state`` reads it from the target instead,
at the cost of a round trip), ``inject_commands`` (argv lists), ``revert_script`` (POSIX sh
text built only from constants and :func:`shlex.join`/:func:`shlex.quote`, idempotent) and
``reverted`` (verification). What only the target knows is best read by the inject command
itself; when a revert depends on it, the command leaves it in a marker file on the target
*before* it changes anything, and the revert script reads it there — so the engine, the
dead-man timer and ``bcdrill recover`` revert alike, whether or not ``fault.applied`` was
written (``host.service_stop``, ``host.throttle``). The base class does the rest:

* ``capture`` stores the subclass's prior state plus how the dead-man timer is armed; a
  subclass whose prior state follows from the environment alone (``local_state``) costs no
  round trip here, and the timer's kind (systemd or setsid) is decided on the target at arming;
* ``inject`` arms the **dead-man timer on the target**, then runs the inject commands — one
  round trip; an ``atomic_inject`` subclass (all or nothing, e.g. ``iptables-restore``) that
  fails disarms at once, because nothing was applied; so does any inject command that exits
  :data:`REFUSED_ON_TARGET` (it looked at the target first and changed nothing);
* what an inject command reads on the target as it acts (the pids it signalled, the bytes it
  filled) it prints as ``bcdrill.fact KEY=VALUE`` lines; they come back in the same round trip
  and go to the ``fault.applied`` record (:meth:`HostFault.applied_facts`). They are facts for
  the debrief; no revert relies on them (only on ``fault.intent`` and the target's markers);
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

from engine.errors import InjectionError, InputError, RevertError, TransportError
from engine.faults.base import EffectiveTime, FaultAction, FaultPlan, TargetKind
from engine.faults.target_clock import (
    CLOCK_COMMAND,
    STARTED_CLOCK_COMMAND,
    ClockOffset,
    effective_on_target,
    offset_of,
    parse_started,
    parse_unix,
)
from engine.logsetup import get_logger

if TYPE_CHECKING:
    from engine.model.types import Environment, SshHost
    from engine.transports.connections import Transports
    from engine.transports.ssh import SshTransport

log = get_logger(__name__)

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
# The inject script's shell variable holding the pid of the ``date`` read as the commands start.
_STARTED = "bcdrill_started"
# Here-document delimiter for an inject command's input (``inject_stdin``).
_STDIN_END = "BCDRILL_INPUT_END"
#: Exit code of an inject command that read the target, found it not as the drill expects (the
#: process is not running, the fill file exists) and changed nothing; stderr says why.
REFUSED_ON_TARGET = 95
#: Prefix of an inject command's output line that reports what it read on the target.
FACT_PREFIX = "bcdrill.fact "
# Exit codes of the one-round-trip inject script, to tell refusing, arming and injecting apart.
_REFUSED = 96  # an atomic inject failed, or a command refused: nothing applied, timer disarmed
_ARM_FAILED = 97
_INJECT_FAILED = 98
_DISARM_SCRIPT = """if [ -f "$1" ]; then
    pid=$(cat "$1")
    rm -f "$1"
    [ -n "$pid" ] && kill -s TERM -- "-$pid" 2>/dev/null
fi
exit 0
"""
# Is the dead-man timer a systemd timer here? Only on a systemd host, in the init network
# namespace (elsewhere systemd would revert in the wrong namespace). One shell condition,
# cheapest test first: a host without systemd spends no process on it.
_SYSTEMD_HERE = (
    "[ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1 && "
    '_init=$(readlink /proc/1/ns/net 2>/dev/null) && [ -n "$_init" ] && '
    '[ "$_init" = "$(readlink /proc/self/ns/net)" ]'
)


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


def facts_in(output: str) -> dict[str, str]:
    """The ``bcdrill.fact KEY=VALUE`` lines of an inject script's output, as a dict."""
    found = {}
    for line in output.splitlines():
        if line.startswith(FACT_PREFIX):
            key, _, value = line[len(FACT_PREFIX) :].partition("=")
            found[key.strip()] = value.strip()
    return found


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
    _clock: ClockOffset | None = None  # the target clock's offset, measured at capture
    _applied_on_target: float | None = None  # the target's clock when the inject script ended
    _facts: dict[str, str] | None = None  # what the inject commands read on the target

    # ------------------------------------------------------------ subclass hooks

    def read_state(self, ssh: SshTransport, host: SshHost) -> dict[str, Any]:
        """The prior state this fault needs to revert (read-only). JSON-able."""
        return {}

    def local_state(self, host: SshHost) -> dict[str, Any] | None:
        """The prior state when the environment alone tells it (no round trip); None: read it."""
        return None

    # True when the inject commands apply all or nothing: a failure then disarms the timer.
    atomic_inject: ClassVar[bool] = False
    # True when the fault takes effect as its inject commands *start* (a slow ``dropdb`` has
    # begun the outage long before it returns): the target's clock is read just before them.
    # False: when the last command has finished (an ``iptables-restore`` applies at its end).
    effect_at_start: ClassVar[bool] = False

    def inject_stdin(self, prior: Mapping[str, Any]) -> str | None:
        """Text fed to the (single) inject command's standard input, in the same round trip."""
        return None

    def refused_error(self, exc: TransportError) -> InjectionError:
        """The error raised when an atomic inject failed (subclasses say what to do)."""
        return InjectionError(f"{self._what()}: the target refused the fault, nothing applied: {exc}")

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
        """The timer's name on the target: per run, fault and host (two labs never collide)."""
        return f"bcdrill-deadman-{slug(self.fault_id, self.target.ref, self.run_id)}"

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
        stdin = self.inject_stdin(prior)
        if stdin is not None:
            inject += " with input: " + "; ".join(line for line in stdin.splitlines() if line)
        return FaultPlan(
            fault_id=self.fault_id,
            action=self.name,
            target=self.target,
            inject=f"on {self.target.label}: {inject}",
            revert=f"on {self.target.label}: sh -c {shlex.quote(self.revert_script(prior))}",
        )

    def capture(self, transports: Transports) -> dict[str, Any]:
        """The prior state (read from the target unless ``local_state`` knows it) and the timer.

        The timer's kind is ``auto``: the arming script picks systemd or setsid on the target,
        and disarming handles both, so capture needs no detection round trip.
        """
        ssh, host = self._connection(transports)
        state = self.local_state(host)
        if state is None:
            try:
                state = self.read_state(ssh, host)
            except TransportError as exc:
                raise InjectionError(f"{self._what()}: cannot read the prior state: {exc}") from exc
        self._clock = offset_of(ssh)  # the target's clock, for its own moment of inject
        state["deadman"] = {
            "mode": "auto",
            "name": self.deadman_name,
            "pidfile": f"{TARGET_RUNTIME_DIR}/{self.deadman_name}.pid",
            "ttl_s": self.deadman_ttl_s,
        }
        return state

    def inject(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        """Arm the dead-man timer, then apply the fault — in one round trip to the host."""
        from engine.transports.ssh import UnexpectedExit  # paramiko: only when a fault is injected

        ssh, host = self._connection(transports)
        self.check_before_inject(ssh, prior)
        self._facts = None  # an earlier inject's readings are not this one's
        steps = [f"{self._arm_command(prior)} || exit {_ARM_FAILED}"]
        disarm = shlex.join(["sh", "-c", self._disarm_text(prior)])
        refused = f"{{ {disarm}; exit {_REFUSED}; }}"  # the command changed nothing: disarm
        on_failure = f'{{ [ "$?" -eq {REFUSED_ON_TARGET} ] && {refused}; exit {_INJECT_FAILED}; }}'
        if self.atomic_inject:
            on_failure = refused
        commands = [shlex.join(argv) for argv in self.inject_commands(prior)]
        stdin = self.inject_stdin(prior)
        heredoc = f" <<'{_STDIN_END}'" if stdin is not None else ""
        steps += [f"{command} || {on_failure}" for command in commands[:-1]]
        steps += [f"{command}{heredoc} || {on_failure}" for command in commands[-1:]]
        if stdin is not None and commands:  # the last command reads it: no extra shell, no pipe
            steps.append(f"{stdin.rstrip()}\n{_STDIN_END}")
        if self.effect_at_start:  # the target's moment as the commands start, read beside them
            steps.insert(1, f"{STARTED_CLOCK_COMMAND} & {_STARTED}=$!")
            steps.append(f'wait "${_STARTED}"')  # not the dead-man timer, also in the background
        else:
            steps.append(CLOCK_COMMAND)  # the target's own moment, in the same round trip
        try:
            result = ssh.run(["sh", "-c", "\n".join(steps)])
        except UnexpectedExit as exc:
            if exc.result.exit_code == _REFUSED:
                raise self.refused_error(exc) from exc
            if exc.result.exit_code == _ARM_FAILED:
                raise InjectionError(f"{self._what()}: cannot arm the dead-man timer: {exc}") from exc
            raise self.injection_error(exc) from exc
        except TransportError as exc:
            raise self.injection_error(exc) from exc
        self._applied_on_target = (parse_started if self.effect_at_start else parse_unix)(result.stdout)
        self._facts = facts_in(result.stdout)
        log.info("fault.host.injected", fault=self.fault_id, action=self.name, host=host.name)

    def applied_facts(self) -> dict[str, Any]:
        """What the inject commands read on the target as they acted (see :meth:`facts`)."""
        return self.facts(self._facts) if self._facts else {}

    def facts(self, raw: Mapping[str, str]) -> dict[str, Any]:
        """The ``bcdrill.fact`` lines of the inject, typed for the journal (default: as text)."""
        return dict(raw)

    def effective_at(
        self, transports: Transports, prior: Mapping[str, Any], since: float, until: float
    ) -> EffectiveTime | None:
        """When the inject commands started (``effect_at_start``) or ended by the target's
        clock, corrected by its offset."""
        moment = effective_on_target(self._applied_on_target, self._clock, self.target.label)
        if moment is None or not since - 0.05 <= moment.unix <= until + 0.05:
            return None  # an offset that does not fit the round trip is not to be trusted
        if self.effect_at_start:
            return EffectiveTime(moment.unix, f"{moment.source}, as the inject command started")
        return moment

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

    def inject_lasts_s(self, environment: Environment) -> float:
        """The inject commands run on the target until their timeout (``timeout -k 1``), and may
        start only after a reconnect."""
        host = environment.hosts.get(self.target.ref)
        if host is None:
            return 30.0 + 5.0 + 1.0  # the defaults
        return host.command_timeout_s + host.connect_timeout_s + 1.0

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
        timer = [f"--unit={deadman['name']}", f"--on-active={ttl}s", "--timer-property=AccuracySec=100ms"]
        systemd = shlex.join(["systemd-run", *timer, "--", "sh", "-c", script])
        setsid = self._setsid_arm(deadman["pidfile"], ttl, script)
        if deadman["mode"] == "systemd":
            return systemd
        if deadman["mode"] == "setsid":
            return setsid
        return f"if {_SYSTEMD_HERE}; then {systemd}; else {setsid}; fi"

    @staticmethod
    def _setsid_arm(pidfile: str, ttl: str, script: str) -> str:
        """Start the timer in its own session (it outlives the SSH channel), its pid recorded at
        once, run by the inject script's own shell (no extra process). A timer already armed for
        the same fault on this host means an earlier run was not reverted: refuse rather than
        orphan it (systemd-run refuses a duplicate unit the same way)."""
        q = shlex.quote(pidfile)
        busy = shlex.quote(f"dead-man timer {pidfile} is already armed")
        start = shlex.join(["setsid", "sh", "-c", _DEADMAN_SCRIPT, "bcdrill-deadman", pidfile, ttl, script])
        return (
            f"if [ -e {q} ]; then echo {busy} >&2; false; "
            f"else {start} </dev/null >/dev/null 2>&1 & echo $! > {q}; fi"
        )

    def _disarm(self, ssh: SshTransport, prior: Mapping[str, Any]) -> None:
        ssh.run(["sh", "-c", self._disarm_text(prior)])

    def _disarm_text(self, prior: Mapping[str, Any]) -> str:
        deadman = prior.get("deadman")
        if not deadman:
            return ""
        unit = shlex.quote(deadman["name"])
        systemd = (
            f"\nsystemctl stop {unit}.timer >/dev/null 2>&1; "
            f"systemctl reset-failed {unit}.service >/dev/null 2>&1; true"
        )
        setsid = f"\nset -- {shlex.quote(deadman['pidfile'])}\n{_DISARM_SCRIPT}"
        if deadman["mode"] == "systemd":
            return systemd
        if deadman["mode"] == "setsid":
            return setsid
        return systemd + setsid  # auto: whichever was armed (the setsid part ends with exit 0)

    def deadman_armed(self, ssh: SshTransport, prior: Mapping[str, Any]) -> bool:
        """True while the target still holds this fault's dead-man timer."""
        deadman = prior.get("deadman")
        if not deadman:
            return False
        systemd = 'systemctl is-active --quiet "$2.timer" 2>/dev/null'
        setsid = 'test -f "$1" && pgrep -g "$(cat "$1")" -r R,S,D,T,t >/dev/null'
        probe = {"systemd": systemd, "setsid": setsid}.get(deadman["mode"], f"{{ {setsid}; }} || {systemd}")
        argv = ["sh", "-c", probe, "sh", deadman["pidfile"], deadman["name"]]
        return ssh.run(argv, check=False).exit_code == 0
