"""The PostgreSQL canary: one table, the SQL that writes and reads it, and how ``psql`` is run.

A small writer (``bcdrill canary start``) adds one row to :data:`TABLE` every few seconds
beside the client's own tables; the ``data`` probe reads the newest rows back as
``<seq> <unix time>`` lines — the same ledger format it measures the recovery point from. The
rows written after the last backup are the ones a restore loses.

``psql`` runs on the database host over SSH: as the ``run_as`` user (``postgres``) through
``sudo -n -u`` when the host entry says ``sudo: true``, else as the login user. Every word is
a separate argument (the SSH transport quotes each one); the SQL itself holds no input but
the validated ``window`` number.
"""

from __future__ import annotations

import re

__all__ = [
    "CREATE_SQL",
    "DATABASE_PATTERN",
    "INSERT_SQL",
    "NEWEST_SQL",
    "PSQL",
    "TABLE",
    "check_database",
    "psql_argv",
    "read_sql",
]

TABLE = "bcdrill_canary"  # spelled out in the SQL below (plain strings, no formatting)
#: Database and role names the canary accepts (plain identifiers, never quoted SQL).
DATABASE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
CREATE_SQL = (
    "CREATE TABLE IF NOT EXISTS bcdrill_canary (seq bigint PRIMARY KEY, written_at timestamptz NOT NULL)"
)
# The next number follows the newest surviving row: after a restore the writer carries on
# from what the backup kept, as the client's application would.
INSERT_SQL = (
    "INSERT INTO bcdrill_canary (seq, written_at) "
    "SELECT coalesce(max(seq), 0) + 1, clock_timestamp() FROM bcdrill_canary"
)
#: The newest row's number and age in seconds, for ``bcdrill canary status``.
NEWEST_SQL = (
    "SELECT seq, extract(epoch FROM clock_timestamp() - written_at) FROM bcdrill_canary "
    "ORDER BY seq DESC LIMIT 1"
)
#: psql printing unaligned ``a b`` rows, no psqlrc, stopping at the first error.
PSQL: tuple[str, ...] = ("psql", "-X", "-A", "-t", "-q", "-F", " ", "-v", "ON_ERROR_STOP=1")


def read_sql(window: int) -> str:
    """The newest ``window`` rows, oldest first, as ``seq`` and unix time (microseconds)."""
    limit = int(window)  # a number, never text from outside
    newest = f"SELECT seq, written_at FROM bcdrill_canary ORDER BY seq DESC LIMIT {limit}"  # noqa: S608
    return f"SELECT seq, extract(epoch FROM written_at) FROM ({newest}) AS newest ORDER BY seq"  # noqa: S608


def check_database(name: str, what: str = "database") -> str:
    """``name`` when it is a plain identifier; ValueError naming ``what`` otherwise."""
    if not re.fullmatch(DATABASE_PATTERN, name):
        raise ValueError(f"{what} {name!r} is not a plain name (letters, digits, _; at most 63)")
    return name


def psql_argv(database: str, sql: str, *, run_as: str | None) -> list[str]:
    """``psql`` printing unaligned ``a b`` rows of ``sql`` on ``database`` (as ``run_as`` via sudo)."""
    argv = [*PSQL, "-d", check_database(database), "-c", sql]
    if run_as is None:
        return argv
    return ["sudo", "-n", "-u", check_database(run_as, "user"), "--", *argv]
