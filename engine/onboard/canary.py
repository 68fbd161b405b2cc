"""``bcdrill canary``: a small writer beside a client's PostgreSQL, so a drill can measure RPO.

``start`` creates the canary table (:mod:`engine.probes.pg_canary`) if it is missing, puts a
short POSIX sh loop on the host (:data:`WRITER_PATH`) and runs it
(:mod:`engine.onboard.canary_process`: a transient systemd service where systemd runs, else a
``setsid nohup`` process group with a pidfile). Every N seconds it adds one row through ``psql`` as the
database user. ``stop`` ends it (idempotent; the rows stay), ``status`` says whether it runs
and how old the newest row is. Everything goes over the environment's verified SSH
connection, with every argument quoted; nothing here needs a secret.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass

from engine.errors import InputError, TransportError
from engine.onboard.canary_process import MODES, WRITER_DIR, WriterUnit, install_writer
from engine.probes.pg_canary import CREATE_SQL, INSERT_SQL, NEWEST_SQL, PSQL, check_database, psql_argv
from engine.transports.ssh import SshTransport

__all__ = [
    "MODES",
    "WRITER_PATH",
    "CanaryStatus",
    "canary_start",
    "canary_status",
    "canary_stop",
    "check_interval",
    "unit_name",
    "wait_for_rows",
]

WRITER_PATH = f"{WRITER_DIR}/canary-writer.sh"
MIN_INTERVAL_S, MAX_INTERVAL_S = 0.1, 3600.0

# $1 database, $2 seconds between rows. Failed writes (database down, dropped, restoring)
# are the point of a drill: the loop carries on and the next row goes in when it can.
_WRITER = f"""#!/bin/sh
# bcdrill canary writer: one row into the canary table of database $1 every $2 seconds.
while :; do
    {shlex.join(PSQL)} -d "$1" -c {shlex.quote(INSERT_SQL)} >/dev/null 2>&1
    sleep "$2"
done
"""


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


def _checked(database: str, run_as: str) -> WriterUnit:
    try:
        check_database(run_as, "user")
        return WriterUnit(unit_name(database))
    except ValueError as exc:
        raise InputError(f"canary: {exc}") from None


def check_interval(interval_s: float, mode: str) -> None:
    """Refuse an interval outside the writer's limits, or an unknown mode (InputError)."""
    if mode not in MODES:
        raise InputError(f"canary: mode {mode!r} is not one of {', '.join(MODES)}")
    if not MIN_INTERVAL_S <= interval_s <= MAX_INTERVAL_S:
        limits = f"{MIN_INTERVAL_S:g}s..{MAX_INTERVAL_S:g}s"
        raise InputError(f"canary: --every {interval_s:g}s is outside {limits}")


def canary_start(
    ssh: SshTransport, database: str, interval_s: float, run_as: str = "postgres", mode: str = "auto"
) -> str:
    """Create the table, install the writer and run it; return how it runs. Idempotent."""
    writer = _checked(database, run_as)
    check_interval(interval_s, mode)
    if not ssh.host.sudo:
        raise InputError(
            f"canary: host {ssh.host.name!r} has sudo: false; the writer runs as {run_as!r} and needs sudo"
        )
    ssh.run(psql_argv(database, CREATE_SQL, run_as=run_as), sudo=False)
    install_writer(ssh, WRITER_PATH, _WRITER)
    status = canary_status(ssh, database, run_as)
    if status.running:
        return status.mode
    argv = ["/bin/sh", WRITER_PATH, database, f"{interval_s:g}"]
    ssh.run(["sh", "-c", writer.launch_script(argv, run_as, mode)])
    return canary_status(ssh, database, run_as).mode


def canary_stop(ssh: SshTransport, database: str) -> bool:
    """Stop the writer (the rows stay); True when one was running."""
    return _checked(database, "postgres").stop(ssh)


def canary_status(ssh: SshTransport, database: str, run_as: str = "postgres") -> CanaryStatus:
    """Whether the writer runs (and how), and the newest canary row's number and age."""
    mode = _checked(database, run_as).mode(ssh)
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
