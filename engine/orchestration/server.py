"""The Prefect API a command talks to: the configured one, or a temporary server of its own.

With no ``PREFECT_API_URL`` configured, Prefect would start its own temporary (ephemeral)
server: a separate uvicorn process (~200 MB) that survives a ``kill -9`` of the command that
started it. :func:`prefect_api` starts that same server itself instead, as a child that the
kernel kills when its parent dies (``PR_SET_PDEATHSIG``), and stops it when the command ends.
Its database is Prefect's usual one (``$PREFECT_HOME``), so flow runs stay visible across runs.
Its app is Prefect's, with SQLite transactions that wait for the write lock instead of failing
(:mod:`engine.orchestration.prefect_app`).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from engine.errors import PreflightError
from engine.orchestration.prefect_app import FACTORY
from engine.orchestration.prefect_database import seed, seed_default_database
from engine.web import free_port, is_loopback

# The programme server's connection pool to PostgreSQL (Prefect's default: 5 + 10 overflow). A
# hundred drills on five site workers exhausted the default: requests waited 30 s for a connection
# and failed (HTTP 500 on set_state and the slots). 20 + 30 stays well inside PostgreSQL's default
# max_connections (100). SQLite ignores both.
DATABASE_POOL = {
    "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE": "20",
    "PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW": "30",
}
# What a command's own server (temporary, or the local runner's) does without, unless the operator
# says otherwise. It serves no UI and no automations; what it keeps is the flow runs, their states
# and logs (written by the API itself), and the live event stream (the runner's cancellations).
# - Registering Prefect's block types in its database: 2-3 s of CPU each time it starts (a new
#   home's registration is not memoized yet), for blocks no drill uses.
# - Recording task runs and storing events, which only a UI or an automation reads: on 2 cores
#   that work competed with the drill's own API calls, ~150 ms of every flow run (Prefect's flow
#   run of three empty tasks: 0.32-0.40 s with it, 0.19-0.20 s without). The drill's record is
#   its journal.
# - Automations (triggers and their actions): none is defined on a server no one else reaches.
_PRIVATE_SERVER_DEFAULTS = {
    "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_ACTIONS_ENABLED": "false",
}
# A client of bcdrill's own server: that server never hands out CSRF tokens (its protection is
# off, Prefect's default, and no browser reaches it: no UI), so Prefect's client need not ask
# it for one first; each new client did (~40 ms, before each flow run's first write).
OWN_SERVER_CLIENT = {"PREFECT_CLIENT_CSRF_SUPPORT_ENABLED": "false"}
STARTUP_TIMEOUT_S = 180.0  # a cold start takes 7-15 s alone, 75-100 s on a 2-core machine under load
_PR_SET_PDEATHSIG = 1


def configured_api_url() -> str | None:
    """The Prefect API this process is configured for (setting or environment), or None."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


@contextmanager
def prefect_api() -> Iterator[str]:
    """Yield the API URL to use; without a configured one, run a temporary server meanwhile."""
    url = configured_api_url()
    if url:
        yield url
        return
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_CSRF_SUPPORT_ENABLED, temporary_settings

    with temporary_server() as url, process_wide_own_server(url):
        own = {PREFECT_API_URL: url, PREFECT_CLIENT_CSRF_SUPPORT_ENABLED: False}
        with temporary_settings(own):
            try:
                yield url
            finally:
                _drain_prefect_workers()


@contextmanager
def holder_api(api_url: str, prefect_home: str) -> Iterator[str]:
    """The Prefect API to free a dead run's environment slot on, for ``recover``: the server the
    run took it on (``api_url``) while that one answers, or is the configured one. A bcdrill
    server (the local runner's, or a command's temporary one: on loopback) dies with its
    process, so when it is gone: the local runner's server when it serves the same database
    (``prefect_home``), else a temporary server on that database. Any other server that does
    not answer: :class:`PreflightError` (the note stays, for a later ``recover``). A note
    without them: :func:`_slots_api`."""
    if not api_url or not prefect_home:
        with _slots_api() as url:
            yield url
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if api_url == configured_api_url() or _answers(api_url):
        with temporary_settings({PREFECT_API_URL: api_url}):
            yield api_url
        return
    if not is_loopback(urllib.parse.urlsplit(api_url).hostname or ""):
        raise PreflightError(f"the Prefect server at {api_url} does not answer")
    from engine.orchestration.local_runner import live_runner, runner_dir

    runner = live_runner()
    runners_home = (runner_dir() / "prefect").resolve()
    if runner is not None and runner.own_server and Path(prefect_home).resolve() == runners_home:
        with temporary_settings({PREFECT_API_URL: runner.url}):
            yield runner.url
        return
    try:
        with (
            environment_variables({"PREFECT_HOME": prefect_home}),
            temporary_server(settings_of_this_process=False) as url,
            process_wide_own_server(url),
            temporary_settings({PREFECT_API_URL: url}),
        ):
            yield url
    finally:
        _refresh_prefect_settings()  # from this process's own environment again


def _answers(api_url: str) -> bool:
    """True when a Prefect API (http or https) answers its health check at once."""
    if not api_url.startswith(("http://", "https://")):
        return False
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


