"""The ``bcdrill report`` command, added to the main Typer app through ``bcdrill.commands``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.errors import DrillError, RunNotFoundError
from engine.journal import JOURNAL_NAME
from reports.debrief import debrief_from_journal
from reports.debrief_writer import write_text_atomically
from reports.renderers import RENDERERS, render


def report(
    run_dir: Annotated[
        Path, typer.Argument(help="Run directory (holds journal.jsonl).", file_okay=False)
    ],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="md, html, json or junit.")
    ] = "md",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Score a run from its journal and print (or write) its debrief."""
    journal = run_dir / JOURNAL_NAME
    try:
        if not journal.is_file():
            raise RunNotFoundError(f"no run journal at {str(journal)!r}: is this a run directory?")
        text = render(debrief_from_journal(journal), fmt)
        if out is None:
            typer.echo(text, nl=False)
        else:
            write_text_atomically(out, text)
    except DrillError as exc:
        typer.echo(f"bcdrill report: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from exc


def register(app: typer.Typer) -> None:
    """Add ``report`` to ``app``."""
    app.command("report", help=f"Render a run's debrief ({', '.join(RENDERERS.names())}).")(
        report
    )
