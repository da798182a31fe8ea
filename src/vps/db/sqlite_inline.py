"""SQLite for SQLAlchemy's asyncio engine, run inline on the event loop's thread.

aiosqlite hands every call to a thread of its own and wakes the event loop for the answer:
about 100 µs per statement here, ten times what SQLite takes to answer a lookup by primary
key from its page cache. These classes have the shape SQLAlchemy's aiosqlite dialect
expects of an aiosqlite connection (it is handed to it through `async_creator`), but run
each call at once and return a finished coroutine, so an ORM statement costs what SQLite
costs.

Running inline means a call must never wait, or it would stall every request of the
process. Readers never wait in WAL mode. Writers could (another process holding the write
lock), so `Database.write()` takes a process-wide lock first and asks for SQLite's write
lock without a busy timeout, retrying asynchronously: see `vps.db.engine`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any


class InlineCursor:
    """An aiosqlite-shaped cursor whose coroutines finish without suspending."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """An aiosqlite-shaped connection over a plain `sqlite3.Connection`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        # The adapter checks `_connection` to tell an open connection from a closed one.
        self._connection: sqlite3.Connection | None = connection

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            # The message SQLAlchemy's adapter recognises as a closed connection.
            raise ValueError("no active connection")
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def run(self, sql: str) -> None:
        """Run a statement that returns nothing, at once (PRAGMA, BEGIN)."""
        self._conn.execute(sql)

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def inline_connector(database: str | Path) -> Any:
    """The `async_creator` for `create_async_engine`: opens connections in autocommit mode
    (we issue BEGIN ourselves, for writes only)."""

    async def connect() -> InlineConnection:
        # check_same_thread is off because the pool may close a connection from a thread
        # of its own at shutdown; statements only ever run on the event loop's thread.
        connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        return InlineConnection(connection)

    return connect
