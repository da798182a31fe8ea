"""The database handle: one engine, and the two kinds of transaction the product uses.

`Database.write()` opens a transaction that takes the write lock up front on SQLite
(`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes fails with
SQLITE_BUSY when another writer got there first, whatever the busy timeout.
`Database.read()` on SQLite runs its statements in autocommit mode: each sees the latest
committed state (WAL readers never block), and it saves the BEGIN and COMMIT round trips to
the driver's thread, which cost as much as the query itself. On PostgreSQL both are
ordinary READ COMMITTED transactions; races are settled by conditional updates and
constraints.

The caller (a request or a worker job) owns the transaction: services never commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

_WRITE_OPTION = "vps_write"


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves, for writes only (pysqlite's transaction handling is off).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(_WRITE_OPTION, False):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """Owns the engine and hands out transactions."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            database = make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine = create_async_engine(url, **kwargs)
        if self.dialect == "sqlite":
            _install_sqlite_hooks(self.engine)
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer = async_sessionmaker(
            self.engine.execution_options(**{_WRITE_OPTION: True}), expire_on_commit=False
        )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits when the block ends and rolls back on an exception."""
        async with self._writer() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
