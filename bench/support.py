"""What the benchmark and the chaos run both need: a free port, and a PostgreSQL admin
statement (to make and drop their own databases)."""

from __future__ import annotations

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
