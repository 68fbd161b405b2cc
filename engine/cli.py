"""The ``bcdrill`` command line (Typer + rich).

Exit codes (DESIGN.md): 0 passed; 1 completed below threshold or an objective missed;
2 invalid input or usage; 3 aborted; 4 preflight or environment failure; 5 a revert failed.
Commands from other packages (reports, drill programme) plug in via ``bcdrill.commands``.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from engine import logsetup
from engine.clock import INVOKED_AT  # the moment the person pressed Enter (process start)
from engine.command_plugins import install_plain_values
from engine.errors import DrillError, InputError
from engine.home import runs_dir

if TYPE_CHECKING:
    from rich.console import Console

    from engine.orchestration.local_runner import RunnerInfo
    from engine.orchestration.slot import SlotHolder
    from engine.plugins import Scorecard

install_plain_values()  # plain values converted without pydantic (~0.4 s less per command)
app = typer.Typer(
    name="bcdrill",
    help="Unannounced business-continuity drills: inject, observe, time both sides, score.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
lab_app = typer.Typer(help="The local lab: staging containers and SSH hosts on this machine.")
app.add_typer(lab_app, name="lab")
runner_app = typer.Typer(help="The long-lived local runner that `bcdrill run` submits drills to.")
app.add_typer(runner_app, name="runner")


class _Console:
    """A rich ``Console`` made on first use: a command that prints plain lines (``ack``) never
    imports rich (~60 ms)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


out = cast("Console", _Console(highlight=False))
err = cast("Console", _Console(stderr=True, highlight=False))
REPO = Path(__file__).resolve().parents[1]
DEMO_PLAYBOOK = REPO / "playbooks" / "storefront-down.yaml"
TERMINAL_SCORECARD = "terminal"  # the scorecard printer plugin (bcdrill.scorecards)

RunsOption = Annotated[
    Path | None,
    typer.Option("--runs", help="run store (default $BCDRILL_RUNS or ~/.local/share/bcdrill/runs)"),
]
EnvOption = Annotated[Path, typer.Option("--env", "-e", help="environment file", exists=False)]


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log at info level")] = False,
) -> None:
    logsetup.configure(verbose=verbose)


# ---------------------------------------------------------------- validate / plan


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="playbooks, environments, drill plans")],
    env: Annotated[
        Path | None, typer.Option("--env", "-e", help="also check each playbook binds to this environment")
    ] = None,
    lang: Annotated[
        str | None,
        typer.Option("--lang", help="also list the playbook texts missing in this language (e.g. zh-CN)"),
    ] = None,
) -> None:
    """Validate files; print every problem as file:line:column: field: message (exit 2 if any).

    With ``--env``, each playbook's targets, services, paths, URLs and participants must
    resolve in that environment (offline: no host is contacted).
    """
    from engine.spec.loader import binding_problems, validate_file

    bad = 0
    for path in files:
        kind, problems = validate_file(path)
        if env is not None and not problems and kind == "playbook/v1":
            problems = binding_problems(path, env)
        if lang and not problems and kind == "playbook/v1":
            problems = _untranslated(path, lang)
        if problems:
            bad += 1
            for problem in problems:
                err.print(str(problem), markup=False, emoji=False, highlight=False, soft_wrap=True)
        else:
            out.print(f"{path}: valid {kind}", markup=False, emoji=False)
    if bad:
        raise typer.Exit(2)


def _untranslated(path: Path, lang: str) -> tuple[Any, ...]:
    """One problem per playbook text that has no ``lang`` version (translations file included)."""
    from engine.spec.loader import load_playbook
    from engine.spec.translations import untranslated_problems

    try:
        return untranslated_problems(load_playbook(path), lang)
    except InputError as exc:
        return exc.problems


def _load(playbook: Path, env: Path) -> tuple[Any, Any]:
    from engine.spec.loader import check_against_environment, load_environment, load_playbook

    pb, environment = load_playbook(playbook), load_environment(env)
    problems = check_against_environment(pb, environment)
    if problems:
        raise InputError("playbook does not fit the environment", problems)
    return pb, environment


