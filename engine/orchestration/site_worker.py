"""A client site's worker: Prefect's process worker, each flow run forked warm.

``bcdrill worker start --pool P`` runs ``python -m engine.orchestration.site_worker worker start
--pool P --type process``: Prefect's own ``prefect worker start`` (its signal handling, pool
checks, heartbeats, prefetch, cancellation, crash reporting), with :class:`WarmProcessWorker` as
the worker of type ``process``. Pools and deployments stay Prefect ``process`` ones; the only
difference is how a flow run's process starts: forked from the worker's forkserver, which
imported Prefect and the engine once (:mod:`engine.orchestration.warm`), instead of a fresh
``python -m prefect.engine`` importing them per drill. On a site that starts many drills at
once, that is what keeps each drill's boot short (docs/performance.md).

A flow run keeps everything a cold one has: Prefect's engine loads it, runs the deployment's pull
steps and loads the flow from its entrypoint; cancellation sends the process SIGTERM (the drill
reverts), a process that dies is reported *Crashed*. A work pool whose job template names its own
``command`` is started as Prefect would start it (cold).
"""

from __future__ import annotations

import contextlib
import faulthandler
import signal
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc
from prefect.flows import load_flow_from_flow_run
from prefect.runner._flow_run_executor import FlowRunExecutionResult, FlowRunExecutorContext
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker, ProcessWorkerResult

from engine.orchestration.warm import WarmEngineStarter, warm_context

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun
    from prefect.runner._process_manager import ProcessHandle

__all__ = ["WarmProcessWorker", "main"]

with warnings.catch_warnings():
    # Same type, job template and pools as Prefect's process worker: this process's registry
    # of worker types maps "process" to this class instead of Prefect's.
    warnings.filterwarnings("ignore", message=".*WarmProcessWorker.* has key 'process'")

    class WarmProcessWorker(ProcessWorker):
        """Prefect's process worker whose flow-run processes are forked from a warm forkserver."""

        type = "process"
        _description = "Execute flow runs as processes forked from a warm bcdrill process."

        async def setup(self) -> None:
            """Start the forkserver (Prefect and the engine imported once), then set up."""
            await anyio.to_thread.run_sync(warm_context)
            await super().setup()

        async def run(
            self,
            flow_run: FlowRun,
            configuration: ProcessJobConfiguration,
            task_status: anyio.abc.TaskStatus[int] | None = None,
        ) -> ProcessWorkerResult:
            """Run ``flow_run`` in a forked warm process; its exit status when it ends."""
            if configuration._command_configured:  # the pool names its own command
                return await super().run(flow_run, configuration, task_status)
            status = task_status or anyio.TASK_STATUS_IGNORED
            execution: FlowRunExecutionResult | None = None
            with _working_dir(configuration) as cwd:
                async with FlowRunExecutorContext() as ctx:
                    starter = WarmEngineStarter(
                        cwd=cwd, env=configuration.env, control_channel=ctx.control_channel
                    )
                    executor = ctx.create_executor(
                        flow_run, starter, resolve_flow=load_flow_from_flow_run, propose_submitting=False
                    )

                    async def execute(*, task_status: anyio.abc.TaskStatus[ProcessHandle]) -> None:
                        nonlocal execution
                        execution = await executor.submit(task_status=task_status)

                    async with anyio.create_task_group() as group:
                        handle = await group.start(execute)
                        if handle.pid is None:
                            raise RuntimeError("the flow run's process has no pid")
                        status.started(handle.pid)
            if execution is None or execution.status_code is None:
                raise RuntimeError(f"flow run {flow_run.id} did not start")
            return ProcessWorkerResult(
                status_code=execution.status_code, identifier=str(execution.handle.pid)
            )


def _working_dir(configuration: ProcessJobConfiguration) -> contextlib.AbstractContextManager[Path]:
    """The job's working directory, or a temporary one for the run (as Prefect's worker does)."""
    if configuration.working_dir:
        return contextlib.nullcontext(Path(configuration.working_dir).resolve())
    return _temporary_dir()


@contextlib.contextmanager
def _temporary_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(suffix="prefect") as folder:
        yield Path(folder).resolve()


def main(argv: list[str] | None = None) -> int:
    """``prefect ARGV...`` (e.g. ``worker start --pool P --type process``) with the warm worker.
    ``kill -USR1`` makes it print every thread's stack to its standard error, for a worker that
    seems stuck.

    SIGTERM stops the worker whoever started it. Prefect's worker turns a SIGTERM into a SIGINT
    to itself, which stops it through Python's own handler; a process started with SIGINT
    ignored (in the background of a script, ``bcdrill worker start … &``, or by a parent that
    ignores it) would ignore that SIGINT, and the SIGTERM with it. SIGINT is Python's again."""
    from prefect.cli import app

    signal.signal(signal.SIGINT, signal.default_int_handler)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    # a supervisor may start it with these blocked (the mask is inherited): they would never come
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGUSR1})
    sys.argv = ["prefect", *(sys.argv[1:] if argv is None else argv)]
    app()
    return 0


if __name__ == "__main__":
    sys.exit(main())
