"""Statements compiled once, run on the driver's own connection: the hot read paths.

Building a SQLAlchemy statement, compiling it (even from the cache), running it through a
session and turning rows into ORM objects costs about a millisecond of CPU per request,
fifty times what SQLite takes to answer a lookup by primary key. A `PreparedQuery` is built
from the table definitions once; each dialect compiles it once into SQL text with
positional parameters; a `RawReader` runs that text on a plain driver connection and
returns plain tuples with the Python types the ORM would have given.

Readers see committed data only (SQLite in autocommit mode, PostgreSQL outside any
transaction) and never write. A database that cannot be reached raises SQLAlchemy's
`OperationalError`, as the ORM paths do, so callers handle one kind of outage.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from sqlalchemy import Boolean, DateTime, Select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import OperationalError

from vps.db.types import UTCDateTime

Row = Sequence[Any]
AnySelect = Select[*tuple[Any, ...]]
_Converter = Callable[[Any], Any] | None


def _sqlite_timestamp(value: str | None) -> datetime | None:
    # Stored as naive UTC text; parsing it with its offset is 4x faster than .replace().
    return None if value is None else datetime.fromisoformat(value + "+00:00")


def _sqlite_bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _sqlite_converter(column_type: Any) -> _Converter:
    """SQLite hands back text for timestamps and integers for booleans."""
    if isinstance(column_type, UTCDateTime | DateTime):
        return _sqlite_timestamp
    if isinstance(column_type, Boolean):
        return _sqlite_bool
    return None


class PreparedQuery:
    """A SELECT with named bind parameters, compiled once per dialect."""

    def __init__(self, statement: AnySelect) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            converters: tuple[tuple[int, Callable[[Any], Any]], ...] = ()
            if dialect.name == "sqlite":
                converters = tuple(
                    (index, convert)
                    for index, column in enumerate(self.statement.selected_columns)
                    if (convert := _sqlite_converter(column.type)) is not None
                )
            found = _Compiled(
                str(compiled), tuple(compiled.positiontup or ()), compiled.params, converters
            )
            self._compiled[dialect.name] = found
        return found


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters in positional order
    defaults: Mapping[str, Any]  # values the statement carries itself (e.g. OFFSET 0)
    converters: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column, converter) pairs

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] if name in params else self.defaults[name] for name in self.names]


class RawReader(Protocol):
    async def fetch_all(self, query: PreparedQuery, params: Mapping[str, Any]) -> list[Row]: ...

    async def close(self) -> None: ...


async def fetch_one(
    reader: RawReader, query: PreparedQuery, params: Mapping[str, Any]
) -> Row | None:
    rows = await reader.fetch_all(query, params)
    return rows[0] if rows else None


class SqliteReader:
    """One read-only connection per process, used inline on the event loop's thread (WAL
    readers never wait for writers)."""

    dialect: Dialect = sqlite.dialect(paramstyle="qmark")

    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread is off only so that close() may come from any thread.
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
        connection.execute("PRAGMA query_only=ON")
        self._connection = connection
        return connection

    async def fetch_all(self, query: PreparedQuery, params: Mapping[str, Any]) -> list[Row]:
        compiled = query.compiled(self.dialect)
        arguments = compiled.arguments(params)
        try:
            connection = self._connection or self._connect()
            rows: list[Any] = connection.execute(compiled.sql, arguments).fetchall()
        except sqlite3.OperationalError as error:  # locked, unreadable, disk I/O
            raise OperationalError(compiled.sql, arguments, error) from error
        converters = compiled.converters
        if converters:
            for position, row in enumerate(rows):
                values = list(row)
                for index, convert in converters:
                    values[index] = convert(values[index])
                rows[position] = values
        return rows

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """Nothing to reset: the reader only runs SELECTs outside transactions (asyncpg's
    default reset costs one more round trip to the server per query)."""


class PostgresReader:
    """A small asyncpg pool of its own (asyncpg returns aware datetimes and booleans): each
    query holds a connection for a few hundred microseconds, so a few connections serve a
    process's whole read load."""

    dialect: Dialect = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]

    def __init__(self, url: str, max_size: int) -> None:
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn, min_size=1, max_size=self._max_size, reset=_keep_session
                )
        return self._pool

    async def fetch_all(self, query: PreparedQuery, params: Mapping[str, Any]) -> list[Row]:
        compiled = query.compiled(self.dialect)
        arguments = compiled.arguments(params)
        try:
            pool = self._pool or await self._get_pool()
            async with pool.acquire() as connection:
                records: list[Row] = await connection.fetch(compiled.sql, *arguments)
        except (
            OSError,
            asyncpg.InterfaceError,
            asyncpg.PostgresConnectionError,
            asyncpg.TooManyConnectionsError,
            asyncpg.CannotConnectNowError,
        ) as error:
            raise OperationalError(compiled.sql, arguments, error) from error
        return records

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
