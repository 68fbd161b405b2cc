"""Drill-programme commands (``schedule``, ``calendar``, ``reveal``, ``server``, ``worker``).

Added to the ``bcdrill`` Typer app through the ``bcdrill.commands`` entry point
``programme``. Only ``calendar`` and ``reveal`` (after the moment) ever print a drill's time;
``schedule`` prints commitments for the client's sponsor, never the moment.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from datetime import UTC
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from drills.programme.commitment import verify
from drills.programme.drill_plans import load_plan
from drills.programme.prefect_runs import REPO, ensure_deployment
from drills.programme.secret_schedule import (
    PlanRequest,
    ProgrammeStore,
    RunSettings,
    StoredDrill,
    default_pool,
    now_utc,
    pick_new_drills,
    schedule,
)
from engine.errors import DrillError, InputError
from engine.home import runs_dir
from engine.logsetup import PREFECT_CONSOLE_LEVEL
from engine.web import is_loopback

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

# A long-running service's console is its operator's log: info level (a one-shot command
# shows Prefect's warnings only, see engine.logsetup).
SERVICE_CONSOLE = (PREFECT_CONSOLE_LEVEL, "INFO")

server_app = typer.Typer(help="The central Prefect server that schedules drills (loopback only).")
worker_app = typer.Typer(help="A Prefect process worker inside a client site (flow runs forked warm).")


def _fail(command: str, exc: DrillError) -> typer.Exit:
    err.print(f"bcdrill {command}: {exc}", markup=False, emoji=False, soft_wrap=True)
    return typer.Exit(exc.exit_code)


# ---------------------------------------------------------------- schedule


def schedule_cmd(
    plans: Annotated[list[Path], typer.Argument(metavar="PLAN...", help="drill-plan/v1 files")],
    capacity: Annotated[int, typer.Option(help="most drills the MSP team runs on one day", min=1)] = 1,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="check the plans can be scheduled; store nothing")
    ] = False,
    pool: Annotated[
        str | None,
        typer.Option(help="work pool for every plan (default: each plan's pool, else site-<client>)"),
    ] = None,
    responders: Annotated[str, typer.Option(help="simulate | auto | manual")] = "manual",
    time_scale: Annotated[float, typer.Option(help="multiply every scenario duration")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="seed for simulated responders")] = None,
    runs: Annotated[Path | None, typer.Option(help="run store on the worker (default: ours)")] = None,
    msp_time_zone: Annotated[str, typer.Option(help="the MSP team's time zone (capacity days)")] = "UTC",
    source: Annotated[Path, typer.Option(help="bcdrill folder the site's worker runs from")] = REPO,
    lead: Annotated[
        str,
        typer.Option(help="start each flow run this long before its moment (boot, slot, preflight)"),
    ] = "2m",
) -> None:
    """Pick each drill's secret moment, store it for the controllers, create its flow run.

    Prints one commitment (SHA-256) per drill for the client's sponsor — never the moment.
    """
    try:
        settings = RunSettings(
            str((runs or runs_dir()).resolve()), responders, time_scale, seed, _lead_s(lead)
        )
        requests = [_request(path, pool) for path in plans]
        store = ProgrammeStore()
        if dry_run:
            picked = pick_new_drills(requests, store.load(), settings, capacity, msp_time_zone)
            for request in requests:
                count = sum(1 for d in picked if d.client == request.plan.client)
                out.print(
                    f"{request.plan.client}: {count} drill(s) can be scheduled on pool"
                    f" {request.pool} (dry run: nothing stored)",
                    markup=False,
                )
            return
        outcome = schedule(requests, settings, store, capacity, msp_time_zone, source.resolve())
    except DrillError as exc:
        raise _fail("schedule", exc) from exc
    for drill in outcome.already:
        out.print(f"{drill.client}: {drill.run_name} was already scheduled", markup=False)
    if outcome.scheduled:
        _print_commitments(outcome.scheduled, store)


def _lead_s(text: str) -> float:
    """``--lead`` as seconds (a duration like ``2m`` or ``90s``)."""
    from engine.model.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InputError(f"--lead: {exc}") from exc


def _request(path: Path, pool: str | None) -> PlanRequest:
    """The plan at ``path`` on ``pool`` when given (``--pool``), else on its own or default pool."""
    plan = load_plan(path)
    return PlanRequest(plan, pool or default_pool(plan))


def _print_commitments(drills: tuple[StoredDrill, ...], store: ProgrammeStore) -> None:
    out.print("client | run | pool | commitment (SHA-256)", markup=False)
    for drill in drills:
        out.print(
            f"{drill.client} | {drill.run_name} | {drill.pool} | {drill.digest}", markup=False, soft_wrap=True
        )
    out.print(
        "Give each commitment to the client's sponsor; `bcdrill reveal RUN` opens it after the"
        f" drill. The moments are in {store.path} (controllers only: `bcdrill calendar`).",
        markup=False,
    )


# ---------------------------------------------------------------- calendar


def calendar_cmd(
    ics: Annotated[Path | None, typer.Option(help="write an .ics file here")] = None,
    client_window: Annotated[
        Path | None,
        typer.Option(help="PLAN: write the client's window-only .ics (needs --ics)"),
    ] = None,
) -> None:
    """Controllers' view of the secret schedule; or the client's window-only calendar."""
    from drills.programme.calendar import client_calendar, controller_calendar

    try:
        if client_window is not None:
            if ics is None:
                raise InputError("--client-window needs --ics FILE to write the client's calendar")
            _write_private(ics, client_calendar(load_plan(client_window)), 0o644)
            out.print(f"client window calendar written to {ics}", markup=False)
            return
        drills = ProgrammeStore().load()
    except DrillError as exc:
        raise _fail("calendar", exc) from exc
    if ics is not None:
        upcoming = [d.scheduled() for d in drills if d.effective_start is not None]
        _write_private(ics, controller_calendar(upcoming), 0o600)
        out.print(f"controllers' calendar written to {ics} (confidential)", markup=False)
        return
    out.print(_calendar_table(drills))


def _calendar_table(drills: tuple[StoredDrill, ...]) -> Table:
    """The controllers' table. Times never wrap or get cut (an 80-column terminal folds the
    names instead); the local time zone goes on its own line."""
    table = Table(title="Drill moments — controllers only")
    for header in ("run", "client"):
        table.add_column(header, overflow="fold")
    table.add_column("local time", no_wrap=True, min_width=20)
    table.add_column("UTC", no_wrap=True, min_width=16)
    for header in ("playbook", "pool", "status"):
        table.add_column(header, overflow="fold")
    now = now_utc()
    for drill in sorted(drills, key=lambda d: d.start):
        start = drill.effective_start
        if start is None:
            status, local, utc = "NOT DELIVERED: postponed with no slot left", "—", "—"
        else:
            status = "upcoming" if start > now else "past"
            if drill.postponements:
                status += f" (postponed {len(drill.postponements)}x)"
            if not drill.flow_run_id:
                status += " (no flow run yet: run `bcdrill schedule` again)"
            scheduled = drill.scheduled()
            local = f"{scheduled.local_start():%Y-%m-%d %H:%M %Z}\n({drill.time_zone})"
            utc = f"{start.astimezone(UTC):%Y-%m-%d %H:%M}"
        name = drill.postponements[-1].run_name if drill.postponements else drill.run_name
        table.add_row(
            name or drill.run_name, drill.client, local, utc, Path(drill.playbook).name, drill.pool, status
        )
    return table


def _write_private(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- reveal


def reveal_cmd(
    ref: Annotated[str, typer.Argument(metavar="RUN", help="run name, flow run id or key")],
) -> None:
    """After the drill: show its moment and nonce and verify the commitment."""
    try:
        drill = ProgrammeStore().find(ref)
        last = drill.effective_start
        # A dropped drill will never run: its first moment has passed, so its commitment opens.
        if not drill.dropped and (last is None or last > now_utc()):
            raise InputError(f"drill {ref!r} has not happened yet: its moment stays secret until then")
    except DrillError as exc:
        raise _fail("reveal", exc) from exc
    ok = verify(drill.digest, drill.start, drill.nonce)
    local = drill.start.astimezone(ZoneInfo(drill.time_zone))
    out.print(f"run:        {drill.run_name} ({drill.client})", markup=False)
    out.print(
        f"moment:     {drill.start.astimezone(UTC).isoformat()} ({local.isoformat()} {drill.time_zone})",
        markup=False,
    )
    out.print(f"nonce:      {drill.nonce}", markup=False)
    out.print(f"commitment: {drill.digest}", markup=False)
    for p in drill.postponements:
        where = f"to {p.start.isoformat()} as {p.run_name}" if p.start else "with no slot left"
        out.print(f"postponed:  {where} — {p.reason}", markup=False)
    if drill.dropped:
        out.print("outcome:    NOT DELIVERED — no allowed slot was left in the window", markup=False)
    if not ok:
        err.print("commitment does NOT verify: the stored moment or nonce was changed", markup=False)
        raise typer.Exit(1)
    out.print("verified:   yes — sha256('bcdrill-drill-commitment/v1\\n<moment>\\n<nonce>')", markup=False)


# ---------------------------------------------------------------- server and worker


def prefect_executable() -> str:
    """The ``prefect`` console script next to this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / "prefect"
    found = str(beside) if beside.exists() else shutil.which("prefect")
    if not found:
        raise InputError("the `prefect` command is not installed (pip install prefect)")
    return found


