"""``bcdrill canary … --share DIR``: a canary file in a client's shared folder, so a drill can
measure RPO on a file share.

``start`` puts a short POSIX sh loop on the host (:data:`WRITER_PATH`) and runs it like the
PostgreSQL canary (:mod:`engine.onboard.canary_process`), as the share directory's owner
unless told otherwise — the user staff's files are written as. Every N seconds it rewrites
the canary file (:mod:`engine.probes.file_canary`) with one more ``<seq> <unix time>`` line,
through a side file and a rename, so a backup never takes half a line. It never creates the
share: while the folder is gone (deleted, being restored) it writes nothing, and after a
restore it carries on from the newest line that survived, as staff would carry on from the
restored files. ``stop`` ends it (the file stays), ``status`` says whether it runs and how old
the newest line is.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time

from engine.errors import InputError, TransportError
from engine.onboard.canary import CanaryStatus, check_interval
from engine.onboard.canary_process import WRITER_DIR, WriterUnit, install_writer
from engine.probes.file_canary import CANARY_FILE, KEEP_LINES, canary_path, check_share
from engine.probes.pg_canary import check_database
from engine.transports.ssh import SshTransport

__all__ = [
    "WRITER_PATH",
    "share_canary_start",
    "share_canary_status",
    "share_canary_stop",
    "share_unit_name",
    "wait_for_lines",
]

WRITER_PATH = f"{WRITER_DIR}/share-canary-writer.sh"

# $1 share directory, $2 seconds between lines.
_WRITER = f"""#!/bin/sh
# bcdrill share canary: one more "<seq> <unix time>" line in $1/{CANARY_FILE} every $2 seconds.
f="$1/{CANARY_FILE}"
while :; do
    if [ -d "$1" ]; then
        last=$(tail -n 1 "$f" 2>/dev/null)
        last=${{last%% *}}
        case $last in ''|*[!0-9]*) last=0 ;; esac
        {{ tail -n {KEEP_LINES - 1} "$f" 2>/dev/null; echo "$((last + 1)) $(date +%s.%N)"; }} \\
            >"$f.new" 2>/dev/null && mv -f "$f.new" "$f" 2>/dev/null
    fi
    sleep "$2"
done
"""


def share_unit_name(share: str) -> str:
    """The writer's systemd unit (and pidfile stem) for ``share``: readable, unique per path."""
    path = _checked(share)
    readable = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")[:24] or "root"
    return f"bcdrill-canary-share-{readable}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


def _checked(share: str) -> str:
    try:
        return check_share(share)
    except ValueError as exc:
        raise InputError(f"canary: {exc}") from None


def _owner(ssh: SshTransport, share: str) -> str:
    """The share directory's owner; InputError when the directory is not there."""
    result = ssh.run(["stat", "-c", "%U", share], check=False)
    owner = result.stdout.strip()
    if result.exit_code != 0 or not owner:
        detail = result.stderr.strip()[-200:] or "no owner"
        raise InputError(f"canary: share {share!r} is not a directory on {ssh.host.name!r}: {detail}")
    return owner


def share_canary_start(
    ssh: SshTransport, share: str, interval_s: float, run_as: str | None = None, mode: str = "auto"
) -> str:
    """Install the writer and run it (as ``run_as``, default the share's owner); return how it
    runs. Idempotent."""
    share = _checked(share)
    check_interval(interval_s, mode)
    if not ssh.host.sudo:
        raise InputError(f"canary: host {ssh.host.name!r} has sudo: false; the share writer needs sudo")
    owner = _owner(ssh, share)  # also: the share is there
    user = run_as or owner
    try:
        check_database(user, "user")
    except ValueError as exc:
        raise InputError(f"canary: {exc}") from None
    install_writer(ssh, WRITER_PATH, _WRITER)
    writer = WriterUnit(share_unit_name(share))
    mode_now = writer.mode(ssh)
    if mode_now != "none":
        return mode_now
    ssh.run(
        ["sh", "-c", writer.launch_script(["/bin/sh", WRITER_PATH, share, f"{interval_s:g}"], user, mode)]
    )
    return writer.mode(ssh)


def share_canary_stop(ssh: SshTransport, share: str) -> bool:
    """Stop the writer (the canary file stays); True when one was running."""
    return WriterUnit(share_unit_name(share)).stop(ssh)


def share_canary_status(ssh: SshTransport, share: str) -> CanaryStatus:
    """Whether the writer runs (and how), and the newest line's number and age (target clock)."""
    mode = WriterUnit(share_unit_name(share)).mode(ssh)
    try:
        script = 'tail -n 1 "$1" && date +%s.%N'
        out = ssh.run(["sh", "-c", script, "sh", canary_path(share)], check=False)
    except TransportError:
        out = None
    fields = out.stdout.split() if out is not None and out.exit_code == 0 else []
    seq, age = None, None
    if len(fields) == 3 and fields[0].isdecimal():
        with contextlib.suppress(ValueError):  # a line edited by hand, a date without %N
            seq, age = int(fields[0]), float(fields[2]) - float(fields[1])
    return CanaryStatus(running=mode != "none", mode=mode, newest_seq=seq, age_s=age)


def wait_for_lines(ssh: SshTransport, share: str, lines: int, timeout: float) -> CanaryStatus:
    """Poll until the canary has written line number ``lines`` (or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    status = share_canary_status(ssh, share)
    while (status.newest_seq or 0) < lines and time.monotonic() < deadline:
        time.sleep(0.2)
        status = share_canary_status(ssh, share)
    return status
