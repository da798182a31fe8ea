"""What the benchmark and the chaos run both need: a free port, and a PostgreSQL admin
statement (to make and drop their own databases); and the benchmark's looks at the
backends of a database (whose CPU time it counts, and whose number can run out)."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import asyncpg
from sqlalchemy.engine import make_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def admin_sql(url: str, sql: str) -> None:
    """Run `sql` on the `postgres` database of the server that `url` names."""
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def backend_pids(url: str) -> list[int]:
    """The server processes of the connections to the database `url` names (seen from the
    `postgres` database, so that looking adds none)."""
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1", make_url(url).database
        )
    finally:
        await connection.close()
    return [int(row["pid"]) for row in rows]


async def peak_connections(url: str, stop: asyncio.Event, every: float = 1.0) -> tuple[int, int]:
    """Until `stop` is set, the most connections seen at once to the database `url` names;
    and the server's max_connections (once all are taken, connecting fails)."""
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
    peak = 0
    try:
        limit = int(await connection.fetchval("SHOW max_connections"))
        while not stop.is_set():
            count = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", make_url(url).database
            )
            peak = max(peak, int(count))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
    finally:
        await connection.close()
    return peak, limit
