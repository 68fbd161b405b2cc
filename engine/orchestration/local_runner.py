"""The long-lived local runner, seen from a command: find it, start it, stop it.

One runner per ``$BCDRILL_HOME``: a daemon process (:mod:`engine.orchestration.daemon`) that
serves the ``drill-run`` flow and, unless a Prefect API is configured, runs the local Prefect
server as its child (database in ``<home>/runner/prefect``). It notes itself in
``<home>/runner/runner.json`` (pid, API URL, deployment id, idle limit, the fingerprint of the
environment it was started with) and removes the note when it stops.

Liveness is read from ``/proc/PID/status`` (a zombie counts as dead: PID 1 here does not reap).
A ``flock`` on ``<home>/runner/runner.lock`` orders starting, submitting and the runner's own
idle exit: a client holds it shared from "the runner is up" to "the flow run is submitted", the
runner holds it exclusively while it decides to exit idle — so no run is submitted to a runner
that is leaving. This module imports neither Prefect nor the Docker SDK.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.errors import RunnerError
from engine.home import home
from engine.record.runstore import pid_alive

DEFAULT_IDLE_S = 900.0  # 15 min without a drill: the runner exits by itself
STARTUP_TIMEOUT_S = 240.0  # a cold Prefect server takes 7-15 s quiet, 75-100 s on 2 loaded cores
STOP_TIMEOUT_S = 60.0  # a drill running at stop is cancelled: it reverts before the runner exits
_FINGERPRINT_PREFIXES = ("BCDRILL_", "PREFECT_API_URL")
_NOT_FINGERPRINTED = frozenset({"BCDRILL_RUNNER"})  # how a command reaches the runner, not what a drill reads


def runner_dir() -> Path:
    """The runner's folder in ``$BCDRILL_HOME``."""
    return home() / "runner"


def info_file() -> Path:
    """Where the running runner notes itself."""
    return runner_dir() / "runner.json"


def log_file() -> Path:
    """The runner's own output (its Prefect server's too)."""
    return runner_dir() / "runner.log"


def results_dir() -> Path:
    """Where each served drill writes its summary for the client that submitted it."""
    return runner_dir() / "results"


def wake_socket() -> Path:
    """The runner's wake-up socket: a client that submitted a drill sends it a datagram, so the
    runner takes the flow run now instead of at its next poll."""
    return runner_dir() / "wake.sock"


def wake_runner() -> None:
    """Tell the runner a flow run is waiting; nothing happens when it cannot be told (the
    runner's poll takes the run anyway, within :data:`engine.orchestration.daemon.POLL_S`)."""
    with suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"1", str(wake_socket()))


def environment_fingerprint(environ: dict[str, str] | None = None) -> str:
    """A digest of the variables a drill reads (``BCDRILL_*``, ``PREFECT_API_URL``, also as the
    active Prefect profile sets it): a runner started with other values would run the drill
    differently than this command would."""
    env = os.environ if environ is None else environ
    items = sorted(
        (k, v) for k, v in env.items() if k.startswith(_FINGERPRINT_PREFIXES) and k not in _NOT_FINGERPRINTED
    )
    profile_url = profile_api_url(env)
    if profile_url is not None:
        items.append(("profile PREFECT_API_URL", profile_url))
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]


def profile_api_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The ``PREFECT_API_URL`` of the Prefect profile a command with ``environ`` would use."""
    url = active_profile(environ).get("PREFECT_API_URL")
    return str(url) if url else None


def active_profile(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings of the Prefect profile a command with ``environ`` would use (its profiles
    file: ``$PREFECT_PROFILES_PATH``, else ``$PREFECT_HOME/profiles.toml``, else
    ``~/.prefect/profiles.toml``; its profile: ``$PREFECT_PROFILE``, else the file's active
    one), read without importing Prefect; empty when there is none."""
    env = os.environ if environ is None else environ
    user_home = env.get("HOME") or str(Path.home())

    def expand(value: str) -> Path:
        return Path(user_home + value[1:] if value.startswith("~") else value)

    prefect_home = expand(env.get("PREFECT_HOME") or "~/.prefect")
    path = expand(env.get("PREFECT_PROFILES_PATH") or str(prefect_home / "profiles.toml"))
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}
    active = env.get("PREFECT_PROFILE") or profiles.get("active")
    profile = (profiles.get("profiles") or {}).get(active) if isinstance(active, str) else None
    return profile if isinstance(profile, dict) else {}