@app.command()
def plan(
    playbook: Path,
    env: EnvOption,
    seed: Annotated[
        int | None, typer.Option(help="the seed `run --seed` will use: shows the members `select` picks")
    ] = None,
) -> None:
    """Dry run: resolved targets, each fault's exact call and revert, probes, preflight — no changes."""
    from engine.run.dryrun import dry_run

    pb, environment = _load(playbook, env)
    report = dry_run(pb, environment, seed=seed)
    out.print(f"{pb.title} — plan on {environment.name} ({environment.kind})", style="bold", markup=False)
    for row in report.faults:
        # plain lines, never wrapped: the commands are meant to be copied
        out.print(f"at {row.at}  {row.fault} on {row.target}  [{row.check}]", markup=False, soft_wrap=True)
        out.print(f"    inject: {row.inject}", markup=False, soft_wrap=True)
        out.print(f"    revert: {row.revert}", markup=False, soft_wrap=True)
    for line in report.probes:
        out.print(line, markup=False)
    out.print(report.verdict, markup=False)
    if not report.ready:
        raise typer.Exit(4)


# ---------------------------------------------------------------- run


@app.command()
def run(
    playbook: Path,
    env: EnvOption,
    responders: Annotated[str, typer.Option(help="simulate | auto | manual")] = "manual",
    seed: Annotated[int | None, typer.Option(help="seed for simulated responders")] = None,
    time_scale: Annotated[
        float,
        typer.Option(help="multiply every scenario duration (CI: 0.01–0.1)", min=0.001, max=10.0),
    ] = 1.0,
    allow_production: Annotated[
        bool,
        typer.Option("--allow-production", help="permit a production environment that allows it"),
    ] = False,
    min_score: Annotated[float | None, typer.Option(help="exit 1 below this overall score")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the debrief JSON on stdout")] = False,
    junit: Annotated[Path | None, typer.Option(help="also write JUnit XML here")] = None,
    summary: Annotated[
        Path | None,
        typer.Option(help="append a Markdown job summary here (also done to $GITHUB_STEP_SUMMARY when set)"),
    ] = None,
    runs: RunsOption = None,
    desk: Annotated[
        str | None, typer.Option(help="host the drill desk on HOST:PORT for this run (e.g. 127.0.0.1:8765)")
    ] = None,
    debriefer: Annotated[
        str, typer.Option(help="the debriefer plugin that scores the run (entry points bcdrill.debriefers)")
    ] = "standard",
    run_class: Annotated[
        str | None,
        typer.Option(
            "--class",
            help="drill (official) | rehearsal | ci; default: ci with --responders auto, else rehearsal",
        ),
    ] = None,
    through_runner: Annotated[
        bool | None,
        typer.Option(
            "--runner/--in-process",
            help="through the long-lived local runner (started if needed) / in this process; "
            "default: $BCDRILL_RUNNER (1 | 0 | auto: the runner when one is up), else the runner, "
            "started on first use",
        ),
    ] = None,
) -> None:
    """Run a drill: preflight, inject, observe, record responses, revert, score."""
    from engine.record.records import resolve_run_class
    from engine.record.signing import run_signing_key

    if responders not in ("simulate", "auto", "manual"):
        raise InputError(f"--responders must be simulate, auto or manual, not {responders!r}")
    try:
        chosen = resolve_run_class(run_class, responders, from_plan=False, time_scale=time_scale)
    except ValueError as exc:
        raise InputError(f"--class: {exc}") from None
    run_signing_key(chosen)  # a bad key reference, or an official drill without a key: exit 2 now
    book, environment = _load(playbook, env)  # bad input: exit 2 before Prefect even starts
    _refuse_stale_runs(environment.name, runs)
    runner = _runner_to_use(_runner_mode(through_runner))  # None: the drill runs in this process
    # In this process, every plugin the run needs is loaded now (missing: exit 4, nothing injected);
    # through the runner the drill's process does that first.
    args = (
        playbook,
        env,
        runs,
        responders,
        seed,
        time_scale,
        allow_production,
        min_score,
        desk,
        debriefer,
        run_class,
    )
    if runner is None:
        scorecard = _check_parts(book, responders, desk, debriefer)
        result = _run_flow(*args)
    else:
        result, scorecard = _run_served(runner, book.id, *args)
    _finish(result, as_json, junit, scorecard, summary)


_RUNNER_MODES = {
    "1": "on",
    "on": "on",
    "yes": "on",
    "0": "off",
    "off": "off",
    "no": "off",
    "auto": "auto",
    "": "first-use",
}


def _runner_mode(flag: bool | None) -> str:
    """``on`` (start the runner if needed), ``off`` (in this process), ``auto`` (the runner
    when one is up) or ``first-use`` (the runner, started if none is up; in this process when
    the one up has other settings): ``--runner``/``--in-process``, else ``$BCDRILL_RUNNER``,
    else first use."""
    if flag is not None:
        return "on" if flag else "off"
    value = os.environ.get("BCDRILL_RUNNER", "").strip().lower()
    modes = _RUNNER_MODES
    if value not in modes:
        raise InputError(f"$BCDRILL_RUNNER must be 1, 0 or auto, not {value!r}")
    return modes[value]


def _runner_to_use(mode: str) -> RunnerInfo | None:
    """The long-lived runner to submit to (``on``, ``first-use``: started if needed); None to run
    the drill in this process (``off``; ``auto`` and no runner up; one started with other
    settings, unless ``on``)."""
    from engine.orchestration.local_runner import environment_fingerprint, live_runner, start_runner

    if mode == "off":
        return None
    found = live_runner()
    if found is None and mode in ("on", "first-use"):
        err.print(
            "starting the bcdrill runner: its Prefect server takes a while once; later drills reuse it",
            markup=False,
        )
        info, started = start_runner()
        if started:
            err.print(
                f"started the bcdrill runner (pid {info.pid}; `bcdrill runner stop` stops it)", markup=False
            )
    elif found is None:
        return None
    else:
        info = found
    if info.fingerprint == environment_fingerprint():
        return info
    message = (
        f"the bcdrill runner (pid {info.pid}) was started with other BCDRILL_*/PREFECT_API_URL "
        "variables than this command has; run `bcdrill runner stop` first, or use --in-process"
    )
    if mode == "on":
        raise InputError(message)
    err.print(f"note: {message}; running in this process", markup=False)
    return None


def _run_served(
    info: RunnerInfo, playbook_id: str, playbook: Path, env: Path, runs: Path | None, *rest: Any
) -> tuple[dict[str, Any], Scorecard]:
    """Submit the drill to the long-lived runner, print its journal as it goes; its summary and
    the scorecard printer (loaded while the runner starts the drill)."""
    from engine.errors import MissingPluginError
    from engine.orchestration.thin_client import follow, result_file, submit
    from engine.record.runstore import new_run_id

    run_id = new_run_id(playbook_id)
    runs_root = (runs or runs_dir()).resolve()
    _, flow_run_id = submit(_served_parameters(run_id, playbook, env, runs_root, result_file(run_id), *rest))
    from engine.progress import ProgressPrinter  # rich: imported while the runner starts the drill

    line = f"bcdrill running {playbook} on {env} through the runner (pid {info.pid}): run {run_id}"
    err.print(line, markup=False, soft_wrap=True)
    try:
        scorecard: Scorecard | None = _scorecard()
    except MissingPluginError as exc:  # a broken install: still follow the drill to its end
        scorecard, missing = None, exc
    result = follow(info, flow_run_id, runs_root / run_id, ProgressPrinter(err), _notice)
    if scorecard is None:
        raise missing
    return result, scorecard


def _notice(text: str) -> None:
    err.print(f"bcdrill: {text}", markup=False)


def _served_parameters(
    run_id: str, playbook: Path, env: Path, runs_root: Path, result: Path, *rest: Any
) -> dict[str, Any]:
    responders, seed, time_scale, allow_production, min_score, desk, debriefer, run_class = rest
    return {
        "playbook_path": str(playbook.resolve()),
        "environment_path": str(env.resolve()),
        "runs_root": str(runs_root),
        "run_id": run_id,
        "responders": responders,
        "seed": seed,
        "time_scale": time_scale,
        "allow_production": allow_production,
        "min_score": min_score,
        "desk": desk,
        "debriefer": debriefer,
        "run_class": run_class,
        "result_file": str(result),
        "workdir": os.getcwd(),
        "client_pid": os.getpid(),
    }


def _check_parts(book: Any, responders: str, desk: str | None, debriefer: str) -> Scorecard:
    """Resolve the run's plugins before anything starts; the scorecard printer among them."""
    from engine.plugins import resolve_parts

    resolve_parts(responders, desk is not None, debriefer, mailbox=bool(book.exercise.mailbox))
    return _scorecard()


def _scorecard() -> Scorecard:
    from engine.plugins import SCORECARDS, required

    return required(SCORECARDS, TERMINAL_SCORECARD)


def _refuse_stale_runs(environment: str, runs: Path | None) -> None:
    """A crashed run may have left faults on this environment: recover first."""
    from engine.errors import PreflightError
    from engine.record.leftovers import stale_runs

    stale = stale_runs(environment, runs)
    for run_dir, faults in stale:
        err.print(
            f"warning: run {run_dir.name} on {environment!r} ended without reverting "
            f"{', '.join(faults)}; run: bcdrill recover {run_dir.name}",
            markup=False,
        )
    if stale:
        raise PreflightError(f"environment {environment!r} may still carry faults from a crashed run")


def _run_flow(
    playbook: Path,
    env: Path,
    runs: Path | None,
    responders: str,
    seed: int | None,
    time_scale: float,
    allow_production: bool,
    min_score: float | None,
    desk: str | None = None,
    debriefer: str = "standard",
    run_class: str | None = None,
) -> dict[str, Any]:
    from engine.errors import PreflightError
    from engine.flow import drill_run, fast_settings
    from engine.orchestration.logs import quiet_drill_error_tracebacks
    from engine.orchestration.server import prefect_api

    quiet_drill_error_tracebacks()  # e.g. "environment held by run R": one line, exit 4

    err.print(f"[bold]bcdrill[/] running {playbook} on {env} (starting Prefect…)")
    with prefect_api(), fast_settings():  # a temporary server, if any, dies with this process
        result = drill_run(
            playbook_path=str(playbook.resolve()),
            environment_path=str(env.resolve()),
            runs_root=str((runs or runs_dir()).resolve()),
            responders=responders,
            seed=seed,
            time_scale=time_scale,
            allow_production=allow_production,
            min_score=min_score,
            progress=True,
            desk=desk,
            debriefer=debriefer,
            run_class=run_class,
        )
    if not isinstance(result, dict):  # a State only when a precheck held a scheduled drill
        raise PreflightError(f"the drill did not run: {result.message}")
    return result


def _append_summary(run_dir: Path, target: Path | None) -> None:
    """Append the run's ``summary.md`` to ``target`` and to ``$GITHUB_STEP_SUMMARY`` (CI pages)."""
    source = run_dir / "summary.md"
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    targets = [t for t in (target, Path(step_summary) if step_summary else None) if t is not None]
    if not targets or not source.exists():
        return
    text = source.read_text(encoding="utf-8")
    for path in dict.fromkeys(targets):
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)


