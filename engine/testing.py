"""Test support shipped with bcdrill, for its own suite and for fault-pack authors.

- :class:`FaultActionContract`: the contract every fault action keeps, as a test suite to
  subclass (``describe()`` and ``capture()`` change nothing; the fault is visible after inject
  and gone after revert; a second revert changes nothing).
- :func:`wait_until`, :func:`free_port`: bounded polling and a loopback port.
- :func:`prefect_server`: a real local Prefect server (SQLite in a folder, or a PostgreSQL
  database) for a test session; :func:`postgres_database`: a private PostgreSQL cluster on
  a loopback port (Debian's ``postgresql`` package), the production topology's database.

Nothing here imports pytest: a subclass of the contract is collected by pytest because its
name starts with ``Test`` and it provides the ``fault`` and ``transports`` fixtures.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from engine.faults.base import FaultAction
from engine.orchestration.server import database_pool
from engine.transports.connections import Transports
from engine.web import free_port

__all__ = ["FaultActionContract", "free_port", "postgres_database", "prefect_server", "wait_until"]

T = TypeVar("T")


def wait_until(what: str, check: Callable[[], T | None], timeout_s: float, every_s: float = 0.02) -> T:
    """Poll ``check`` until it returns something truthy and return that; ``TimeoutError`` naming
    ``what`` once ``timeout_s`` have passed (never an unbounded wait)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)


class FaultActionContract:
    """The fault contract as a test suite: subclass it in a fault pack's tests.

    Provide the pytest fixtures ``fault`` (a :class:`FaultAction` bound to a test target; may
    be parametrised over several actions) and ``transports``, and :meth:`census` (what can be
    seen of the target from outside). Override :meth:`visible` when "changed" needs more than
    a different census, :meth:`heals_itself` for a fault over by the time inject returns,
    :meth:`while_injected` for extra checks, and :meth:`settle` to wait after a revert.
    """

    visible_within_s = 5.0

    def census(self, fault: FaultAction) -> Mapping[str, Any]:
        """The target's observable state."""
        raise NotImplementedError("a FaultActionContract subclass must define census()")

    def visible(self, fault: FaultAction, before: Mapping[str, Any]) -> bool:
        """True once the injected fault can be seen from outside."""
        return self.census(fault) != before

    def heals_itself(self, fault: FaultAction) -> bool:
        """True for a fault that is over by the time inject returns (a restart): then neither
        visibility nor ``is_reverted()`` can be checked while it is in place."""
        return False

    def while_injected(self, fault: FaultAction, transports: Transports, prior: Mapping[str, Any]) -> None:
        """Extra checks while the fault is in place (none by default)."""

    def settle(self, fault: FaultAction, before: Mapping[str, Any]) -> None:
        """Wait until the target is back after a revert (at once by default)."""
        wait_until(
            "the target to look as before", lambda: self.census(fault) == before, self.visible_within_s
        )

    def test_describe_and_capture_change_nothing(self, fault: FaultAction, transports: Transports) -> None:
        before = self.census(fault)
        plan = fault.describe()
        assert plan.inject and plan.revert, "describe() must say what inject and revert do"
        assert self.census(fault) == before, "describe() must have no side effects"
        fault.capture(transports)
        assert self.census(fault) == before, "capture() must be read-only"

    def test_inject_is_visible_and_revert_removes_it(
        self, fault: FaultAction, transports: Transports
    ) -> None:
        before = self.census(fault)
        prior = fault.capture(transports)
        try:
            fault.inject(transports, prior)
            if not self.heals_itself(fault):
                shown = lambda: self.visible(fault, before)  # noqa: E731
                wait_until(f"{fault.name} to be visible", shown, self.visible_within_s)
                assert not fault.is_reverted(transports, prior), "is_reverted() must see the fault"
            self.while_injected(fault, transports, prior)
        finally:
            fault.revert(transports, prior)
        self.settle(fault, before)
        assert fault.is_reverted(transports, prior) and self.census(fault) == before
        fault.revert(transports, prior)  # a second revert changes nothing
        assert fault.is_reverted(transports, prior) and self.census(fault) == before


@contextlib.contextmanager
def prefect_server(
    home: Path, timeout_s: float = 90.0, database_url: str | None = None
) -> Iterator[dict[str, str]]:
    """A real Prefect server on a loopback port, its SQLite database in ``home`` (or the
    database at ``database_url``); yields the environment variables that point a client at
    it. Stopped (and waited for) when the block ends."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": url,
        "PREFECT_UI_API_URL": url,
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
        env.update(database_pool(os.environ))  # sized like `bcdrill server start`'s
    home.mkdir(parents=True, exist_ok=True)
    prefect = Path(sys.executable).parent / "prefect"
    with open(home / "server.log", "wb") as log:
        server = subprocess.Popen(
            [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(
                "the Prefect server", lambda: server.poll() is not None or _answers(url), timeout_s, 0.25
            )
            if server.poll() is not None:
                raise RuntimeError(f"prefect server exited: {(home / 'server.log').read_text()[-2000:]}")
            yield env
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)


@contextlib.contextmanager
def postgres_database(timeout_s: float = 60.0) -> Iterator[str]:
    """A throwaway PostgreSQL cluster (``initdb`` of Debian's ``postgresql``) on a loopback
    port, trust authentication for loopback only, no fsync; yields its SQLAlchemy URL for
    Prefect (``postgresql+asyncpg://…/postgres``). Stopped and deleted when the block ends."""
    bindir = _postgres_bindir()
    # In /tmp itself: the server runs as ``postgres``, which cannot pass a private (0700)
    # TMPDIR or pytest's root folder.
    root = Path(tempfile.mkdtemp(prefix="bcdrill-pg-", dir="/tmp"))
    as_user = _postgres_user(root)
    data, port = root / "data", free_port()
    initdb = [*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]
    made = subprocess.run(initdb, capture_output=True, text=True)
    if made.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {made.stderr[-2000:]}")
    settings = ["listen_addresses=127.0.0.1", f"unix_socket_directories={root}", "fsync=off"]
    argv = [*as_user, str(bindir / "postgres"), "-D", str(data), "-p", str(port)]
    for setting in settings:
        argv += ["-c", setting]
    with open(root / "server.log", "wb") as log:
        server = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        ready = [str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)]
        wait_until("PostgreSQL", lambda: server.poll() is not None or _succeeds(ready), timeout_s, 0.1)
        if server.poll() is not None:
            raise RuntimeError(f"postgres exited: {(root / 'server.log').read_text()[-2000:]}")
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        os.killpg(server.pid, signal.SIGINT)  # "fast" shutdown
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def _postgres_bindir() -> Path:
    """The newest installed PostgreSQL's program folder (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (scripts/setup.sh does)")
    return found[-1].parent


def _postgres_user(root: Path) -> list[str]:
    """How to run PostgreSQL's programs: as ``postgres`` when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return []
    shutil.chown(root, "postgres", "postgres")
    return ["runuser", "-u", "postgres", "--"]


def _succeeds(argv: list[str]) -> bool:
    return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0


def _answers(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=1) as response:  # noqa: S310 - our loopback URL
            return bool(response.status == 200)
    except OSError:
        return False
