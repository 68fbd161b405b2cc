"""``bcdrill inject RUN`` — a controller sends an ad-hoc inject into a live drill.

Added through the ``bcdrill.commands`` entry point. The inject goes to the run's script
(:func:`engine.run.injects.write_adhoc_inject`), which journals ``inject.sent`` and shows it
on the recipients' desk pages; the exercise mark is added in the message's language.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["inject", "register"]


def inject(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="run id, prefix, folder or 'latest'")],
    to: Annotated[str, typer.Option("--to", help="a party (msp, client), a role or a participant's name")],
    text: Annotated[str, typer.Option("--text", help="the message, without the exercise mark")],
    language: Annotated[str, typer.Option("--lang", help="language of the text: en or zh-CN")] = "en",
    sender: Annotated[str, typer.Option("--from", help="the simulated sender")] = "controller",
    runs: Annotated[Path | None, typer.Option("--runs", help="run store (default: bcdrill home)")] = None,
) -> None:
    """Send an ad-hoc inject to participants of a live drill (shown on their desk pages)."""
    from engine.record.runstore import find_run
    from engine.run.injects import write_adhoc_inject

    inject_id = write_adhoc_inject(find_run(run_ref, runs), to, text, sender=sender, language=language)
    typer.echo(f"inject {inject_id} queued for {to}")


def register(app: typer.Typer) -> None:
    """Add ``inject`` to ``app``."""
    app.command("inject")(inject)