def _finish(
    result: dict[str, Any],
    as_json: bool,
    junit: Path | None,
    scorecard: Scorecard,
    summary: Path | None = None,
) -> None:
    debrief = result.get("debrief")
    run_dir = Path(result["run_dir"])
    if debrief:
        scorecard(debrief, err)
    if junit and (run_dir / "junit.xml").exists():
        junit.write_bytes((run_dir / "junit.xml").read_bytes())
    _append_summary(run_dir, summary)
    if as_json and debrief:
        sys.stdout.write(json.dumps(debrief, indent=2, sort_keys=True) + "\n")
    _report_unreverted(run_dir, result.get("unreverted", []))
    err.print(f"outcome: [bold]{result['outcome']}[/] — {result['reason']}")
    err.print(f"run folder: {run_dir}")
    if (run_dir / "debrief.html").exists():
        err.print(f"scorecard: {run_dir / 'debrief.html'}")
    raise typer.Exit(int(result["exit_code"]))


def _report_unreverted(run_dir: Path, faults: list[str]) -> None:
    """Name each fault that may remain, with the exact manual command from the journal."""
    if not faults:
        return
    from engine.record.journal import read_journal
    from engine.record.records import RecordType

    manual = {
        r["data"]["fault"]: r["data"]["manual"]
        for r in read_journal(run_dir / "journal.jsonl").of_type(RecordType.FAULT_REVERT_FAILED)
    }
    for fault in faults:
        err.print(
            f"NOT REVERTED: {fault} — fix by hand: {manual.get(fault, '?')}", markup=False, style="bold red"
        )
    err.print(f"or retry with: bcdrill recover {run_dir.name}", markup=False)


