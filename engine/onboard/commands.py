"""``bcdrill env init|keyscan|check``, added through the ``bcdrill.commands`` entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from engine.errors import DrillError, InputError

__all__ = ["register"]

out = Console(highlight=False, emoji=False)
err = Console(stderr=True, highlight=False, emoji=False)

env_app = typer.Typer(help="Onboard a client's staging systems: skeleton, host keys, connectivity check.")
_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def _fail(command: str, exc: DrillError) -> typer.Exit:
    err.print(f"bcdrill env {command}: {exc}", markup=False)
    return typer.Exit(exc.exit_code)


@env_app.command("init")
def init_cmd(
    name: Annotated[
        str, typer.Option(help="environment name (lowercase, digits, - and _)")
    ] = "client-staging",
    client: Annotated[str, typer.Option(help="the client's name as reports show it")] = "Client Ltd",
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="write here (refuses to overwrite) instead of stdout")
    ] = None,
) -> None:
    """Print (or write) an annotated environment file to start from; it validates as it stands."""
    from engine.onboard.skeleton import environment_skeleton

    try:
        text = environment_skeleton(name, client)
        if out_file is not None:
            if out_file.exists():
                raise InputError(f"{out_file} exists: not overwriting it (choose another --out)")
            out_file.write_text(text, encoding="utf-8")
    except DrillError as exc:
        raise _fail("init", exc) from exc
    if out_file is None:
        typer.echo(text, nl=False)
    else:
        err.print(f"wrote {out_file}; next: bcdrill env keyscan ADDRESS for each SSH host", markup=False)


@env_app.command("keyscan")
def keyscan_cmd(
    target: Annotated[str, typer.Argument(metavar="HOST[:PORT]", help="the SSH server to ask")],
    expect: Annotated[
        str | None,
        typer.Option(help="the SHA256:… fingerprint the host's owner read on its console; refuse others"),
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the server", min=0.1, max=120)] = 5.0,
) -> None:
    """Fetch a host's SSH keys (handshake only, no login) and print the host_key: line to pin.

    Nothing is trusted here: compare the fingerprint with the one read on the host itself
    (``ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub``), or pass it as ``--expect``.
    """
    from engine.onboard.keyscan import parse_host_port, scan_host_key

    try:
        address, port = parse_host_port(target)
        keys = scan_host_key(address, port, timeout)
    except DrillError as exc:
        raise _fail("keyscan", exc) from exc
    if expect is not None:
        matching = [k for k in keys if k.fingerprint == expect.strip()]
        if not matching:
            offered = ", ".join(f"{k.key_type} {k.fingerprint}" for k in keys)
            err.print(
                f"bcdrill env keyscan: {address}:{port} offered {offered}, not {expect!r}: "
                "refusing to print a pin (someone may be in the middle, or the fingerprint is wrong)",
                markup=False,
            )
            raise typer.Exit(4)
        keys = matching
    for key in keys:
        err.print(f"{address}:{port} offers {key.key_type} {key.fingerprint}", markup=False)
    if expect is None:
        err.print(
            "Not verified: compare this fingerprint with the host's own "
            "(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on its console) before pasting.",
            markup=False,
        )
    else:
        err.print(f"matches the expected fingerprint {expect.strip()}", markup=False)
    best = keys[0]
    err.print("Paste under the host's entry in ssh_hosts:", markup=False)
    out.print(f'host_key: "{best.pin}"', markup=False, soft_wrap=True)
    err.print(f"or, for a known_hosts file: {best.known_hosts_line}", markup=False, soft_wrap=True)


@env_app.command("check")
def check_cmd(
    env: Annotated[Path, typer.Argument(metavar="ENV", help="environment file")],
) -> None:
    """Connect to every system of an environment (read-only) and show what works; exit 4 if anything fails."""
    from engine.onboard.envcheck import check_environment
    from engine.spec.loader import load_environment

    try:
        environment = load_environment(env)
        rows = check_environment(environment)
    except DrillError as exc:
        for problem in getattr(exc, "problems", ()):
            err.print(str(problem), markup=False)
        raise _fail("check", exc) from exc
    table = Table("system", "check", "result", "detail", title=f"environment {environment.name}")
    for row in rows:
        table.add_row(row.subject, row.check, f"[{_STYLE[row.status]}]{row.status}[/]", _plain(row.detail))
    out.print(table)
    failed = sum(row.status == "fail" for row in rows)
    if failed:
        err.print(f"{failed} check(s) failed: fix them before a drill (exit 4)", markup=False)
        raise typer.Exit(4)


def _plain(text: str) -> str:
    """Text shown literally inside a rich table cell (no markup interpretation)."""
    from rich.markup import escape

    return escape(text)


def register(app: typer.Typer) -> None:
    """Add the ``env`` command group to the ``bcdrill`` application."""
    app.add_typer(env_app, name="env")
