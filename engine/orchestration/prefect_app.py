"""The ASGI app of bcdrill's own Prefect servers: Prefect's app, with SQLite writes that wait.

Prefect's server on SQLite opens most write transactions as ``BEGIN DEFERRED``: the transaction
reads first and asks for the write lock at its first write. When another connection committed
in between (the server's own task-run recorder and event persister write all the time while
a drill runs), SQLite cannot upgrade the stale read and fails at once with "database is
locked", whatever the busy timeout. The API answers 503, and Prefect's client retries after its
exponential back-off: 2 s. On Prefect's stock app, 11 of 12 flow runs of three tasks each,
created back to back, waited so (``tests/test_prefect_app.py`` runs them on this app).

Here every transaction the server begins takes the write lock when it begins
(``BEGIN IMMEDIATE``, what Prefect already does for its ``with_for_update`` transactions), so
a writer waits its turn under SQLite's busy timeout instead of failing. Prefect's own hook for
this is its database-configuration dependency; PostgreSQL is left as Prefect configures it.
Run by uvicorn as a factory: ``engine.orchestration.prefect_app:create_app``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

FACTORY = "engine.orchestration.prefect_app:create_app"


def create_app() -> FastAPI:
    """Prefect's server app, its SQLite transactions begun ``IMMEDIATE``."""
    from prefect.server.api.server import create_app as prefect_app
    from prefect.server.database.dependencies import MODELS_DEPENDENCIES
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    url = PREFECT_API_DATABASE_CONNECTION_URL.value()
    if url and url.startswith("sqlite"):
        MODELS_DEPENDENCIES["database_config"] = _sqlite_writes_wait()(connection_url=url)
    return prefect_app()


def _sqlite_writes_wait() -> type[Any]:
    from prefect.server.database.configurations import AioSqliteConfiguration

    class SqliteWritesWait(AioSqliteConfiguration):
        """Prefect's SQLite configuration; each transaction takes the write lock as it begins."""

        @asynccontextmanager
        async def begin_transaction(
            self, session: Any, with_for_update: bool = False
        ) -> AsyncGenerator[Any, None]:
            async with super().begin_transaction(session, with_for_update=True) as transaction:
                yield transaction

    return SqliteWritesWait


__all__ = ["FACTORY", "create_app"]