# ---------------------------------------------------------------- the long-lived runner


@runner_app.command("start")
def runner_start(
    idle: Annotated[
        float, typer.Option(help="exit by itself after this many seconds without a drill", min=1.0)
    ] = 900.0,
) -> None:
    """Start the local runner (idempotent): the drill-run flow served, with its Prefect server."""
    from engine.orchestration.local_runner import start_runner

    info, started = start_runner(idle)
    verb = "started" if started else "already running"
    out.print(f"bcdrill runner {verb}: pid {info.pid}, Prefect API {info.url}", markup=False)


@runner_app.command("stop")
def runner_stop() -> None:
    """Stop the local runner and its Prefect server (a drill it runs is aborted and reverted)."""
    from engine.orchestration.local_runner import stop_runner

    info = stop_runner()
    out.print(
        f"bcdrill runner stopped (pid {info.pid})" if info else "no bcdrill runner is running", markup=False
    )


@runner_app.command("status")
def runner_status() -> None:
    """Show the local runner (exit 4 when none runs)."""
    from engine.orchestration.local_runner import live_runner

    info = live_runner()
    if info is None:
        out.print("no bcdrill runner is running", markup=False)
        raise typer.Exit(4)
    up = time.time() - info.started_at
    server = "its own Prefect server" if info.own_server else "the configured Prefect server"
    out.print(
        f"bcdrill runner: pid {info.pid}, up {up:.0f}s, {server} at {info.url}, "
        f"exits after {info.idle_s:g}s without a drill",
        markup=False,
        soft_wrap=True,
    )


