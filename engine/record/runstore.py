"""The run store: one folder per run under :func:`engine.home.runs_dir`.

A run folder holds ``journal.jsonl``, snapshots of the playbook and environment used,
``owner.json`` (the pid and host that own the run while it is live), the ack ``inbox/``,
an ``abort`` request when one was made, and the debrief files.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import PreflightError, RunNotFoundError
from engine.home import home, runs_dir

OWNER = "owner.json"
ABORT = "abort.json"
MAX_SHOWN_REF = 80  # longer run references are cut short in messages


def new_run_id(playbook_id: str, now: datetime | None = None) -> str:
    """``20261128T101500Z-storefront-down-3f9a``: sortable, readable, unique."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{playbook_id}-{secrets.token_hex(2)}"


def create_run_dir(run_id: str, root: Path | None = None) -> Path:
    """Make the run folder (fails if it exists: run ids are never reused)."""
    path = (root or runs_dir()) / run_id
    path.mkdir(parents=True, exist_ok=False)
    (path / "inbox").mkdir()
    return path


def find_run(ref: str, root: Path | None = None) -> Path:
    """A run folder from a path, a run id, or a unique run id prefix ('latest' works too)."""
    shown = _shown(ref)
    if not ref or "\0" in ref:
        raise RunNotFoundError(f"no run {shown}: give a run id, prefix, folder or 'latest'")
    candidate = Path(ref)
    if _is_run_folder(candidate):
        return candidate
    base = root or runs_dir()
    runs = sorted(p for p in base.glob("*") if _is_run_folder(p)) if base.exists() else []
    if ref == "latest" and runs:
        return runs[-1]
    matches = [p for p in runs if p.name.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunNotFoundError(f"no run {shown} in {base}")
    raise RunNotFoundError(f"run prefix {shown} matches {len(matches)} runs; give more characters")


def _is_run_folder(path: Path) -> bool:
    """True when ``path`` holds a journal; False for any path the system refuses to look at
    (a name past the file-name limit, a folder we may not read)."""
    try:
        return (path / "journal.jsonl").is_file()
    except OSError:
        return False


def _shown(ref: str, limit: int = MAX_SHOWN_REF) -> str:
    """``ref`` as a message shows it: quoted, and cut short when it is longer than any run id."""
    return repr(ref) if len(ref) <= limit else f"{ref[:limit]!r}… ({len(ref)} characters)"


def list_runs(root: Path | None = None) -> list[Path]:
    """Every run folder, oldest first."""
    base = root or runs_dir()
    if not base.exists():
        return []
    return sorted(p for p in base.iterdir() if (p / "journal.jsonl").exists())


def write_owner(run_dir: Path) -> None:
    """Record this process as the run's owner (its lease)."""
    data = {"pid": os.getpid(), "host": socket.gethostname(), "pid_start": process_start(os.getpid())}
    (run_dir / OWNER).write_text(json.dumps(data))


def release_owner(run_dir: Path) -> None:
    """The run is no longer live."""
    (run_dir / OWNER).unlink(missing_ok=True)


def owner_alive(run_dir: Path) -> bool:
    """True when the process that owns the run still lives on this host."""
    try:
        data = json.loads((run_dir / OWNER).read_text())
    except (OSError, ValueError):
        return False
    if data.get("host") != socket.gethostname():
        return True  # another host's run: never assume it is dead
    return process_alive(int(data["pid"]), data.get("pid_start"))


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, ``/proc/<pid>/stat``), or None: with
    its pid, it names one process, also after the pid is reused by another."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_alive(pid: int, start: str | None) -> bool:
    """True while the process ``pid`` that started at ``start`` (:func:`process_start`) runs;
    a pid that another process has taken since counts as dead. ``start`` None: the pid alone."""
    if not pid_alive(pid):
        return False
    return start is None or process_start(pid) in (start, None)


def pid_alive(pid: int) -> bool:
    """True when ``pid`` runs (a zombie — dead but not yet reaped — counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    state = next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), "")
    return state != "Z"


def request_abort(run_dir: Path, reason: str, by: str) -> None:
    """Ask the live run to abort (it checks every loop tick and reverts)."""
    tmp = run_dir / f".{ABORT}.tmp"
    tmp.write_text(json.dumps({"reason": reason, "by": by}))
    os.replace(tmp, run_dir / ABORT)


def abort_requested(run_dir: Path) -> dict[str, str] | None:
    """The abort request, if any."""
    try:
        data = json.loads((run_dir / ABORT).read_text())
    except (OSError, ValueError):
        return None
    return {
        "reason": str(data.get("reason", "operator abort")),
        "by": str(data.get("by", "operator")),
    }


@contextmanager
def environment_lock(environment: str) -> Iterator[None]:
    """One drill per environment at a time, across processes (an exclusive ``flock``)."""
    locks = home() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    path = locks / f"{environment}.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise PreflightError(
                f"environment {environment!r} already has a drill running ({holder})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
