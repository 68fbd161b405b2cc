"""The file-share canary's vocabulary, the data probe's ``canary: file`` source and the CLI's
choice of store: pure logic, no host (tests/test_systemd_host.py runs it on a real share)."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import typer
from typer.testing import CliRunner

from engine.onboard.canary_commands import register
from engine.onboard.share_canary import share_unit_name
from engine.probes.data import DataProbe
from engine.probes.file_canary import CANARY_FILE, canary_path, check_share, read_argv

SCHEMA = jsonschema.Draft7Validator(DataProbe.params_schema)


def test_the_probe_tails_the_canary_file_of_the_share() -> None:
    assert read_argv("/srv/share/", 50) == ["tail", "-n", "50", f"/srv/share/{CANARY_FILE}"]
    assert canary_path("/srv/staff files.d".replace(" ", "_")) == f"/srv/staff_files.d/{CANARY_FILE}"


@pytest.mark.parametrize(
    "share", ["srv/share", "/srv/../etc", "/srv/share; rm -rf /", "/srv/$(id)", "/", "", "/a b", "/srv/./x"]
)
def test_shares_that_are_not_plain_absolute_directories_are_refused(share: str) -> None:
    with pytest.raises(ValueError, match="not a plain absolute directory"):
        check_share(share)
    assert not SCHEMA.is_valid({"canary": "file", "share": share})


def test_each_canary_takes_its_own_store_and_only_that() -> None:
    assert SCHEMA.is_valid({"canary": "file", "share": "/srv/share", "window": 50})
    assert SCHEMA.is_valid({"canary": "postgresql", "database": "orders", "run_as": "postgres"})
    assert not SCHEMA.is_valid({"canary": "file"})
    assert not SCHEMA.is_valid({"canary": "file", "database": "orders"})
    assert not SCHEMA.is_valid({"canary": "file", "share": "/srv/share", "database": "orders"})
    assert not SCHEMA.is_valid({"canary": "file", "share": "/srv/share", "run_as": "nobody"})
    assert not SCHEMA.is_valid({"canary": "postgresql", "database": "orders", "share": "/srv/share"})
    assert not SCHEMA.is_valid({"share": "/srv/share", "argv": ["cat", "x"]})


def test_two_shares_never_share_a_writer_unit() -> None:
    first, second = share_unit_name("/srv/share"), share_unit_name("/srv/share_")
    assert first != second and first.startswith("bcdrill-canary-share-srv_share-")
    assert share_unit_name("/srv/share/") == first


@pytest.mark.parametrize("options", [[], ["--database", "orders", "--share", "/srv/share"]])
def test_canary_needs_exactly_one_store_and_exits_2(tmp_path: Path, options: list[str]) -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["canary", "status", str(tmp_path / "env.yaml"), "db1", *options])
    assert result.exit_code == 2, result.output
    assert "exactly one of --database DB or --share DIR" in " ".join(result.output.split())
