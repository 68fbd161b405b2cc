"""The long-lived local runner itself: ``python -m engine.orchestration.daemon [--idle S]``.

Started by ``bcdrill runner start`` (or ``bcdrill run --runner``) in a session of its own, it

1. uses the configured Prefect API, or starts the local Prefect server as its child — database
   in ``<home>/runner/prefect``, killed by the kernel when this process dies however it dies
   (``PR_SET_PDEATHSIG``, :func:`engine.orchestration.server.temporary_server`);
2. serves the ``drill-run`` flow with a Prefect :class:`~prefect.runner.Runner` (deployment
   ``drill-run/bcdrill-runner``): each submitted flow run executes in a fresh process, which
   the runner cancels with SIGTERM — the drill's own handler then reverts its faults. That
   process is forked from a warm server (``multiprocessing`` forkserver) that has imported
   Prefect and the engine once, instead of a fresh interpreter importing them per drill
   (:mod:`engine.orchestration.warm`);
3. notes itself in ``<home>/runner/runner.json`` once it serves, and removes the note when it
   leaves: on SIGTERM (``bcdrill runner stop``) or after ``--idle`` seconds without a drill.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.home import home
from engine.orchestration.local_runner import (
    DEFAULT_IDLE_S,
    RunnerInfo,
    environment_fingerprint,
    forget_info,
    profile_api_url,
    runner_dir,
    runner_lock,
    wake_socket,
    write_info,
)
from engine.orchestration.warm import fork_served_flow_runs

DEPLOYMENT = "bcdrill-runner"
_BUSY_STATES = ("SCHEDULED", "PENDING", "RUNNING", "CANCELLING", "PAUSED")
# How often the runner asks for submitted flow runs by itself. A client that submits one wakes
# it at once (:func:`_wake_ups`), so the poll only catches runs created elsewhere (Prefect's UI,
# a client that could not reach the socket); each poll costs the idle server CPU (a quarter-second
# poll kept it at ~9 % of a core).
POLL_S = 2.0


def main(argv: list[str] | None = None) -> int:
    """Serve until stopped or idle; 0 on a clean exit."""
    parser = argparse.ArgumentParser(prog="python -m engine.orchestration.daemon")
    parser.add_argument(
        "--idle", type=float, default=DEFAULT_IDLE_S, help="exit after S seconds without a drill"
    )
    args = parser.parse_args(argv)
    fingerprint = environment_fingerprint()  # before Prefect settings are exported below
    _leave_callers_folder()
    from_profile = profile_api_url() is not None  # the caller's own Prefect home holds the setting
    unconfigured = _surely_unconfigured() and not from_profile
    if not from_profile:
        os.environ.setdefault("PREFECT_HOME", str(runner_dir() / "prefect"))
    with _api(_warm_processes, unconfigured) as (url, own_server):
        from engine.flow import drill_run

        runner = _runner()
        deployment_id = runner.add_flow(drill_run, name=DEPLOYMENT)
        if own_server:
            _close_leftovers(str(deployment_id))
        info = RunnerInfo(
            os.getpid(), url, str(deployment_id), args.idle, fingerprint, time.time(), own_server
        )
        try:
            asyncio.run(_serve(runner, info))
        finally:
            forget_info(os.getpid())
    return 0


def _leave_callers_folder() -> None:
    """Work in the runner's own folder, as a daemon does: Prefect reads its settings files
    (``prefect.toml``, ``pyproject.toml``) from the working folder each time a flow run builds
    its settings (~50 ms apiece), and the caller's folder is not the runner's business. Each
    drill works in the folder of the command that submitted it (``drill_run``'s ``workdir``).
    The state folders named relative to the caller's folder are made absolute first."""
    for name in ("BCDRILL_HOME", "BCDRILL_RUNS"):
        if os.environ.get(name):
            os.environ[name] = str(Path(os.environ[name]).resolve())
    folder = runner_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)


def _surely_unconfigured() -> bool:
    """True when no Prefect API can be configured for us: none in the environment, and no
    Prefect home (profiles) of the caller's — ours is private, and we work in our own folder,
    where no settings file lies. Then our server can start before we import Prefect. (An API URL
    in the caller's default profile, ``~/.prefect``, is looked for before: :func:`main`.)"""
    callers = ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_PROFILES_PATH")
    return not any(name in os.environ for name in callers)


@contextmanager
def _api(meanwhile: Callable[[], None], unconfigured: bool) -> Iterator[tuple[str, bool]]:
    """The configured Prefect API, or a local server of our own for as long as we live;
    ``meanwhile`` runs while our server starts (or at once). ``unconfigured``: no API can be
    configured, so our server starts at once, its imports overlapping ours."""
    from engine.orchestration.server import configured_api_url, process_wide_own_server, temporary_server

    configured = None if unconfigured else configured_api_url()
    if configured:
        meanwhile()
        yield configured, False
        return
    # unconfigured: Prefect is not imported yet, so the server gets only our environment
    with temporary_server(meanwhile, not unconfigured) as url, process_wide_own_server(url):
        yield url, True


