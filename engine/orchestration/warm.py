"""Flow-run processes forked warm: one ``multiprocessing`` forkserver per runner or worker.

Each drill runs in a process of its own (Prefect cancels it with SIGTERM; the drill's handler
then reverts its faults). Started as a fresh interpreter, that process first imports Prefect
and the engine: ~3 s of CPU on a quiet core, 7-10 s on two loaded ones, before the drill
starts. The forkserver pays for those imports once, when the runner or worker starts; every
drill's process is forked from it, warm. The forkserver leaves with its owner (it exits when
its owner's end of the pipe closes).

Two users, one forkserver (:func:`warm_context`):

- the local runner (:mod:`engine.orchestration.daemon`) serves the flow with Prefect's
  ``Runner``, whose ``run_flow_in_subprocess`` asks ``multiprocessing`` for a ``spawn``
  context: :func:`fork_served_flow_runs` hands it the forkserver instead;
- a client site's worker (:mod:`engine.orchestration.site_worker`) starts each flow run with
  :class:`WarmEngineStarter`: what ``python -m prefect.engine`` does, in a forked child.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import runpy
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

if TYPE_CHECKING:
    from multiprocessing.context import ForkServerContext

    from prefect.client.schemas.objects import FlowRun
    from prefect.runner._control_channel import ControlChannel
    from prefect.runner._process_manager import ProcessHandle

# What every drill's process needs, imported once in the forkserver (forked_drills: the standard
# run parts loaded, Prefect's suspension watch left out).
PRELOAD = (
    "prefect.engine",
    "prefect.flow_engine",
    # what a flow run's first task imports (its graph helpers, the task engine): ~80 ms that
    # was paid on the way to a drill's first inject
    "prefect.task_engine",
    "prefect.utilities.visualization",
    "prefect.concurrency._sync",
    "anyio._backends._asyncio",
    "prefect.deployments.steps",
    "engine.flow",
    "engine.run.runner",
    "engine.orchestration.forked_drills",
    "engine.transports.docker",
    "structlog",
)

__all__ = ["PRELOAD", "WarmEngineStarter", "fork_served_flow_runs", "warm_context"]


def warm_context() -> ForkServerContext:
    """This process's forkserver, started (and :data:`PRELOAD` imported in it) on first use."""
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    forkserver.ensure_running()
    return context


class _WarmMultiprocessing:
    """Stands in for the ``multiprocessing`` module in ``prefect.flow_engine``: the context it
    asks for (``spawn``) is the warm forkserver instead."""

    def __init__(self, context: Any) -> None:
        self._context = context

    def get_context(self, method: str | None = None) -> Any:
        """The forkserver context, whatever ``method`` was asked for."""
        return self._context

    def __getattr__(self, name: str) -> Any:
        return getattr(multiprocessing, name)


def fork_served_flow_runs() -> None:
    """Fork the flow runs a Prefect ``Runner`` of this process serves from the warm forkserver,
    and let each build its Prefect settings once.

    Prefect hands a served flow run's process this process's settings twice: exported to its
    environment, from which the process builds them, and serialized beside the flow, from which
    it builds them again (~70 ms of CPU on the way to *Running*). This process keeps its
    settings in its environment (:func:`engine.orchestration.server.process_wide_own_server`),
    so the two are the same; only the exported copy is handed over.

    Prefect is pinned by ``constraints.txt``: should a release start served flow runs another
    way, they are spawned cold again — slower, not wrong.
    """
    import prefect.flow_engine

    prefect.flow_engine.multiprocessing = _WarmMultiprocessing(warm_context())  # type: ignore[assignment]
    prefect.flow_engine.serialize_context = _settings_from_environment(prefect.flow_engine.serialize_context)


def _settings_from_environment(serialize: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """``serialize_context`` without its settings: the flow run's process builds them from its
    environment, as Prefect's own wrapper there does first."""

    @functools.wraps(serialize)
    def serialize_context(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {**serialize(*args, **kwargs), "settings_context": {}}

    return serialize_context


class WarmEngineStarter:
    """Starts a worker's flow run as ``python -m prefect.engine`` would, in a warm forked child.

    A Prefect ``ProcessStarter``: the same environment as Prefect's own engine command (the
    job's variables, the worker's settings, the flow run id, the cancellation control channel)
    and the same working directory; the child runs Prefect's engine module itself (it loads the
    flow run, runs the deployment's pull steps, loads the flow from its entrypoint, runs it).
    """

    def __init__(
        self, *, cwd: Path, env: Mapping[str, str | None], control_channel: ControlChannel | None = None
    ) -> None:
        self._cwd = cwd
        self._env = env
        self._control_channel = control_channel

    async def start(
        self, flow_run: FlowRun, task_status: anyio.abc.TaskStatus[ProcessHandle] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Fork the flow run's process, hand its handle over, and return when it has exited."""
        from prefect.runner._process_manager import ProcessHandle

        control = self._register(flow_run)
        process = warm_context().Process(
            target=_run_prefect_engine,
            args=(self._environment(flow_run, control), str(self._cwd)),
            name=f"flow-run-{flow_run.id}",
        )
        try:
            await anyio.to_thread.run_sync(process.start)  # the first start waits for the preload
        except BaseException:
            if control and self._control_channel is not None:
                self._control_channel.unregister(flow_run.id)
            raise
        task_status.started(ProcessHandle(process))  # type: ignore[arg-type]
        await anyio.wait_readable(process.sentinel)
        process.join()

    def _register(self, flow_run: FlowRun) -> dict[str, str]:
        """The control channel's port and token for the child (none when it is disabled)."""
        if self._control_channel is None:
            return {}
        try:
            port, token = self._control_channel.register(flow_run.id)
        except RuntimeError:  # no loopback listener: Prefect falls back to kill-only cancellation
            return {}
        return {"PREFECT__CONTROL_PORT": str(port), "PREFECT__CONTROL_TOKEN": token}

    def _environment(self, flow_run: FlowRun, control: Mapping[str, str]) -> dict[str, str]:
        """What Prefect's ``EngineCommandStarter`` gives ``python -m prefect.engine``."""
        from prefect.settings import get_current_settings
        from prefect.utilities.processutils import sanitize_subprocess_env

        env: dict[str, str | None] = {**os.environ, **self._env}
        env.update(get_current_settings().to_environment_variables(exclude_unset=True))
        env.update(
            {
                "PREFECT__FLOW_RUN_ID": str(flow_run.id),
                "PREFECT__ENABLE_CANCELLATION_AND_CRASHED_HOOKS": "false",
                **control,
            }
        )
        return {key: value for key, value in sanitize_subprocess_env(env).items() if value is not None}


def _run_prefect_engine(env: Mapping[str, str], cwd: str) -> None:
    """In the forked child: become the flow run's process and run Prefect's engine module."""
    import prefect.context

    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    prefect.context.refresh_global_settings_context()  # settings from this run's environment
    sys.argv = [str(Path(prefect.__file__).parent / "engine.py")]
    with warnings.catch_warnings():
        # prefect.engine was preloaded: runpy warns that it runs an imported module again.
        warnings.filterwarnings("ignore", message=".*prefect.engine.*", category=RuntimeWarning)
        runpy.run_module("prefect.engine", run_name="__main__", alter_sys=False)
