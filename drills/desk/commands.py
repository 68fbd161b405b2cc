"""Drill desk commands, added to ``bcdrill`` through the ``bcdrill.commands`` entry point.

* ``bcdrill participants cards ENV [--base-url URL] [--reissue]`` — issue personal links;
* ``bcdrill participants revoke ENV NAME`` / ``rotate ENV NAME`` — one command each;
* ``bcdrill participants list ENV`` — who holds an active token (never the tokens);
* ``bcdrill watch RUN`` — live terminal view of a run until it ends.

Tokens are printed once, on stdout, and stored only as hashes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from drills.desk.participants import DEFAULT_BASE_URL, Card, ParticipantStore, find_participant
from engine.model.types import Environment

EnvArgument = Annotated[Path, typer.Argument(metavar="ENV", help="environment file with the participants")]
BaseUrlOption = Annotated[
    str, typer.Option("--base-url", help="the drill desk address participants reach (scheme://host:port)")
]
RunsOption = Annotated[Path | None, typer.Option("--runs", help="run store (default: bcdrill home)")]

participants_app = typer.Typer(help="Participants' personal drill-desk links: issue, revoke, rotate.")


def _environment(path: Path) -> Environment:
    from engine.spec.loader import load_environment

    return load_environment(path)


def _print_cards(cards: list[Card]) -> None:
    # The only place a token is ever shown: plain stdout, never a log.
    for card in cards:
        person = card.participant
        role = f", {person.role}" if person.role else ""
        typer.echo(f"{person.name} ({person.party}{role}) <{person.contact}>\n  {card.link}")


@participants_app.command("cards")
def cards(
    env: EnvArgument,
    base_url: BaseUrlOption = DEFAULT_BASE_URL,
    reissue: Annotated[
        bool, typer.Option("--reissue", help="replace every existing token (old links stop working)")
    ] = False,
) -> None:
    """Issue a personal link to each participant who has none (to all with --reissue)."""
    environment = _environment(env)
    store = ParticipantStore(environment.client)
    issued = store.issue(environment.participants, base_url, reissue=reissue)
    _print_cards(issued)
    skipped = {p.name for p in environment.participants} - {c.participant.name for c in issued}
    for name in sorted(skipped):
        typer.echo(f"{name}: already holds a link (use `participants rotate` to replace it)", err=True)
    typer.echo(f"{len(issued)} link(s) issued for {environment.client}; hashes in {store.path}", err=True)


@participants_app.command("revoke")
def revoke(env: EnvArgument, name: Annotated[str, typer.Argument(help="participant name")]) -> None:
    """Revoke one participant's link at once (running desks refuse it at the next request)."""
    environment = _environment(env)
    ParticipantStore(environment.client).revoke(name)
    typer.echo(f"revoked the drill-desk link of {name} ({environment.client})")


@participants_app.command("rotate")
def rotate(
    env: EnvArgument,
    name: Annotated[str, typer.Argument(help="participant name")],
    base_url: BaseUrlOption = DEFAULT_BASE_URL,
) -> None:
    """Give one participant a new link; the old one stops working."""
    environment = _environment(env)
    person = find_participant(environment.participants, name)
    _print_cards([ParticipantStore(environment.client).rotate(person, base_url)])


@participants_app.command("list")
def list_holders(env: EnvArgument) -> None:
    """Who holds an active link (tokens are never shown again)."""
    environment = _environment(env)
    table = Table("name", "party", "role", "link")
    for holder, active in ParticipantStore(environment.client).holders():
        table.add_row(holder.name, holder.party, holder.role, "active" if active else "revoked")
    Console(highlight=False).print(table)


def watch(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="run id, prefix, folder or 'latest'")],
    once: Annotated[bool, typer.Option("--once", help="print the current state and exit")] = False,
    runs: RunsOption = None,
) -> None:
    """Live view of a run: faults, probes, each side's steps against targets (exits at the end)."""
    from drills.desk.watch import watch as watch_run
    from engine.record.runstore import find_run

    watch_run(find_run(run_ref, runs), Console(highlight=False), once=once)


def register(app: typer.Typer) -> None:
    """Add ``participants`` and ``watch`` to ``app``."""
    app.add_typer(participants_app, name="participants")
    app.command("watch")(watch)
