"""How a canary writer runs on a client's host: installed, started, found and stopped.

Both canaries (a PostgreSQL table, a file in a share) are a short POSIX sh loop installed
under :data:`WRITER_DIR` and run as a transient systemd service (``systemd-run``, restarted
if it dies) where systemd runs, else as a ``setsid nohup`` process group with a pidfile in
:data:`PID_DIR`. Everything here is sh text built from constants and :func:`shlex.quote`d
values, run over the environment's verified SSH connection.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from engine.transports.ssh import SshTransport

__all__ = ["MODES", "WRITER_DIR", "WriterUnit", "install_writer"]

WRITER_DIR = "/usr/local/lib/bcdrill"
PID_DIR = "/run"
#: How the writer runs: ``auto`` picks systemd where it runs, else ``nohup``.
MODES = ("auto", "systemd", "nohup")
_SYSTEMD_HERE = "[ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1"


def install_writer(ssh: SshTransport, path: str, text: str) -> None:
    """Put the writer script ``text`` at ``path`` on the host (mode 0755). Idempotent."""
    install = 'mkdir -p "$(dirname "$1")" && printf "%s" "$2" > "$1" && chmod 0755 "$1"'
    ssh.run(["sh", "-c", install, "sh", path, text])


@dataclass(frozen=True)
class WriterUnit:
    """One canary writer on a host: its systemd unit (and pidfile) name and its command."""

    unit: str  # e.g. bcdrill-canary-orders

    @property
    def pidfile(self) -> str:
        """The pidfile of a writer run without systemd."""
        return f"{PID_DIR}/{self.unit}.pid"

    def launch_script(self, writer: Sequence[str], run_as: str, mode: str) -> str:
        """sh text starting ``writer`` as ``run_as``: systemd-run, or a session with a pidfile."""
        systemd = [
            "systemd-run",
            "--quiet",
            f"--unit={self.unit}",
            f"--uid={run_as}",
            "--property=Restart=always",
        ]
        # Started in the background by a shell without job control, setsid needs no fork: $! is
        # the new session's (and process group's) leader, which ``stop`` signals as a group.
        nohup = ["setsid", "runuser", "-u", run_as, "--", "nohup", *writer]
        background = f"{shlex.join(nohup)} </dev/null >/dev/null 2>&1 & echo $! > {shlex.quote(self.pidfile)}"
        if mode == "nohup":
            return background
        if mode == "systemd":
            return shlex.join([*systemd, *writer])
        return f"if {_SYSTEMD_HERE}; then {shlex.join([*systemd, *writer])}; else {background}; fi"

    def stop_script(self) -> str:
        """sh text ending the writer however it runs (always exits 0)."""
        unit, pidfile = shlex.quote(f"{self.unit}.service"), shlex.quote(self.pidfile)
        return (
            f"if {_SYSTEMD_HERE}; then systemctl stop {unit} 2>/dev/null; systemctl reset-failed {unit} "
            f'2>/dev/null; fi; if [ -f {pidfile} ]; then kill -s TERM -- "-$(cat {pidfile})" 2>/dev/null; '
            f"rm -f {pidfile}; fi; exit 0"
        )

    def mode_script(self) -> str:
        """sh text printing how the writer runs: ``systemd``, ``nohup`` or ``none``."""
        unit, pidfile = shlex.quote(f"{self.unit}.service"), shlex.quote(self.pidfile)
        return (
            f"if {_SYSTEMD_HERE} && systemctl is-active --quiet {unit}; then echo systemd; "
            f'elif [ -f {pidfile} ] && kill -0 "$(cat {pidfile})" 2>/dev/null; then echo nohup; '
            "else echo none; fi"
        )

    def mode(self, ssh: SshTransport) -> str:
        """How the writer runs on the host now (``none`` when it does not)."""
        return ssh.run(["sh", "-c", self.mode_script()]).stdout.strip() or "none"

    def stop(self, ssh: SshTransport) -> bool:
        """End the writer; True when one was running. Idempotent."""
        was = self.mode(ssh) != "none"
        ssh.run(["sh", "-c", self.stop_script()])
        return was
