"""The Prefect shell around a drill: the ``drill-run`` flow, its tasks, its artifacts.

Prefect stays thin here: the flow takes primitives (paths, options), injections and reverts
are tasks named after one verb with no cache and no retries (retries of a revert happen in
:mod:`engine.run.reverts`, deadlines in the transports), and cleanup lives in the drill's own
``finally`` — never in Prefect state hooks, which are notifications, not guarantees.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading

# Prefect reads these when it is first imported: our loggers reach the flow run's log in the UI.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "engine,drills,reports")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")  # desk threads

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.states import Cancelled, Failed, State

from engine.errors import DrillError, InputError
from engine.model.holds import Hold, HoldKind
from engine.orchestration.client_watch import abort_when_gone
from engine.orchestration.prefect_clients import share_tls_contexts
from engine.orchestration.slot import environment_slot
from engine.plugins import PRECHECKS, STANDARD_DEBRIEFER, resolve_parts
from engine.record.journal import Listener
from engine.record.runstore import create_run_dir, new_run_id
from engine.run.runner import DrillRun, RunOptions, RunResult
from engine.spec.loader import load_environment, load_playbook

share_tls_contexts()  # two API clients per flow run: one CA bundle load, not one each


@task(name="inject-fault", cache_policy=NO_CACHE, retries=0, log_prints=False)
def inject_fault(call: Callable[[], None], fault_id: str) -> None:
    """Apply one fault (the call carries the action and its recorded prior state)."""
    logging.getLogger("engine.flow").info("inject %s", fault_id)
    call()


@task(name="revert-fault", cache_policy=NO_CACHE, retries=0, log_prints=False)
def revert_fault(call: Callable[[], None], fault_id: str) -> None:
    """Revert one fault (retries and verification are the engine's, not Prefect's)."""
    logging.getLogger("engine.flow").info("revert %s", fault_id)
    call()


@task(name="await-moment", cache_policy=NO_CACHE, retries=0, log_prints=False)
def await_moment(call: Callable[[], None]) -> None:
    """A scheduled drill's hold until its secret moment. As a task, it also starts the process's
    task machinery (its event stream to the server) during the hold, not on the moment's path
    into the first inject. Neither its name nor its parameters spell the moment: whoever can
    read Prefect sees when the hold started, not when it ends."""
    call()


def _as_task(fn: Any) -> Callable[[Callable[[], None], str], None]:
    def hook(call: Callable[[], None], fault_id: str) -> None:
        fn.with_options(task_run_name=f"{fn.name}[{fault_id}]")(call, fault_id)

    return hook


@flow(name="drill-run", persist_result=False, validate_parameters=False)
def drill_run(
    playbook_path: str,
    environment_path: str,
    runs_root: str,
    run_id: str | None = None,
    responders: str = "simulate",
    seed: int | None = None,
    time_scale: float = 1.0,
    allow_production: bool = False,
    min_score: float | None = None,
    progress: bool = False,
    plan_path: str | None = None,
    desk: str | None = None,
    debriefer: str = STANDARD_DEBRIEFER,
    run_class: str | None = None,
    result_file: str | None = None,
    lead_s: float = 0.0,
    workdir: str | None = None,
    client_pid: int | None = None,
) -> dict[str, Any] | State:
    """Run one drill and return its summary (exit code, outcome, run folder, debrief).

    The flow is a composition root: it resolves the run's parts (``debriefer``, the desk,
    simulated people) from their registries and refuses to start (exit 4, named plugin) when
    one is missing.

    A scheduled drill passes its drill plan as ``plan_path``: every registered precheck
    (``bcdrill.prechecks``) is asked first and may stop the drill (held, postponed, dropped);
    the flow run then ends Cancelled or Failed with the reason (:func:`hold_state`), never
    Completed.
    ``run_class`` is ``drill``, ``rehearsal`` or ``ci``; by default a run of a drill plan with
    manual responders at time scale 1 is an official ``drill`` (it needs a signing key), an
    ``auto`` run is ``ci`` and any other run a ``rehearsal``.
    ``result_file``: where a client that submitted the run through the API (the long-lived
    runner, :mod:`engine.orchestration.local_runner`) finds the summary, or the anticipated
    failure (message, exit code) that stopped the drill.
    ``lead_s``: a scheduled drill's flow run is scheduled this long before its secret moment
    (the moment is the run's scheduled time plus ``lead_s``, so no parameter shows it): the
    drill takes its environment's slot and passes preflight early, then holds and injects at
    the moment (:func:`engine.run.preflight.await_moment`).
    ``workdir``: the folder of the command that submitted the run, where relative references
    (``file:`` secrets, ``$BCDRILL_SIGNING_KEY``) resolve as they would in that command; the
    flow run then works in it. Only for a flow run in a process of its own (the runner's).
    ``client_pid``: that command's process; the drill aborts (and reverts) if it dies
    (:mod:`engine.orchestration.client_watch`).
    """
    if workdir is not None:
        os.chdir(workdir)
    with _answer_to(result_file) as answer:
        if plan_path is not None:
            hold = _precheck(plan_path)
            if hold is not None:
                return hold_state(hold)
        playbook = load_playbook(Path(playbook_path))
        parts = resolve_parts(
            responders, desk is not None, debriefer, mailbox=bool(playbook.exercise.mailbox)
        )
        environment = load_environment(Path(environment_path))
        moment = secret_moment(lead_s)
        listeners: tuple[Listener, ...] = ()
        if progress:
            from engine.progress import ProgressPrinter

            listeners = (ProgressPrinter(),)
        options = RunOptions(
            responders=responders,
            seed=seed,
            time_scale=time_scale,
            allow_production=allow_production,
            min_score=min_score,
            desk=desk,
            run_class=run_class,
            plan=plan_path,
            moment=moment.isoformat() if moment else None,
        )
        DrillRun.class_and_key(options)  # refused now, not after waiting for the slot
        run_id = run_id or new_run_id(playbook.id)
        # one drill per environment (engine.orchestration.slot); a drill readied early may wait
        # for the one before it until its own moment
        with environment_slot(environment.name, run_id, wait_until=moment):
            run_dir = create_run_dir(run_id, Path(runs_root))
            drill = DrillRun(
                playbook,
                environment,
                run_dir,
                options,
                parts,
                listeners=listeners,
                inject_hook=_as_task(inject_fault),
                revert_hook=_as_task(revert_fault),
                hold_hook=await_moment,
            )
            with abort_when_gone(client_pid, run_dir):
                result = drill.execute()
            done = summary(result)
            answer.send(done)  # the client answers now; the artifacts and the slot's release follow
            attaching = _attach_artifacts(result)  # beside the release: three API calls at once
        for thread in attaching:
            thread.join()
        return done


@dataclass
class _Answer:
    """What a client that submitted the run waits for in ``result_file``: sent once."""

    path: Path | None
    sent: bool = False

    def send(self, data: Mapping[str, Any]) -> None:
        if self.path is not None and not self.sent:
            _write_json(self.path, data)
            self.sent = True


@contextmanager
def _answer_to(result_file: str | None) -> Iterator[_Answer]:
    """The drill's summary, or an anticipated failure (:class:`DrillError`) before it was sent,
    is written to ``result_file``."""
    answer = _Answer(Path(result_file) if result_file else None)
    try:
        yield answer
    except DrillError as exc:
        answer.send({"error": str(exc), "exit_code": exc.exit_code})
        raise


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, default=str))
    os.replace(tmp, path)


def secret_moment(lead_s: float) -> datetime | None:
    """A scheduled drill's moment: its flow run's scheduled time plus ``lead_s``; else None."""
    if lead_s <= 0:
        return None
    context = FlowRunContext.get()
    expected = context.flow_run.expected_start_time if context and context.flow_run else None
    if expected is None:
        raise InputError(f"lead_s {lead_s:g} needs a scheduled flow run (the moment is its time + lead)")
    # a plain datetime: Prefect hands out pendulum's, which do not mix with the standard ones
    return datetime.fromtimestamp(expected.timestamp(), UTC) + timedelta(seconds=lead_s)


def _precheck(plan_path: str) -> Hold | None:
    """Why the drill must not run now, or None when every precheck lets it go."""
    for name, check in PRECHECKS.items():
        answer = check(plan_path)
        if answer is not None:
            hold = Hold.of(answer)
            logger = logging.getLogger("engine.flow")
            logger.warning("drill %s by precheck %s: %s", hold.kind, name, hold.reason)
            return hold
    return None


def hold_state(hold: Hold) -> State:
    """The flow run's final state for a drill that did not run: Cancelled "Held"/"Postponed",
    or Failed "Not delivered" when it will never run in its window; the message is the reason."""
    # No data: Prefect reads a Cancelled/Failed state's data as the exception to raise.
    make = Failed if hold.kind is HoldKind.DROPPED else Cancelled
    return make(name=hold.state_name, message=hold.reason)


def summary(result: RunResult) -> dict[str, Any]:
    """The JSON-able summary the flow returns."""
    context = FlowRunContext.get()
    flow_run = context.flow_run if context else None
    return {
        "flow_run_id": str(flow_run.id) if flow_run else None,
        "run_id": result.run_id,
        "run_dir": str(result.run_dir),
        "exit_code": result.exit_code,
        "outcome": result.outcome,
        "reason": result.reason,
        "unreverted": list(result.unreverted),
        "debrief": dict(result.debrief) if result.debrief else None,
    }


def _attach_artifacts(result: RunResult) -> list[threading.Thread]:
    """Attach the scorecard and the steps to the flow run, each in a thread of its own (in a
    copy of the flow run's context); the caller joins them."""
    if FlowRunContext.get() is None:
        return []
    run_id = result.run_id
    calls: list[Callable[[], object]] = []
    scorecard = result.run_dir / "debrief.md"
    if scorecard.exists():
        markdown = scorecard.read_text()
        calls.append(
            partial(create_markdown_artifact, key="drill-scorecard", markdown=markdown, description=run_id)
        )
    steps = _step_rows(result.debrief)
    if steps:
        calls.append(partial(create_table_artifact, key="drill-steps", table=steps, description=run_id))
    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(_attach, call), name="drill-artifact")
        for call in calls
    ]
    for thread in threads:
        thread.start()
    return threads


def _attach(call: Callable[[], object]) -> None:
    try:
        call()
    except Exception:  # the drill is over and recorded; a missing artifact only costs the UI a view
        logging.getLogger("engine.flow").warning("artifact not attached", exc_info=True)


def _step_rows(debrief: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not debrief:
        return []
    keys = ("party", "id", "title", "target_s", "actual_s", "status", "score")
    return [{k: s.get(k) for k in keys} for s in debrief.get("steps", [])]


def fast_settings() -> AbstractContextManager[Any]:
    """Disable the flow heartbeat, whose thread join rounds every sync flow up to whole seconds."""
    try:
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    except ImportError:  # pragma: no cover - a Prefect without the setting
        return nullcontext()
    return temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})