def server_command(host: str, port: int, base: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """``prefect server start`` on a loopback address, with analytics off, the UI's API URL and a
    database connection pool sized for a programme (unless ``base`` sets its own)."""
    if not is_loopback(host):
        raise InputError(
            f"host {host!r} is not a loopback address; publish the server through an"
            " authenticating TLS proxy instead (docs/programme.md)"
        )
    from engine.orchestration.server import database_pool

    url = f"http://{host}:{port}/api"
    env = {
        **base,
        **database_pool(base),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": url,
        SERVICE_CONSOLE[0]: SERVICE_CONSOLE[1],
    }
    argv = [prefect_executable(), "server", "start", "--host", host, "--port", str(port)]
    return argv, env


def worker_command(
    pool: str, api_url: str | None, base: Mapping[str, str], query_s: float, prefetch_s: float
) -> tuple[list[str], dict[str, str]]:
    """``prefect worker start --type process`` for one client site's pool, with bcdrill's process
    worker: each flow run forked from a warm process (:mod:`engine.orchestration.site_worker`)."""
    url = api_url or base.get("PREFECT_API_URL")
    if not url:
        raise InputError("give --api-url or set PREFECT_API_URL (the central Prefect server's /api)")
    env = {
        **base,
        "PREFECT_API_URL": url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": f"{query_s:g}",
        "PREFECT_WORKER_PREFETCH_SECONDS": f"{prefetch_s:g}",
        SERVICE_CONSOLE[0]: SERVICE_CONSOLE[1],
        **_absolute_paths(base),
    }
    argv = [sys.executable, "-m", "engine.orchestration.site_worker"]
    return [*argv, "worker", "start", "--pool", pool, "--type", "process"], env


def _absolute_paths(base: Mapping[str, str]) -> dict[str, str]:
    """``$BCDRILL_HOME`` and a ``file:`` signing key reference, made absolute: each flow run
    works in a folder of its own, where a relative path would name nothing."""
    from engine.record.signing import KEY_ENV

    paths: dict[str, str] = {}
    if home := base.get("BCDRILL_HOME"):
        paths["BCDRILL_HOME"] = str(Path(home).expanduser().resolve())
    if (key := base.get(KEY_ENV, "")).startswith("file:"):
        paths[KEY_ENV] = f"file:{Path(key[5:]).expanduser().resolve()}"
    return paths


def _exec(argv: list[str], env: dict[str, str]) -> None:
    err.print(f"exec: {' '.join(argv)}", markup=False)
    sys.stderr.flush()
    sys.stdout.flush()
    os.execve(argv[0], argv, env)  # noqa: S606 - argv is a fixed prefect command line


@server_app.command("start")
def server_start(
    host: Annotated[str, typer.Option(help="loopback address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port", min=1, max=65535)] = 4200,
) -> None:
    """Run the Prefect server in the foreground (SQLite in $PREFECT_HOME unless configured)."""
    try:
        argv, env = server_command(host, port, os.environ)
    except DrillError as exc:
        raise _fail("server start", exc) from exc
    _exec(argv, env)


@server_app.command("deploy")
def server_deploy(
    pool: Annotated[str, typer.Option(help="work pool of the client site")],
    source: Annotated[Path, typer.Option(help="bcdrill folder the site's worker runs from")] = REPO,
) -> None:
    """Create or update the site's process work pool and its ``drill-run/<pool>`` deployment."""
    try:
        name = ensure_deployment(pool, source.resolve())
    except DrillError as exc:
        raise _fail("server deploy", exc) from exc
    out.print(f"deployment {name} on work pool {pool} is ready", markup=False)


@worker_app.command("start")
def worker_start(
    pool: Annotated[str, typer.Option(help="work pool of this client site")],
    api_url: Annotated[str | None, typer.Option(help="the server's API URL (else $PREFECT_API_URL)")] = None,
    query_seconds: Annotated[float, typer.Option(help="how often to ask for runs", min=0.5)] = 10.0,
    prefetch_seconds: Annotated[float, typer.Option(help="start runs this early", min=0.0)] = 10.0,
) -> None:
    """Run a process worker for one client site's pool in the foreground."""
    from engine.record.signing import load_signing_key

    try:
        argv, env = worker_command(pool, api_url, os.environ, query_seconds, prefetch_seconds)
        if load_signing_key() is None:  # a bad key reference: exit 2 here, not at a drill's moment
            err.print(
                "warning: no signing key here: an official drill (manual responders, time scale 1) "
                "will not start on this worker; run `bcdrill keys init`",
                markup=False,
            )
    except DrillError as exc:
        raise _fail("worker start", exc) from exc
    _exec(argv, env)


def register(app: typer.Typer) -> None:
    """Add ``schedule``, ``calendar``, ``reveal``, ``server`` and ``worker`` to ``app``."""
    app.command("schedule")(schedule_cmd)
    app.command("calendar")(calendar_cmd)
    app.command("reveal")(reveal_cmd)
    app.add_typer(server_app, name="server")
    app.add_typer(worker_app, name="worker")