# ---------------------------------------------------------------- during a run


@app.command()
def ack(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="run id, prefix, folder or 'latest'")],
    step: Annotated[str, typer.Argument(help="step id, or party.id")],
    by: Annotated[str, typer.Option(help="who did it")],
    party: Annotated[str | None, typer.Option(help="msp or client")] = None,
    note: Annotated[str, typer.Option(help="optional note")] = "",
    token_env: Annotated[
        str | None,
        typer.Option(help="name of the variable holding your drill-desk token: ack through the run's desk"),
    ] = None,
    runs: RunsOption = None,
) -> None:
    """Record that a response step was done, into a live run.

    The ack carries the moment this command was started; the engine counts that moment when it
    lies within the transit window, else its own receipt time (the journal says why).
    With ``--token-env`` the ack goes through the run's drill desk as you (from any machine that
    can reach it); without, it is handed over locally by a controller on the engine's machine.
    """
    from engine.record.inbox import Ack, write_ack
    from engine.record.runstore import find_run, owner_alive

    run_dir = find_run(run_ref, runs)
    key = step if "." in step else f"{party}.{step}" if party else ""
    if not key:
        raise InputError(f"step {step!r}: give --party msp|client or write it as party.id")
    if party and not key.startswith(f"{party}."):
        raise InputError(f"step {key!r} does not belong to party {party!r}")
    if not owner_alive(run_dir):
        raise InputError(f"run {run_dir.name} is not live: acks are taken only during a drill")
    if token_env:
        from engine.web import post_ack_to_desk

        answer = post_ack_to_desk(run_dir, os.environ.get(token_env, ""), key, note, claimed_at=INVOKED_AT)
        typer.echo(answer)  # plain lines: no rich import for the quickest command
        return
    write_ack(run_dir, Ack(key, by, "ack", note, claimed_at=INVOKED_AT))
    typer.echo(f"ack for {key} by {by} handed to run {run_dir.name}")


