"""``bcdrill canary``: a small writer beside a client's PostgreSQL, so a drill can measure RPO.

``start`` creates the canary table (:mod:`engine.probes.pg_canary`) if it is missing, puts a
short POSIX sh loop on the host (:data:`WRITER_PATH`) and runs it: a transient systemd
service (``systemd-run``, restarted if it dies) where systemd runs, else a ``setsid nohup``
process group with a pidfile. Every N seconds it adds one row through ``psql`` as the
database user. ``stop`` ends it (idempotent; the rows stay), ``status`` says whether it runs
and how old the newest row is. Everything goes over the environment's verified SSH
connection, with every argument quoted; nothing here needs a secret.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass

from engine.errors import InputError, TransportError
from engine.probes.pg_canary import CREATE_SQL, INSERT_SQL, NEWEST_SQL, PSQL, check_database, psql_argv
from engine.transports.ssh import SshTransport

__all__ = [
    "MODES",
    "WRITER_PATH",
    "CanaryStatus",
    "canary_start",
    "canary_status",
    "canary_stop",
    "unit_name",
    "wait_for_rows",
]

WRITER_PATH = "/usr/local/lib/bcdrill/canary-writer.sh"
PID_DIR = "/run"
MIN_INTERVAL_S, MAX_INTERVAL_S = 0.1, 3600.0
#: How the writer runs: ``auto`` picks systemd where it runs, else ``nohup``.
MODES = ("auto", "systemd", "nohup")

# $1 database, $2 seconds between rows. Failed writes (database down, dropped, restoring)
# are the point of a drill: the loop carries on and the next row goes in when it can.
_WRITER = f"""#!/bin/sh
# bcdrill canary writer: one row into the canary table of database $1 every $2 seconds.
while :; do
    {shlex.join(PSQL)} -d "$1" -c {shlex.quote(INSERT_SQL)} >/dev/null 2>&1
    sleep "$2"
done
"""
_SYSTEMD_HERE = "[ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1"


@dataclass(frozen=True)
class CanaryStatus:
    """What ``bcdrill canary status`` shows."""

    running: bool
    mode: str  # "systemd", "nohup" or "none"
    newest_seq: int | None
    age_s: float | None


def unit_name(database: str) -> str:
    """The writer's systemd unit (and pidfile stem) for ``database``."""
    return f"bcdrill-canary-{check_database(database)}"


def _pidfile(database: str) -> str:
    return f"{PID_DIR}/{unit_name(database)}.pid"


def _checked(database: str, run_as: str) -> None:
    try:
        check_database(database)
        check_database(run_as, "user")
    except ValueError as exc:
        raise InputError(f"canary: {exc}") from None


def canary_start(
    ssh: SshTransport, database: str, interval_s: float, run_as: str = "postgres", mode: str = "auto"
) -> str:
    """Create the table, install the writer and run it; return how it runs. Idempotent."""
    _checked(database, run_as)
    if mode not in MODES:
        raise InputError(f"canary: mode {mode!r} is not one of {', '.join(MODES)}")
    if not MIN_INTERVAL_S <= interval_s <= MAX_INTERVAL_S:
        limits = f"{MIN_INTERVAL_S:g}s..{MAX_INTERVAL_S:g}s"
        raise InputError(f"canary: --every {interval_s:g}s is outside {limits}")
    if not ssh.host.sudo:
        raise InputError(
            f"canary: host {ssh.host.name!r} has sudo: false; the writer runs as {run_as!r} and needs sudo"
        )
    ssh.run(psql_argv(database, CREATE_SQL, run_as=run_as), sudo=False)
    install = 'mkdir -p "$(dirname "$1")" && printf "%s" "$2" > "$1" && chmod 0755 "$1"'
    ssh.run(["sh", "-c", install, "sh", WRITER_PATH, _WRITER])
    status = canary_status(ssh, database, run_as)
    if status.running:
        return status.mode
    seconds = f"{interval_s:g}"
    ssh.run(["sh", "-c", _launch_script(database, seconds, run_as, mode)])
    return canary_status(ssh, database, run_as).mode


def _launch_script(database: str, seconds: str, run_as: str, mode: str) -> str:
    """sh text starting the writer: systemd-run, or a session of its own with a pidfile."""
    writer = ["/bin/sh", WRITER_PATH, database, seconds]
    unit = unit_name(database)
    systemd = ["systemd-run", "--quiet", f"--unit={unit}", f"--uid={run_as}", "--property=Restart=always"]
    # Started in the background by a shell without job control, setsid needs no fork: $! is
    # the new session's (and process group's) leader, which ``stop`` signals as a group.
    nohup = ["setsid", "runuser", "-u", run_as, "--", "nohup", *writer]
    pidfile = shlex.quote(_pidfile(database))
    background = f"{shlex.join(nohup)} </dev/null >/dev/null 2>&1 & echo $! > {pidfile}"
    if mode == "nohup":
        return background
    if mode == "systemd":
        return shlex.join([*systemd, *writer])
    return f"if {_SYSTEMD_HERE}; then {shlex.join([*systemd, *writer])}; else {background}; fi"


def canary_stop(ssh: SshTransport, database: str) -> bool:
    """Stop the writer (the rows stay); True when one was running."""
    _checked(database, "postgres")
    was = canary_status(ssh, database).running
    unit, pidfile = shlex.quote(f"{unit_name(database)}.service"), shlex.quote(_pidfile(database))
    script = (
        f"if {_SYSTEMD_HERE}; then systemctl stop {unit} 2>/dev/null; systemctl reset-failed {unit} "
        f'2>/dev/null; fi; if [ -f {pidfile} ]; then kill -s TERM -- "-$(cat {pidfile})" 2>/dev/null; '
        f"rm -f {pidfile}; fi; exit 0"
    )
    ssh.run(["sh", "-c", script])
    return was


def canary_status(ssh: SshTransport, database: str, run_as: str = "postgres") -> CanaryStatus:
    """Whether the writer runs (and how), and the newest canary row's number and age."""
    _checked(database, run_as)
    unit, pidfile = shlex.quote(f"{unit_name(database)}.service"), shlex.quote(_pidfile(database))
    script = (
        f"if {_SYSTEMD_HERE} && systemctl is-active --quiet {unit}; then echo systemd; "
        f'elif [ -f {pidfile} ] && kill -0 "$(cat {pidfile})" 2>/dev/null; then echo nohup; '
        "else echo none; fi"
    )
    mode = ssh.run(["sh", "-c", script]).stdout.strip() or "none"
    try:
        argv = psql_argv(database, NEWEST_SQL, run_as=run_as if ssh.host.sudo else None)
        out = ssh.run(argv, sudo=False, check=False)
    except TransportError:
        out = None
    fields = out.stdout.split() if out is not None and out.exit_code == 0 else []
    seq, age = (int(fields[0]), float(fields[1])) if len(fields) == 2 else (None, None)
    return CanaryStatus(running=mode != "none", mode=mode, newest_seq=seq, age_s=age)


def wait_for_rows(ssh: SshTransport, database: str, rows: int, timeout: float) -> CanaryStatus:
    """Poll until the canary has written at least ``rows`` rows (or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    status = canary_status(ssh, database)
    while (status.newest_seq or 0) < rows and time.monotonic() < deadline:
        time.sleep(0.2)
        status = canary_status(ssh, database)
    return status