def _warm_processes() -> None:
    """Fork each drill's process from the warm forkserver (:mod:`engine.orchestration.warm`).
    Called while the runner's Prefect server starts: the forkserver's imports, and this
    process's, overlap the server's."""
    import prefect.runner.server  # noqa: F401 - Runner.start's import of FastAPI (~0.35 s), not after

    import engine.flow  # noqa: F401 - this process's own import, while the server starts

    fork_served_flow_runs()


def _runner() -> Any:
    from prefect.runner import Runner

    # pause_on_shutdown=False: the deployment stays usable for the next runner of this home.
    return Runner(
        name=f"bcdrill-runner-{socket.gethostname()}", query_seconds=POLL_S, pause_on_shutdown=False
    )


def _close_leftovers(deployment_id: str) -> None:
    """End the flow runs a dead runner of this home left unfinished in its database (kill -9,
    a reboot): one submitted but not taken would otherwise run now, unasked (its client was
    told to run it again), and one left running would keep every later runner from its idle
    exit. Only on the runner's own server: no other runner submits there (the runner lock),
    while a configured API may serve runners of other machines."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled, Crashed, State

    with get_client(sync_client=True) as client:
        for run in client.read_flow_runs(**_busy_filter(deployment_id)):
            waiting = run.state is not None and run.state.type.value in ("SCHEDULED", "PENDING")
            state: State[Any] = (
                Cancelled(message="not started: the runner it was submitted to is gone")
                if waiting
                else Crashed(message="its runner died while it ran; bcdrill recover reverts what it left")
            )
            client.set_flow_run_state(run.id, state, force=True)
            print(f"bcdrill runner: flow run {run.name} left by a dead runner is now {state.type.value}")


def _busy_filter(deployment_id: str, limit: int | None = None) -> dict[str, Any]:
    """The filters of a flow run of the runner's deployment that is waiting or running."""
    from uuid import UUID

    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    busy = FlowRunFilterStateType(any_=[StateType(s) for s in _BUSY_STATES])
    return {
        "deployment_filter": DeploymentFilter(id=DeploymentFilterId(any_=[UUID(deployment_id)])),
        "flow_run_filter": FlowRunFilter(state=FlowRunFilterState(type=busy)),
        "limit": limit,
    }


async def _serve(runner: Any, info: RunnerInfo) -> None:
    """Run the Prefect runner and, beside it, the idle watch that stops it and the wake-up
    socket that makes it take a submitted flow run at once."""
    helpers = [asyncio.ensure_future(_idle_watch(runner, info)), asyncio.ensure_future(_wake_ups(runner))]
    try:
        await runner.start()
    finally:
        for helper in helpers:
            helper.cancel()


async def _wake_ups(runner: Any) -> None:
    """Poll for submitted flow runs whenever a client says it submitted one (the datagram's
    content is ignored: a stray one costs one extra poll). Without the socket (e.g. a
    ``$BCDRILL_HOME`` path too long for one), the runner's own poll still takes every run."""
    path = wake_socket()
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(str(path))
    except OSError:
        sock.close()
        return
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    with sock:
        while not runner.started:
            await asyncio.sleep(0.05)
        while True:
            await loop.sock_recv(sock, 64)
            try:
                await runner._get_and_submit_flow_runs()  # what its poll runs
            except Exception as exc:  # a busy server: the runner's own poll takes the run
                print(f"bcdrill runner: a wake-up's poll failed ({exc}); the next poll retries", flush=True)


async def _idle_watch(runner: Any, info: RunnerInfo) -> None:
    """Note the runner once it serves; stop it after ``info.idle_s`` seconds with no drill."""
    while not runner.started:
        await asyncio.sleep(0.05)
    write_info(info)
    print(f"bcdrill runner {info.pid} serving on {info.url} (idle limit {info.idle_s:g}s)", flush=True)
    last_busy = time.monotonic()
    while True:
        await asyncio.sleep(min(5.0, max(info.idle_s / 4, 0.2)))
        if await _busy(info.deployment_id):
            last_busy = time.monotonic()
        elif time.monotonic() - last_busy >= info.idle_s and await _leave_if_still_idle(info):
            print(f"bcdrill runner {info.pid}: idle for {info.idle_s:g}s, exiting", flush=True)
            await runner.astop()
            return


async def _leave_if_still_idle(info: RunnerInfo) -> bool:
    """Under the runner lock: remove the note unless a run was submitted meanwhile."""
    lock = runner_lock(exclusive=True)
    await asyncio.to_thread(lock.__enter__)
    try:
        if await _busy(info.deployment_id):
            return False
        forget_info(info.pid)
        return True
    finally:
        lock.__exit__(None, None, None)


async def _busy(deployment_id: str) -> bool:
    """True while a flow run of the runner's deployment is waiting or running, and when that
    cannot be told (the API did not answer): a runner never leaves on a blip, nor stops
    watching over one."""
    from prefect.client.orchestration import get_client

    try:
        async with get_client() as client:
            runs = await client.read_flow_runs(**_busy_filter(deployment_id, limit=1))
    except Exception as exc:
        print(f"bcdrill runner: cannot tell whether a drill runs ({exc}); counted as busy", flush=True)
        return True
    return bool(runs)


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    print(f"bcdrill runner starting in {home()}", flush=True)
    sys.exit(main())