@contextmanager
def environment_variables(variables: Mapping[str, str]) -> Iterator[None]:
    """Set these environment variables for the block (a server started meanwhile inherits them)."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _slots_api() -> Iterator[str]:
    """The Prefect API that holds this machine's environment slots, for ``recover`` of a slot
    noted without where it was taken.

    The configured one; else, while the local runner lives, its own server (the drills it ran
    took their slots there); else a temporary server, as :func:`prefect_api`.
    """
    if configured_api_url() is None:
        from engine.orchestration.local_runner import live_runner

        runner = live_runner()
        if runner is not None:
            from prefect.settings import PREFECT_API_URL, temporary_settings

            with temporary_settings({PREFECT_API_URL: runner.url}):
                yield runner.url
            return
    with prefect_api() as url:
        yield url


def _drain_prefect_workers(timeout_s: float = 5.0) -> None:
    """Send what Prefect's log and event workers still hold while the temporary server is up:
    stopped first, they would print "Error logging to API" as the command exits."""
    workers = (("prefect.logging.handlers", "APILogWorker"), ("prefect.events.worker", "EventsWorker"))
    for module, name in workers:
        worker = getattr(sys.modules.get(module), name, None)
        if worker is not None:
            with suppress(Exception):  # best effort: the drill is over either way
                worker.drain_all(timeout=timeout_s)


@contextmanager
def process_wide_own_server(url: str) -> Iterator[None]:
    """Point this process at bcdrill's own server at ``url``, also for threads that do not
    inherit our context (Prefect's log and event workers: without this they would start
    Prefect's own temporary server after all) and for the drills' processes, which inherit the
    environment: the API URL, and :data:`OWN_SERVER_CLIENT`."""
    try:
        with environment_variables({"PREFECT_API_URL": url, **OWN_SERVER_CLIENT}):
            _refresh_prefect_settings()
            yield
    finally:
        _refresh_prefect_settings()


def _refresh_prefect_settings() -> None:
    """Prefect's settings of this process, built again from its environment."""
    import prefect.context

    refresh = getattr(prefect.context, "refresh_global_settings_context", None)
    if refresh is not None:
        refresh()


@contextmanager
def temporary_server(
    meanwhile: Callable[[], None] | None = None, settings_of_this_process: bool = True
) -> Iterator[str]:
    """A Prefect server on a free loopback port that dies with this process, even on kill -9.

    ``meanwhile`` runs while the server starts (its imports alone take seconds), e.g. the
    caller's own imports, before this waits for the server to answer. The server gets the
    Prefect settings this process has (``settings_of_this_process``), or only its environment:
    then it starts before this process has imported Prefect at all. A new Prefect home's
    database starts as a copy of the migrated template (:mod:`engine.orchestration.prefect_database`)."""
    _seed_database(settings_of_this_process)
    with tempfile.TemporaryFile(prefix="bcdrill-prefect-") as log:
        port = free_port()
        server = subprocess.Popen(
            _server_argv(port),
            env=_server_env(settings_of_this_process),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with(os.getpid()),
            # out of the terminal's process group: a Ctrl-C meant for the drill (which then
            # reverts and releases its slot through this server) must not stop the server first
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}/api"
            if meanwhile is not None:
                meanwhile()
            _wait_until_healthy(url, server, log)
            yield url
        finally:
            _stop(server)


def _seed_database(settings_of_this_process: bool) -> None:
    if settings_of_this_process:
        seed_default_database()
    elif os.environ.get("PREFECT_HOME"):  # no Prefect settings file can apply (the runner's own home)
        seed(Path(os.environ["PREFECT_HOME"]))


def _server_argv(port: int) -> list[str]:
    """The command Prefect's own temporary server runs (uvicorn, one process, no UI), with the
    app whose SQLite writes wait for the lock instead of failing (:mod:`engine.orchestration.prefect_app`)."""
    spec = importlib.util.find_spec("prefect")  # where it is, without importing it
    if spec is None or spec.origin is None:
        raise PreflightError("Prefect is not installed: bash scripts/setup.sh")
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(Path(spec.origin).parent.parent),
        "--factory",
        FACTORY,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
    ]


def _server_env(settings_of_this_process: bool) -> dict[str, str]:
    settings: dict[str, str] = {}
    if settings_of_this_process:
        from prefect.settings import get_current_settings

        settings = get_current_settings().to_environment_variables(exclude_unset=True)
    return {
        **_PRIVATE_SERVER_DEFAULTS,
        **os.environ,
        **settings,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT_SERVER_CSRF_PROTECTION_ENABLED": "false",  # see OWN_SERVER_CLIENT
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


def _die_with(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: the kernel sends SIGKILL to the child when ``parent`` dies."""
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork, not in the child

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return arm


def _wait_until_healthy(url: str, server: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise PreflightError(f"the temporary Prefect server exited ({server.returncode}): {_tail(log)}")
        if _answers(url):
            return
        time.sleep(0.2)
    _stop(server)
    raise PreflightError(f"the temporary Prefect server did not answer within {STARTUP_TIMEOUT_S:g}s")


def _tail(log: IO[bytes]) -> str:
    try:
        log.seek(0)
        text = log.read().decode(errors="replace")
    except OSError:
        return "(no output)"
    return text.strip().splitlines()[-1] if text.strip() else "(no output)"


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def database_pool(base: Mapping[str, str]) -> dict[str, str]:
    """:data:`DATABASE_POOL`, except what ``base`` (the operator's environment) already sets."""
    return {name: value for name, value in DATABASE_POOL.items() if name not in base}


__all__ = [
    "DATABASE_POOL",
    "OWN_SERVER_CLIENT",
    "configured_api_url",
    "database_pool",
    "environment_variables",
    "holder_api",
    "prefect_api",
    "process_wide_own_server",
    "temporary_server",
]
