"""The database handle: one engine, and the two kinds of transaction the product uses.

On SQLite, statements run inline on the event loop's thread (`vps.db.sqlite_inline`), so
nothing may wait inside one. `Database.write()` therefore takes a process-wide lock (one
write transaction per process at a time, which SQLite would impose anyway) and then asks
for SQLite's write lock up front (`BEGIN IMMEDIATE`, since a deferred transaction that
reads and then writes fails with SQLITE_BUSY when another writer got there first) without
a busy timeout, retrying with short asynchronous sleeps while another process holds it.
`Database.read()` on SQLite runs its statements in autocommit mode: each sees the latest
committed state, and WAL readers never wait. On PostgreSQL both are ordinary READ
COMMITTED transactions; races are settled by conditional updates and constraints.

The caller (a request or a worker job) owns the transaction: services never commit.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from vps.db.reader import PostgresReader, RawReader, SqliteReader
from vps.db.repositories import events
from vps.db.sqlite_inline import InlineConnection, inline_connector

_WRITE_OPTION = "vps_write"
# How long a write waits for SQLite's write lock before giving up (the API answers 503).
WRITE_LOCK_TIMEOUT_SECONDS = 10.0
# Statements other than BEGIN IMMEDIATE wait at most this long on a lock (blocking the
# event loop): in WAL mode only rare events such as another process's WAL recovery make a
# reader or a writer that holds the write lock wait at all.
_INLINE_BUSY_TIMEOUT_MS = 1000
# Connections of the raw reader (PostgreSQL): its statements take well under a millisecond.
_READER_POOL_SIZE = 4


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={_INLINE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(_WRITE_OPTION, False):
            # Fail at once when another process holds the lock: Database.write() retries
            # without blocking the event loop. Straight to SQLite: these three statements
            # through SQLAlchemy would cost a quarter of a create.
            inline = connection.connection.driver_connection
            assert isinstance(inline, InlineConnection)
            inline.run("PRAGMA busy_timeout=0")
            try:
                inline.run("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                # As SQLAlchemy would have raised it (the caller tells busy from broken).
                raise OperationalError("BEGIN IMMEDIATE", None, error) from error
            finally:
                inline.run(f"PRAGMA busy_timeout={_INLINE_BUSY_TIMEOUT_MS}")


def _is_busy(error: OperationalError) -> bool:
    return getattr(error.orig, "sqlite_errorcode", None) in (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
    )


class Database:
    """Owns the engine and hands out transactions."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        kwargs: dict[str, Any] = {}
        self.reader: RawReader
        if self.dialect == "sqlite":
            database = make_url(url).database
            if not database or database == ":memory:" or database.startswith("file:"):
                # Each connection would see a database of its own.
                raise ValueError("SQLite needs a database file: sqlite:///path/to/vps.db")
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs.update(async_creator=inline_connector(database))
            self.reader = SqliteReader(database, _INLINE_BUSY_TIMEOUT_MS)
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
            self.reader = PostgresReader(url, max_size=_READER_POOL_SIZE)
        self.engine = create_async_engine(url, **kwargs)
        if self.dialect == "sqlite":
            _install_sqlite_hooks(self.engine)
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer = async_sessionmaker(
            self.engine.execution_options(**{_WRITE_OPTION: True}), expire_on_commit=False
        )
        # Created on first use, in the event loop that uses it.
        self._write_lock: asyncio.Lock | None = None
        # Called after a write that committed events (the process's event hub wakes up).
        self.event_listeners: list[Callable[[], None]] = []

    def _announce_events(self) -> None:
        for listener in self.event_listeners:
            listener()

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits when the block ends and rolls back on an exception.

        The events the transaction recorded are numbered and written just before it commits
        (`vps.db.repositories.events`), and announced to `event_listeners` after."""
        if not self.is_sqlite:
            async with self._writer() as session, session.begin():
                try:
                    yield session
                except BaseException:
                    events.discard(session)
                    raise
                announce = await events.flush(session)
            if announce:
                self._announce_events()
            return
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        deadline = time.monotonic() + WRITE_LOCK_TIMEOUT_SECONDS
        async with self._write_lock:
            session = await self._begin_sqlite_write(deadline)
            try:
                yield session
                announce = await events.flush(session)
            except BaseException:
                events.discard(session)
                await session.rollback()
                raise
            else:
                await session.commit()
            finally:
                await session.close()
        if announce:
            self._announce_events()

    async def _begin_sqlite_write(self, deadline: float) -> AsyncSession:
        """A session holding SQLite's write lock, waiting for it with backoff and jitter
        while another process holds it (the OperationalError once `deadline` passes)."""
        delay = 0.0002  # a write holds the lock for about a millisecond
        while True:
            session = self._writer()
            try:
                await session.begin()
                await session.connection()  # runs BEGIN IMMEDIATE
                return session
            except OperationalError as error:
                await session.close()
                if not _is_busy(error) or time.monotonic() >= deadline:
                    raise
            except BaseException:
                await session.close()
                raise
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.002)

    async def dispose(self) -> None:
        await self.reader.close()
        await self.engine.dispose()