@dataclass(frozen=True)
class RunnerInfo:
    """What a running runner noted about itself."""

    pid: int
    url: str
    deployment_id: str
    idle_s: float
    fingerprint: str
    started_at: float
    own_server: bool

    def alive(self) -> bool:
        """True while the runner's process lives (zombies count as dead)."""
        return pid_alive(self.pid)


def read_info() -> RunnerInfo | None:
    """The noted runner, or None (no note, an unreadable one)."""
    try:
        data = json.loads(info_file().read_text())
        return RunnerInfo(**{k: data[k] for k in RunnerInfo.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_info(info: RunnerInfo) -> None:
    """Note the runner (atomically)."""
    path = info_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(info)))
    os.replace(tmp, path)


def forget_info(pid: int) -> None:
    """Remove the note if it is still the one of ``pid``."""
    current = read_info()
    if current is not None and current.pid == pid:
        info_file().unlink(missing_ok=True)


def live_runner() -> RunnerInfo | None:
    """The running runner of this home, or None (a stale note is removed)."""
    info = read_info()
    if info is None:
        return None
    if not info.alive():
        forget_info(info.pid)
        return None
    return info


@contextmanager
def runner_lock(exclusive: bool) -> Iterator[None]:
    """The runner's ``flock`` (see the module's doc)."""
    path = runner_dir() / "runner.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start_runner(idle_s: float = DEFAULT_IDLE_S) -> tuple[RunnerInfo, bool]:
    """The running runner, started now if none runs; True when it was started by this call."""
    with runner_lock(exclusive=True):
        info = live_runner()
        if info is not None:
            return info, False
        return _spawn(idle_s), True


def _spawn(idle_s: float) -> RunnerInfo:
    """Start the daemon in a session of its own and wait until it has noted itself."""
    log = log_file()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.orchestration.daemon", "--idle", f"{idle_s:g}"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C of the starting command does not reach it
            close_fds=True,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        info = read_info()
        if info is not None and info.pid == process.pid:
            return info
        if process.poll() is not None:
            raise RunnerError(
                f"the bcdrill runner exited ({process.returncode}) while starting: {_tail(log)}"
            )
        time.sleep(0.1)
    _kill_group(process.pid)
    raise RunnerError(f"the bcdrill runner did not start within {STARTUP_TIMEOUT_S:g}s; see {log}")


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no output)"
    return lines[-1] if lines else "(no output)"


def stop_runner(timeout_s: float = STOP_TIMEOUT_S) -> RunnerInfo | None:
    """Stop the runner (a drill it runs is cancelled and reverts first); the runner stopped, or
    None when none ran. Whatever still lives in its process group after ``timeout_s`` is killed."""
    with runner_lock(exclusive=True):
        info = live_runner()
        if info is None:
            return None
        os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while info.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        _kill_group(info.pid)  # the daemon leads its own session: nothing of it may outlive stop
        forget_info(info.pid)
        return info


def _kill_group(pgid: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


__all__ = [
    "DEFAULT_IDLE_S",
    "RunnerInfo",
    "active_profile",
    "environment_fingerprint",
    "forget_info",
    "info_file",
    "live_runner",
    "log_file",
    "profile_api_url",
    "read_info",
    "results_dir",
    "runner_dir",
    "runner_lock",
    "start_runner",
    "stop_runner",
    "wake_runner",
    "wake_socket",
    "write_info",
]
