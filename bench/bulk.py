"""Seeding a million servers in seconds: INSERT ... SELECT over a recursive CTE of numbers,
written with SQLAlchemy Core on the tables of `vps.db.models` (so the columns, and how each
database stores a timestamp or a boolean, are the service's own).

The rows are those of servers the API made and a worker built: status `active`, every NOT
NULL column set as `create_server` and the worker set it, valid plan, system and location
ids from the catalog the migrations seeded, a paid first period of the service's default
length, and a usage sample (the read paths join `server_usage`). Not made, because no read
path looks at them: the create's action and ledger rows, and `ip_allocations` (the pools of
the default catalog hold 245 IPv4 addresses per location, not a million). So that a server
created later in such a database cannot be given an address a seeded server shows, the
seeded addresses come from ranges outside the pools (10.0.0.0/8 and fd00::/8).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    String,
    case,
    cast,
    column,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from vps.config import Settings
from vps.db.models import Account, Location, OperatingSystem, Plan, Server, ServerUsage
from vps.db.types import UTCDateTime

# The queried account holds this many servers whatever the size of the database (the
# average of 1,000,000 servers over 10,000 accounts), so that a page or a count costs what
# it costs because of the size of the tables, not of the account.
SERVERS_PER_QUERIED_ACCOUNT = 100

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


@dataclass(frozen=True)
class Seeded:
    servers: int
    accounts: int
    seconds: float
    # Seconds per step (accounts, servers, usage, and on PostgreSQL the vacuum).
    steps: dict[str, float]
    # The queried account's servers: the ids the wrk scripts hit.
    ids: list[int]


class _Steps(dict[str, float]):
    """Seconds each step took, told to stderr as it ends (a 1M seed takes a while)."""

    def __init__(self) -> None:
        super().__init__()
        self._last = time.monotonic()

    def done(self, name: str) -> None:
        now = time.monotonic()
        self[name] = round(now - self._last, 1)
        self._last = now
        print(f"    seeded {name} in {self[name]} s", file=sys.stderr)


def _numbers(connection: AsyncConnection, count: int, name: str) -> Any:
    """1..count as the column `i` of a FROM clause: PostgreSQL's generate_series (a quarter
    faster there), a recursive CTE on SQLite."""
    if connection.dialect.name == "postgresql":
        return (
            func.generate_series(1, count)
            .table_valued(column("i", Integer))
            .render_derived(name=name)
        )
    start = select(literal_column("1", Integer).label("i")).cte(name, recursive=True)
    return start.union_all(select((start.c.i + 1).label("i")).where(start.c.i < count))


def _pick(values: list[int], index: Any) -> Any:
    """values[index % len(values)], in SQL."""
    return case(dict(enumerate(values)), value=index % len(values))


def _text(*parts: Any) -> Any:
    """The concatenation of string literals and integer expressions, in SQL."""
    result: Any = None
    for part in parts:
        piece = literal(part, String) if isinstance(part, str) else cast(part, String)
        result = piece if result is None else result + piece
    return result


async def _available_ids(connection: AsyncConnection, table: Any) -> list[int]:
    rows = await connection.execute(select(table.id).where(table.available).order_by(table.id))
    ids = list(rows.scalars())
    if not ids:
        raise SystemExit(f"the catalog has no available {table.__tablename__}")
    return ids


async def _insert_accounts(
    connection: AsyncConnection, first_id: int, count: int, now: datetime
) -> None:
    n = _numbers(connection, count, "account_numbers")
    await connection.execute(
        insert(Account).from_select(
            ["id", "name", "balance_cents", "created_at"],
            select(
                n.c.i + (first_id - 1),
                _text("tenant-", n.c.i),
                literal(10_000),
                literal(now, UTCDateTime()),
            ),
            include_defaults=False,
        )
    )


async def _insert_servers(
    connection: AsyncConnection,
    count: int,
    queried_account: int,
    others: range,
    now: datetime,
) -> None:
    """Servers 1..count. Every `count / SERVERS_PER_QUERIED_ACCOUNT`-th is the queried
    account's, so its servers are spread over the table as a real account's would be; the
    others go round-robin to the accounts `others`."""
    plans = await _available_ids(connection, Plan)
    systems = await _available_ids(connection, OperatingSystem)
    locations = await _available_ids(connection, Location)
    stride = max(count // SERVERS_PER_QUERIED_ACCOUNT, 1)
    period = timedelta(seconds=Settings.model_fields["billing_period_seconds"].default)
    i = _numbers(connection, count, "server_numbers").c.i
    stamp = literal(now, UTCDateTime())
    columns: dict[str, Any] = {
        "id": i,
        "account_id": case(
            ((i - 1) % stride == 0, literal(queried_account)),
            else_=others.start + (i - 1) % len(others),
        ),
        "name": _text("web-", i),
        "status": literal("active"),
        "plan_id": _pick(plans, i),
        "os_id": _pick(systems, i // 7),
        "location_id": _pick(locations, i // 3),
        "backups_enabled": i % 5 == 0,
        "ipv4_address": _text("10.", i // 65536 % 256, ".", i // 256 % 256, ".", i % 256),
        "ipv6_address": _text("fd00::", i // 10000 + 1, ":", i % 10000),
        "created_at": stamp,
        "updated_at": stamp,
        "attempts": literal(0),
        "paid_from": stamp,
        "paid_until": literal(now + period, UTCDateTime()),
        "billing_period": literal(1),
        "power_off_pending": literal(False),
        "version": literal(1),
    }
    await connection.execute(
        insert(Server).from_select(list(columns), select(*columns.values()), include_defaults=False)
    )


async def _insert_usage(connection: AsyncConnection, count: int, now: datetime) -> None:
    """A plausible sample for servers 1..count, as a worker records once a build is done."""
    i = _numbers(connection, count, "usage_numbers").c.i
    columns: dict[str, Any] = {
        "server_id": i,
        "cpu_percent": cast(i % 100, Float),
        "memory_used_mb": 256 + i % 700,
        "disk_used_gb": 3 + i % 20,
        "bandwidth_used_gb": i % 500,
        "sampled_at": literal(now, UTCDateTime()),
    }
    await connection.execute(
        insert(ServerUsage).from_select(
            list(columns), select(*columns.values()), include_defaults=False
        )
    )


async def seed(url: str, queried_account: int, servers: int, accounts: int) -> Seeded:
    """Fill a migrated database that holds only `queried_account`: `accounts - 1` more
    accounts (ids after it), and `servers` servers spread over all of them."""
    if accounts < 2:
        raise ValueError("the servers are spread over the queried account and others")
    backend = make_url(url).get_backend_name()
    engine = create_async_engine(make_url(url).set(drivername=_ASYNC_DRIVERS[backend]))
    started, steps = time.monotonic(), _Steps()
    now = datetime.now(UTC)
    others = range(queried_account + 1, queried_account + accounts)
    try:
        async with engine.connect() as connection:
            if backend == "sqlite":
                # A rollback journal of new pages is next to nothing, where WAL would write
                # every page twice; the service turns WAL back on as it connects.
                await connection.exec_driver_sql("PRAGMA journal_mode=DELETE")
                await connection.exec_driver_sql("PRAGMA cache_size=-262144")
                await connection.commit()
            async with connection.begin():
                if backend == "postgresql":
                    await _skip_foreign_key_checks(connection)
                await _insert_accounts(connection, others.start, len(others), now)
                steps.done(f"{len(others):,} accounts")
                await _insert_servers(connection, servers, queried_account, others, now)
                steps.done(f"{servers:,} servers")
                await _insert_usage(connection, servers, now)
                steps.done(f"{servers:,} usage samples")
            if backend == "postgresql":
                await _after_postgresql_load(connection)
                steps.done("sequences, VACUUM ANALYZE")
            else:
                await connection.exec_driver_sql("PRAGMA journal_mode=WAL")
                await connection.commit()
            found = await connection.execute(
                select(Server.id).where(Server.account_id == queried_account).order_by(Server.id)
            )
            ids = list(found.scalars())
            await connection.commit()
    finally:
        await engine.dispose()
    return Seeded(servers, accounts, round(time.monotonic() - started, 1), dict(steps), ids)


async def _skip_foreign_key_checks(connection: AsyncConnection) -> None:
    """Checking the references of a million rows, which were read from the tables they
    point at, would take two thirds of the time of the load. Only a superuser may skip the
    checks (they are PostgreSQL's internal triggers); anyone else waits for them."""
    try:
        async with connection.begin_nested():
            await connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
    except DBAPIError:
        print("    (not a superuser: foreign keys are checked row by row)", file=sys.stderr)


async def _after_postgresql_load(connection: AsyncConnection) -> None:
    # Explicit ids do not advance the sequences; a later insert must not collide.
    for table in ("accounts", "servers"):
        await connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )
        )
    await connection.commit()
    # Autovacuum would analyze the tables (and set the visibility map that index-only scans
    # need) soon after such a load; measuring before it did would measure a passing state.
    autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
    await autocommit.exec_driver_sql("VACUUM ANALYZE")
