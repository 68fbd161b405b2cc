"""The ``bcdrill report`` command, added to the main Typer app through ``bcdrill.commands``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.errors import DrillError
from engine.journal import JOURNAL_NAME
from engine.runstore import find_run
from reports.debrief import debrief_from_journal
from reports.debrief_writer import write_text_atomically
from reports.renderers import RENDERERS, render


def report(
    run_ref: Annotated[
        str,
        typer.Argument(metavar="RUN", help="Run folder, run id, unique id prefix, or 'latest'."),
    ],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="md, html, json or junit.")
    ] = "md",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")
    ] = None,
    runs: Annotated[
        Path | None, typer.Option("--runs", help="Run store to look in (default: bcdrill home).")
    ] = None,
) -> None:
    """Score a run from its journal and print (or write) its debrief."""
    try:
        run_dir = find_run(run_ref, runs)
        text = render(debrief_from_journal(run_dir / JOURNAL_NAME), fmt)
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
