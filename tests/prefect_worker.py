"""A real Prefect process worker for integration tests, and small readers of the Prefect API.

The worker is started through the real ``bcdrill worker start`` in its own session (so it
and everything it starts can be stopped as one process group) and polls every second.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.testing import wait_until
from tests.conftest import BCDRILL

FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})


def api_get(api: str, path: str) -> Any:
    """GET ``path`` from the Prefect REST API at ``api`` and decode its JSON."""
    with urllib.request.urlopen(f"{api}{path}", timeout=10) as response:
        return json.loads(response.read())


def api_delete(api: str, path: str) -> None:
    """DELETE ``path`` on the Prefect REST API at ``api``."""
    request = urllib.request.Request(f"{api}{path}", method="DELETE")
    with urllib.request.urlopen(request, timeout=10):
        pass


def wait_final(api: str, ids: list[str], deadline: float) -> dict[str, dict[str, Any]]:
    """Poll until every flow run in ``ids`` is in a final state (monotonic ``deadline``)."""
    runs: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        runs = {i: api_get(api, f"/flow_runs/{i}") for i in ids}
        if all(r["state_type"] in FINAL_STATES for r in runs.values()):
            return runs
        time.sleep(0.5)
    raise AssertionError(f"flow runs not finished in time: { {i: r['state_type'] for i, r in runs.items()} }")


def start_worker(
    home: Path, pool: str, log: Path, *, sigint_ignored: bool = False
) -> subprocess.Popen[bytes]:
    """Start ``bcdrill worker start --pool POOL`` (BCDRILL_HOME ``home``), logging to ``log``;
    ``sigint_ignored``: as a script's background job starts it (``… &``)."""
    env = {**{k: v for k, v in os.environ.items() if k != "BCDRILL_SIGNING_KEY"}, "BCDRILL_HOME": str(home)}
    args = [BCDRILL, "worker", "start", "--pool", pool, "--query-seconds", "1", "--prefetch-seconds", "0"]
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
    with open(log, "wb") as out:
        return subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=ignore
        )


def wait_started(log: Path) -> None:
    """Wait until the worker logging to ``log`` says it started (2 minutes at most)."""
    wait_until("the worker to start", lambda: "started!" in log.read_text(errors="replace"), 120, 0.2)


def stop_worker(proc: subprocess.Popen[bytes], log: Path | None = None) -> None:
    """SIGTERM the worker's process group; SIGKILL it if it has not exited after 30 s, with a
    warning that shows what was still running and the end of the worker's ``log``."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGUSR1)  # the worker prints its threads' stacks to its log
            time.sleep(1.0)
            warnings.warn(_still_running(proc.pid, log), stacklevel=2)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def worker_state(proc: subprocess.Popen[bytes], log: Path, lines: int = 60) -> str:
    """What a failed test should say about a worker: alive or its exit code, its kernel state and
    signal masks, and the end of its log."""
    code = proc.poll()
    wanted = ("State:", "SigBlk:", "SigIgn:", "SigCgt:")
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text().splitlines()
    except OSError:
        status = []
    kernel = [line for line in status if line.startswith(wanted)]
    head = f"worker {proc.pid}: " + ("running" if code is None else f"exited {code}")
    return "\n".join([head, *kernel, "its log ends:", *_log_tail(log, lines)])


def _log_tail(log: Path | None, lines: int) -> list[str]:
    return log.read_text(errors="replace").splitlines()[-lines:] if log and log.exists() else ["(no log)"]


def _still_running(pgid: int, log: Path | None) -> str:
    ps = subprocess.run(
        ["ps", "-o", "pid,ppid,stat,etime,wchan:20,args", "-g", str(pgid)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    head = f"worker {pgid} ignored SIGTERM for 30 s; its process group:"
    return "\n".join([head, ps.stdout, *_log_tail(log, 120)])


@contextmanager
def running_worker(home: Path, pool: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A worker for ``pool`` while the block runs, stopped afterwards whatever happened."""
    worker = start_worker(home, pool, log)
    try:
        yield worker
    finally:
        stop_worker(worker, log)