@app.command()
def abort(
    run_ref: Annotated[str, typer.Argument(metavar="RUN")],
    reason: Annotated[str, typer.Option(help="why")] = "operator abort",
    by: Annotated[str, typer.Option(help="who")] = os.environ.get("USER", "operator"),
    wait: Annotated[float, typer.Option(help="seconds to wait for the reverts")] = 30.0,
    runs: RunsOption = None,
) -> None:
    """Abort a live run: it reverts every fault and records the reason."""
    from engine.record.runstore import find_run, owner_alive, request_abort

    run_dir = find_run(run_ref, runs)
    if not owner_alive(run_dir):
        raise InputError(f"run {run_dir.name} is not live; use `bcdrill recover` for a dead run")
    request_abort(run_dir, reason, by)
    deadline = time.monotonic() + wait
    while owner_alive(run_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    if owner_alive(run_dir):
        err.print(f"run {run_dir.name} has not finished reverting after {wait:g}s")
        raise typer.Exit(3)
    out.print(f"run {run_dir.name} aborted and reverted", markup=False)


@app.command()
def recover(
    run_ref: Annotated[
        str | None, typer.Argument(metavar="[RUN]", help="a run, or all runs when omitted")
    ] = None,
    runs: RunsOption = None,
) -> None:
    """Revert faults left behind by a crashed or killed run, from its journal (idempotent)."""
    from engine.record.runstore import find_run
    from engine.run.recovery import recover_all, recover_run

    reports = [recover_run(find_run(run_ref, runs))] if run_ref else recover_all(runs)
    failed = False
    for report in reports:
        if report.skipped:
            out.print(f"{report.run_dir.name}: skipped — {report.skipped}", markup=False)
        elif report.reverted or report.failed:
            out.print(
                f"{report.run_dir.name}: reverted {', '.join(report.reverted) or 'nothing'}",
                markup=False,
            )
        for fault in report.failed:
            err.print(f"{report.run_dir.name}: could NOT revert {fault}", markup=False)
            failed = True
        if report.torn_tail_set_aside:
            out.print(f"{report.run_dir.name}: torn last record set aside as evidence", markup=False)
        if report.finished:
            out.print(
                f"{report.run_dir.name}: the engine never ended it: ended now and debriefed as void",
                markup=False,
            )
        if report.unsigned:
            err.print(f"{report.run_dir.name}: {report.unsigned}", markup=False)
        if report.error:
            err.print(f"{report.run_dir.name}: could NOT recover — {report.error}", markup=False)
            failed = True
    released = _release_dead_slots({r.run_dir.name for r in reports} if run_ref else None)
    done = (r.reverted or r.failed or r.torn_tail_set_aside or r.finished or r.error for r in reports)
    if not any(done) and not released:
        out.print("nothing to recover")
    if failed:
        raise typer.Exit(5)


def _release_dead_slots(run_ids: set[str] | None) -> bool:
    """Free the Prefect environment slots that dead runs still hold (see engine.orchestration.slot)."""
    from engine.orchestration.slot import SlotsNotFreed, dead_holders, release_dead_holders

    if not dead_holders(run_ids):
        return False  # no Prefect needed
    try:
        released = release_dead_holders(run_ids)  # each on the server that holds it
    except SlotsNotFreed as exc:
        _say_released(exc.freed)
        raise
    _say_released(released)
    return bool(released)


def _say_released(holders: list[SlotHolder]) -> None:
    for holder in holders:
        out.print(
            f"{holder.run_id}: released the Prefect slot of environment {holder.environment!r}",
            markup=False,
        )


@app.command("runs")
def list_runs_cmd(runs: RunsOption = None) -> None:
    """List runs in the run store, newest last, with their class (drill, rehearsal, ci)."""
    from rich.table import Table

    from engine.record.runstore import list_runs

    table = Table("run", "class", "outcome", "score", "rating")
    for run_dir in list_runs(runs):
        debrief = _read_json(run_dir / "debrief.json")
        table.add_row(
            run_dir.name,
            str(debrief.get("class", "—")),
            str(debrief.get("outcome", "—")),
            str(debrief.get("score", "—")),
            str(debrief.get("rating", "—")),
        )
    out.print(table)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# ---------------------------------------------------------------- lab and demo


@lab_app.command("up")
def lab_up(
    name: str = "lab",
    hosts: Annotated[int, typer.Option(help="SSH hosts to create")] = 2,
    systemd: Annotated[
        bool, typer.Option(help="add systemd hosts: sys1 (nginx, PostgreSQL, Samba share), dc1 (Samba AD DC)")
    ] = False,
) -> None:
    """Start the lab (idempotent) and print its environment file."""
    from engine import lab

    out.print(str(lab.up(name, hosts, systemd=systemd)), markup=False)


@lab_app.command("down")
def lab_down(name: str = "lab") -> None:
    """Remove everything the lab created."""
    from engine import lab

    removed = lab.down(name)
    out.print(f"removed: {', '.join(removed) or 'nothing'}", markup=False)


@lab_app.command("status")
def lab_status(name: str = "lab") -> None:
    """Show the lab's containers."""
    from engine import lab

    states = lab.status(name)
    for container, state in sorted(states.items()):
        out.print(f"{container}: {state}", markup=False)
    if not states:
        out.print("lab is down")
        raise typer.Exit(4)


@app.command()
def demo(
    playbook: Path = DEMO_PLAYBOOK,
    time_scale: Annotated[float, typer.Option(help="the demo compresses minutes into seconds")] = 0.01,
    seed: int = 19,  # a drill where each side is late once: the debrief has findings to show
    runs: RunsOption = None,
) -> None:
    """Lab up, then run a shipped playbook with simulated responders and show the scorecard.

    The simulated people record their steps through the drill desk's API, as real people would.
    """
    from engine import lab

    env = lab.up("lab")
    book, environment = _load(playbook, env)
    scorecard = _check_parts(book, "simulate", "127.0.0.1:0", "standard")
    _refuse_stale_runs(environment.name, runs)
    result = _run_flow(playbook, env, runs, "simulate", seed, time_scale, False, None, desk="127.0.0.1:0")
    _finish(result, False, None, scorecard)


# ---------------------------------------------------------------- entry point


def _add_plugin_commands(argv: list[str]) -> None:
    from engine.command_plugins import load_command_plugins
    from engine.errors import RegistrationError

    try:
        load_command_plugins(app, argv)  # only the plugin owning the command asked for
    except RegistrationError as exc:  # a broken plugin must not take the core commands down
        err.print(f"bcdrill: warning: {exc}", markup=False)


def main() -> None:
    """Console entry point: map every bcdrill error to its exit code and a one-line message."""
    try:
        _add_plugin_commands(sys.argv[1:])
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except DrillError as exc:
        err.print(f"bcdrill: {exc}", markup=False, emoji=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("bcdrill: interrupted")
        sys.exit(3)
    except Exception as exc:  # click usage errors and friends
        code = _usage_exit_code(exc)
        if code is None:
            raise
        sys.exit(code)
    finally:
        # Everything imported stays until the process ends: spare the interpreter's last
        # collection a walk over it (~0.2 s of every command here). Exit handlers still run.
        gc.freeze()


def _click_exceptions() -> list[Any]:
    """The exceptions modules of click as typer uses it: its vendored ``typer._click`` (typer
    >= 0.29) and/or plain click — whichever are installed."""
    import importlib

    found = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            continue
    return found


def _usage_exit_code(exc: Exception) -> int | None:
    """Show a click usage error as one line on stderr; its exit code (2, 3 for Abort), else None."""
    if isinstance(exc, typer.Abort):
        return 3
    for exceptions in _click_exceptions():
        abort = getattr(exceptions, "Abort", None)
        if abort is not None and isinstance(exc, abort):
            return 3
        if isinstance(exc, exceptions.ClickException):
            message = exc.format_message()
            if not message:  # no_args_is_help: click printed the help already
                return 2
            ctx = getattr(exc, "ctx", None)
            if isinstance(exc, exceptions.UsageError) and ctx is not None:
                message = f"{message} (see: {ctx.command_path} --help)"
            err.print(f"bcdrill: {message}", markup=False, emoji=False, highlight=False, soft_wrap=True)
            return 2  # every click exception here is a usage problem (exit 1 means "below the pass mark")
    return None
