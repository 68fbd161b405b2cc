"""``bcdrill keys init|show`` and ``bcdrill verify``, added through ``bcdrill.commands``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.home import runs_dir
from engine.record.runstore import find_run
from engine.record.signing import (
    KEY_ENV,
    EvidenceError,
    init_key,
    keys_dir,
    load_signing_key,
    verify_run,
)

keys_app = typer.Typer(
    help="The MSP's Ed25519 key that signs every run's journal head.", no_args_is_help=True
)


@keys_app.command("init")
def keys_init() -> None:
    """Make a new signing key and make it the active one (older public keys stay, so old runs verify)."""
    fp, public = init_key()
    typer.echo(f"new signing key {fp}")
    typer.echo(f"public key (give it to clients for `bcdrill verify --pubkey`): {public}")
    typer.echo(f"private key: {keys_dir()} (mode 0600; or set {KEY_ENV}=file:PATH|env:VAR)", err=True)


@keys_app.command("show")
def keys_show() -> None:
    """Print the fingerprint of the key new runs are signed with (exit 4 when there is none)."""
    key = load_signing_key()
    if key is None:
        typer.echo(f"no signing key: run `bcdrill keys init` or set {KEY_ENV}", err=True)
        raise typer.Exit(4)
    typer.echo(key.fingerprint)


def verify(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="run id, prefix, folder or 'latest'")],
    pubkey: Annotated[
        Path | None,
        typer.Option("--pubkey", help="the MSP's public key (PEM); default: keys in bcdrill home"),
    ] = None,
    runs: Annotated[Path | None, typer.Option("--runs", help="run store")] = None,
) -> None:
    """Check a run's hash chain and MSP signature: exit 0, or 4 naming the first bad record."""
    run_dir = find_run(run_ref, runs or runs_dir())
    try:
        verified = verify_run(run_dir, pubkey)
    except EvidenceError as exc:
        typer.echo(f"NOT VERIFIED: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    v = verified
    typer.echo(
        f"verified: run {v.run_id} ({v.run_class}, {v.outcome}, score {v.score}); "
        f"journal head {v.head_hash} over {v.records} records, signed by {v.key_fingerprint}"
    )


def register(app: typer.Typer) -> None:
    """Add ``keys`` and ``verify`` to ``app``."""
    app.add_typer(keys_app, name="keys")
    app.command("verify")(verify)
