"""``bcdrill canary start|stop|status ENV HOST (--database DB | --share DIR)``, added through the
``bcdrill.commands`` entry point."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from engine.errors import DrillError, InputError

__all__ = ["register"]

out = Console(highlight=False, emoji=False)
err = Console(stderr=True, highlight=False, emoji=False)

canary_app = typer.Typer(
    help="A canary writer beside a client's PostgreSQL or in a file share, so drills measure the "
    "recovery point (RPO)."
)
T = TypeVar("T")

EnvArg = Annotated[Path, typer.Argument(metavar="ENV", help="environment file")]
HostArg = Annotated[
    str, typer.Argument(metavar="HOST", help="an SSH host of the environment, or a target bound to one host")
]
DatabaseOpt = Annotated[str | None, typer.Option(help="the client's database to write the canary table into")]
ShareOpt = Annotated[
    str | None, typer.Option(help="the client's shared folder (a directory) to keep the canary file in")
]
RunAsOpt = Annotated[
    str | None,
    typer.Option(
        "--run-as", help="who the writer runs as (through sudo): default postgres, or the share's owner"
    ),
]


def _store(command: str, database: str | None, share: str | None) -> tuple[str, str]:
    """``("database", DB)`` or ``("share", DIR)``: exactly one must be given (else exit 2)."""
    if (database is None) == (share is None):
        err.print(f"bcdrill canary {command}: give exactly one of --database DB or --share DIR", markup=False)
        raise typer.Exit(2)
    return ("database", database) if database is not None else ("share", str(share))


def _with_host(command: str, env: Path, host: str, action: Callable[..., T]) -> T:
    """Load ``env``, connect to ``host`` (pinned key) and run ``action(ssh)``; errors exit cleanly."""
    from engine.spec.loader import load_environment
    from engine.transports.connections import Transports

    try:
        environment = load_environment(env)
        name = _host_name(environment, host)
        transports = Transports(environment)
        try:
            return action(transports.ssh(name))
        finally:
            transports.close()
    except DrillError as exc:
        for problem in getattr(exc, "problems", ()):
            err.print(str(problem), markup=False)
        err.print(f"bcdrill canary {command}: {exc}", markup=False)
        raise typer.Exit(exc.exit_code) from exc


def _host_name(environment: object, name: str) -> str:
    """``name`` as an SSH host of the environment (a target bound to exactly one host counts)."""
    hosts = getattr(environment, "hosts", {})
    if name in hosts:
        return name
    binding = getattr(environment, "targets", {}).get(name)
    if binding is not None and binding.kind == "host" and len(binding.refs) == 1:
        return str(binding.refs[0])
    known = ", ".join(sorted(hosts)) or "none"
    raise InputError(f"{name!r} is not an SSH host of the environment (hosts: {known})")


@canary_app.command("start")
def start_cmd(
    env: EnvArg,
    host: HostArg,
    database: DatabaseOpt = None,
    share: ShareOpt = None,
    every: Annotated[str, typer.Option(help="time between rows, e.g. 1s, 500ms, 1m")] = "1s",
    run_as: RunAsOpt = None,
    mode: Annotated[str, typer.Option(help="auto (systemd where it runs), systemd or nohup")] = "auto",
) -> None:
    """Start writing one canary row (or file line) every --every (idempotent)."""
    from engine.model.durations import parse_duration
    from engine.onboard.canary import canary_start
    from engine.onboard.share_canary import share_canary_start
    from engine.probes.file_canary import CANARY_FILE

    kind, name = _store("start", database, share)
    try:
        interval = parse_duration(every)
    except ValueError as exc:
        err.print(f"bcdrill canary start: --every {every!r}: {exc}", markup=False)
        raise typer.Exit(2) from None
    if kind == "share":
        how = _with_host(
            "start", env, host, lambda ssh: share_canary_start(ssh, name, interval, run_as, mode)
        )
        where = f"{name.rstrip('/')}/{CANARY_FILE}"
    else:
        user = run_as or "postgres"
        how = _with_host("start", env, host, lambda ssh: canary_start(ssh, name, interval, user, mode))
        where = f"{name}.bcdrill_canary"
    out.print(f"canary writing to {where} on {host} every {every} ({how})", markup=False)


@canary_app.command("stop")
def stop_cmd(env: EnvArg, host: HostArg, database: DatabaseOpt = None, share: ShareOpt = None) -> None:
    """Stop the writer; the canary rows (or file) stay."""
    from engine.onboard.canary import canary_stop
    from engine.onboard.share_canary import share_canary_stop

    kind, name = _store("stop", database, share)
    stop = share_canary_stop if kind == "share" else canary_stop
    was = _with_host("stop", env, host, lambda ssh: stop(ssh, name))
    out.print(f"canary on {host} ({name}): {'stopped' if was else 'was not running'}", markup=False)


@canary_app.command("status")
def status_cmd(
    env: EnvArg, host: HostArg, database: DatabaseOpt = None, share: ShareOpt = None, run_as: RunAsOpt = None
) -> None:
    """Whether the writer runs, and the newest row's number and age; exit 4 when not running."""
    from engine.onboard.canary import canary_status
    from engine.onboard.share_canary import share_canary_status

    kind, name = _store("status", database, share)
    if kind == "share":
        status = _with_host("status", env, host, lambda ssh: share_canary_status(ssh, name))
    else:
        status = _with_host("status", env, host, lambda ssh: canary_status(ssh, name, run_as or "postgres"))
    newest = "no rows" if status.newest_seq is None else f"row {status.newest_seq}, {status.age_s:.1f}s old"
    state = f"running ({status.mode})" if status.running else "not running"
    out.print(f"canary on {host} ({name}): {state}; newest {newest}", markup=False)
    if not status.running:
        raise typer.Exit(4)


def register(app: typer.Typer) -> None:
    """Add the ``canary`` command group to the ``bcdrill`` application."""
    app.add_typer(canary_app, name="canary")
