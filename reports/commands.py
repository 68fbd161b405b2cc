"""``bcdrill report``, ``bcdrill trend`` and ``bcdrill serve``, added through ``bcdrill.commands``."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from engine.errors import DrillError, InputError
from engine.record.runstore import find_run
from reports.debrief.audience import AUDIENCES
from reports.debrief.model import Audience
from reports.debrief.trend import (
    RUN_CLASSES,
    TREND_FORMATS,
    build_trend,
    trend_html,
    trend_json,
    trend_pdf,
    trend_table,
)
from reports.debrief_writer import debrief_of_run, summaries, write_bytes_atomically
from reports.i18n import DEFAULT_TZ, LANGUAGES, translator
from reports.renderers import RENDERERS, RenderOptions, get_format, render

RunsOption = Annotated[
    Path | None, typer.Option("--runs", help="Run store to look in (default: bcdrill home).")
]
LangOption = Annotated[str, typer.Option("--lang", help=f"Report language: {', '.join(LANGUAGES)}.")]
TzOption = Annotated[
    str, typer.Option("--tz", help="Show dates in this IANA time zone (e.g. Asia/Shanghai).")
]
OutOption = Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")]


def _fail(command: str, exc: DrillError) -> typer.Exit:
    typer.echo(f"bcdrill {command}: {exc}", err=True)
    return typer.Exit(exc.exit_code)


def _audience(value: str) -> Audience:
    if value == "client":
        return "client"
    if value == "internal":
        return "internal"
    raise InputError(f"unknown audience {value!r} (known: {', '.join(AUDIENCES)})")


def _emit(content: str | bytes, out: Path | None) -> None:
    """Write to ``out``, or to stdout (binary output refuses a terminal)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    if out is not None:
        write_bytes_atomically(out, data)
    elif isinstance(content, str):
        typer.echo(content, nl=False)
    elif sys.stdout.isatty():
        raise InputError("PDF output is binary: give --out FILE or redirect stdout")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def report(
    run_ref: Annotated[
        str,
        typer.Argument(metavar="RUN", help="Run folder, run id, unique id prefix, or 'latest'."),
    ],
    fmt: Annotated[str, typer.Option("--format", "-f", help="md, html, pdf, json or junit.")] = "md",
    lang: LangOption = "en",
    tz: TzOption = DEFAULT_TZ,
    audience: Annotated[
        str,
        typer.Option("--audience", help="client (leaves out MSP-internal notes) or internal."),
    ] = "internal",
    out: OutOption = None,
    runs: RunsOption = None,
) -> None:
    """Score a run from its journal and print (or write) its debrief."""
    try:
        options = RenderOptions(lang, tz, _audience(audience))
        get_format(fmt)  # an unknown format is a usage error before any work
        run_dir = find_run(run_ref, runs)
        _emit(render(debrief_of_run(run_dir, runs), fmt, options), out)
    except DrillError as exc:
        raise _fail("report", exc) from exc


def trend(
    client: Annotated[str, typer.Option("--client", help="Client name, as in the debriefs.")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table, html, pdf (one-page dashboard) or json.")
    ] = "table",
    playbook: Annotated[
        str | None, typer.Option("--playbook", help="Only drills of this playbook id.")
    ] = None,
    lang: LangOption = "en",
    tz: TzOption = DEFAULT_TZ,
    out: OutOption = None,
    runs: RunsOption = None,
    run_class: Annotated[
        str,
        typer.Option(
            "--class",
            help="drill (completed official drills: the client's record), rehearsal, ci or all.",
        ),
    ] = "drill",
) -> None:
    """Show a client's drills over time: scores, recovery times, person-hours and cost lost."""
    try:
        if fmt not in TREND_FORMATS:
            raise InputError(f"unknown trend format {fmt!r} (known: {', '.join(TREND_FORMATS)})")
        if run_class not in RUN_CLASSES:
            raise InputError(f"unknown run class {run_class!r} (known: {', '.join(RUN_CLASSES)})")
        t = translator(lang, tz)
        result = build_trend(summaries(runs), client, playbook, run_class)
        if fmt == "table" and out is None:
            width = None if sys.stdout.isatty() else 160  # piped: do not squeeze the columns
            Console(highlight=False, width=width).print(trend_table(result, t))
        elif fmt == "table":
            console = Console(record=True, width=160, file=io.StringIO())
            console.print(trend_table(result, t))
            _emit(console.export_text(), out)
        else:
            if fmt == "pdf":
                _emit(trend_pdf(result, t), out)
            else:
                _emit(trend_html(result, t) if fmt == "html" else trend_json(result), out)
    except DrillError as exc:
        raise _fail("trend", exc) from exc


serve_app = typer.Typer(
    help="A read-only web page of a client's drills and scorecards, behind a per-client token.",
    invoke_without_command=True,
)


@serve_app.callback()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8780,
    lang: LangOption = "en",
    tz: TzOption = DEFAULT_TZ,
    runs: RunsOption = None,
    behind_tls: Annotated[
        bool,
        typer.Option(
            "--behind-tls",
            help="A TLS-terminating reverse proxy stands in front: cookies get Secure "
            "(also BCDRILL_BEHIND_TLS=1).",
        ),
    ] = False,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="Address of a reverse proxy whose X-Forwarded-Proto/-For headers are believed; "
            "repeatable (also BCDRILL_TRUSTED_PROXIES).",
        ),
    ] = None,
) -> None:
    """Serve the pages (clients open the link from ``bcdrill serve token CLIENT``)."""
    if ctx.invoked_subcommand is not None:
        return
    from engine.web import ProxySettings
    from reports.portal.app import serve as run_server

    try:
        proxy = ProxySettings.from_env(True if behind_tls else None, trusted_proxy or ())
        run_server(host, port, runs, lang, tz, proxy)
    except DrillError as exc:
        raise _fail("serve", exc) from exc


@serve_app.command("token")
def serve_token(
    client: Annotated[str, typer.Argument(help="Client name, as in the debriefs.")],
    base_url: Annotated[
        str, typer.Option("--base-url", help="The address clients reach the server at.")
    ] = "http://127.0.0.1:8780",
    revoke: Annotated[bool, typer.Option("--revoke", help="Revoke the client's token instead.")] = False,
    runs: RunsOption = None,
) -> None:
    """Issue a new access link for CLIENT (the old one stops working); shown once."""
    from reports.portal.tokens import ServeTokens

    try:
        store = ServeTokens()
        if revoke:
            done = store.revoke(client)
            typer.echo(f"{'revoked' if done else 'no token for'} {client}", err=True)
            return
        token = store.issue(client)
    except DrillError as exc:
        raise _fail("serve token", exc) from exc
    if not any(s.client == client for s in summaries(runs)):
        typer.echo(f"note: no debriefed drill of {client!r} in the run store yet", err=True)
    # The only place a token is ever shown: plain stdout, never a log.
    typer.echo(f"{base_url.rstrip('/')}/access/{token}")
    typer.echo(f"access link for {client}; only its hash is stored in {store.path}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``report``, ``trend`` and ``serve`` to ``app``."""
    app.command("report", help=f"Render a run's debrief ({', '.join(RENDERERS.names())}).")(report)
    app.command("trend", help="A client's drills over time, the value dashboard (table, html, pdf, json).")(
        trend
    )
    app.add_typer(serve_app, name="serve")
