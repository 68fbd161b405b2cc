"""``bcdrill improvements list|assign|close|reopen --client X``, added through ``bcdrill.commands``."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from engine.errors import DrillError
from reports.debrief_writer import ImprovementStore
from reports.improvements import apply_change, plan_rows

improvements_app = typer.Typer(
    help="The client's improvement plan: who does what by when, and what became of it.", no_args_is_help=True
)
ClientOption = Annotated[str, typer.Option("--client", help="Client name, as in the debriefs.")]
ItemArgument = Annotated[str, typer.Argument(metavar="ITEM", help="RUN#FINDING, e.g. 20260302T0900…#F3")]
ByOption = Annotated[str, typer.Option("--by", help="Who makes the change.")]
DEFAULT_BY = os.environ.get("USER", "")


def _fail(exc: DrillError) -> typer.Exit:
    typer.echo(f"bcdrill improvements: {exc}", err=True)
    return typer.Exit(exc.exit_code)


@improvements_app.command("list")
def list_items(
    client: ClientOption,
    show_all: Annotated[bool, typer.Option("--all", help="Also closed and re-tested items.")] = False,
) -> None:
    """The client's improvement items: owner, due date, state, last note."""
    try:
        rows = plan_rows(ImprovementStore(client).plans())
    except DrillError as exc:
        raise _fail(exc) from exc
    table = Table(title=f"Improvement plan — {client}", title_justify="left")
    for column in ("item", "drill", "owner", "due by", "state", "action", "last change"):
        table.add_column(column)
    for row in rows:
        if not show_all and row.state in ("closed", "re-tested"):
            continue
        item, last = row.item, (row.item.log[-1] if row.item.log else None)
        change = "" if last is None else f"{last.change} by {last.by} {last.at[:10]}: {last.note}".strip(": ")
        table.add_row(
            row.ref,
            row.drill[:10],
            Text(f"{item.owner or '—'} ({item.owner_party})"),
            item.due_by or f"+{item.due_in_days}d",
            row.state,
            Text(item.action),
            Text(change),
        )
    Console(highlight=False, width=None if os.isatty(1) else 200).print(table)


def _change(client: str, item: str, change: str, by: str, note: str, owner: str | None = None) -> None:
    try:
        ImprovementStore(client).update(lambda plans: apply_change(plans, item, change, by, note, owner))
    except DrillError as exc:
        raise _fail(exc) from exc
    typer.echo(f"{item}: {change}{f' to {owner}' if owner else ''} by {by}")


@improvements_app.command("assign")
def assign(
    client: ClientOption,
    item: ItemArgument,
    owner: Annotated[str, typer.Option("--owner", help="The named person who owns the action.")],
    by: ByOption = DEFAULT_BY,
    note: Annotated[str, typer.Option("--note", help="Why.")] = "",
) -> None:
    """Give an item a named owner."""
    _change(client, item, "assign", by, note, owner)


@improvements_app.command("close")
def close(
    client: ClientOption,
    item: ItemArgument,
    note: Annotated[str, typer.Option("--note", help="What was done.")],
    by: ByOption = DEFAULT_BY,
) -> None:
    """Close an item (the next drill shows it as closed)."""
    _change(client, item, "close", by, note)


@improvements_app.command("reopen")
def reopen(
    client: ClientOption,
    item: ItemArgument,
    note: Annotated[str, typer.Option("--note", help="Why it is open again.")],
    by: ByOption = DEFAULT_BY,
) -> None:
    """Reopen a closed item (the next drill re-tests it)."""
    _change(client, item, "reopen", by, note)


def register(app: typer.Typer) -> None:
    """Add ``improvements`` to ``app``."""
    app.add_typer(improvements_app, name="improvements")
