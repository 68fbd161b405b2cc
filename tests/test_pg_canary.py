"""The PostgreSQL canary's vocabulary and the data probe's canary source: pure logic, no database."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import typer
from typer.testing import CliRunner

from engine.onboard.canary_commands import register
from engine.probes.data import DataProbe, parse_records
from engine.probes.pg_canary import TABLE, check_database, psql_argv, read_sql

SCHEMA = jsonschema.Draft7Validator(DataProbe.params_schema)


def test_psql_runs_as_the_database_user_through_sudo_with_every_word_separate() -> None:
    argv = psql_argv("orders", read_sql(50), run_as="postgres")
    assert argv[:5] == ["sudo", "-n", "-u", "postgres", "--"]
    assert argv[argv.index("-d") + 1] == "orders" and argv[-1] == read_sql(50)
    assert psql_argv("orders", "SELECT 1", run_as=None)[0] == "psql"  # sudo: false → the login user


@pytest.mark.parametrize("name", ["orders; DROP TABLE x", "-orders", "a b", "o'rders", "x" * 64, ""])
def test_names_that_are_not_plain_identifiers_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a plain name"):
        check_database(name)
    assert not SCHEMA.is_valid({"canary": "postgresql", "database": name})


def test_the_read_query_names_the_canary_table_and_only_a_number() -> None:
    assert TABLE in read_sql(7) and "LIMIT 7)" in read_sql(7)
    # psql's "seq epoch" lines are the ledger the probe already measures RPO from.
    records = parse_records("41 1795827148.525123\n42 1795827148.775000\n", 300)
    assert [(r.seq, r.ts) for r in records] == [(41, 1795827148.525123), (42, 1795827148.775)]


def test_the_probe_takes_exactly_one_source_and_the_canary_needs_its_database() -> None:
    assert SCHEMA.is_valid({"canary": "postgresql", "database": "orders", "run_as": "postgres"})
    assert not SCHEMA.is_valid({"canary": "postgresql"})
    assert not SCHEMA.is_valid({"canary": "mysql", "database": "orders"})
    assert not SCHEMA.is_valid({"database": "orders", "argv": ["cat", "x"]})
    assert not SCHEMA.is_valid({"canary": "postgresql", "database": "orders", "url": "http://127.0.0.1/"})


def test_canary_start_names_an_unknown_host_and_exits_2(tmp_path: Path) -> None:
    env = tmp_path / "env.yaml"
    env.write_text(
        "format: environment/v1\nname: t\nkind: test\nclient: C\ntargets: {db: {hosts: [db1]}}\nssh_hosts:\n"
        "  db1: {address: 127.0.0.1, user: drill, agent: true, sudo: true, host_key: 'ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIJ1zBZ9v0ZCo8U6R2cYr1bSPeQzOR0Qq5Ug6vF6s8Wq7'}\n"
    )
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["canary", "start", str(env), "db9", "--database", "orders"])
    assert result.exit_code == 2, result.output
    assert "'db9' is not an SSH host" in " ".join(result.output.split())
