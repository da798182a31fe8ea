"""The read model: what the hot read paths need, as flat rows instead of ORM objects.

A `ServerView` holds every column a server's API body shows (its plan, operating system,
location and latest usage joined in). The API's GET and list read them through the
prepared queries below; the write paths read the same statement in their transaction
(`server_in`), or build the view from what they just wrote (a create), so every server
body in the API comes from one presenter.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import and_, bindparam, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import ApiToken, Location, OperatingSystem, Plan, Server, ServerUsage
from vps.db.reader import AnySelect, PreparedQuery, RawReader, fetch_one
from vps.db.rows import execute
from vps.db.types import storable_id, storable_text


class TokenView(NamedTuple):
    id: int
    account_id: int
    read_only: bool
    expires_at: datetime | None
    revoked_at: datetime | None


class ServerView(NamedTuple):
    id: int
    name: str
    hostname: str | None
    status: str
    ipv4_address: str | None
    ipv6_address: str | None
    location: str
    plan_id: int
    plan_name: str
    plan_vcpus: int
    plan_memory_mb: int
    plan_storage_gb: int
    plan_bandwidth_gb: int
    os_id: int
    os_name: str
    backups_enabled: bool
    # Null until a worker has sampled the server's usage.
    cpu_percent: float | None
    memory_used_mb: int | None
    disk_used_gb: int | None
    bandwidth_used_gb: int | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    # Bumped by every write to the server: its ETag.
    version: int


_TOKEN_COLUMNS = (
    ApiToken.id,
    ApiToken.account_id,
    ApiToken.read_only,
    ApiToken.expires_at,
    ApiToken.revoked_at,
)
assert len(_TOKEN_COLUMNS) == len(TokenView._fields)
_TOKEN_BY_HASH = PreparedQuery(
    select(*_TOKEN_COLUMNS).where(ApiToken.token_hash == bindparam("token_hash"))
)

_SERVER_COLUMNS = (
    Server.id,
    Server.name,
    Server.hostname,
    Server.status,
    Server.ipv4_address,
    Server.ipv6_address,
    Location.code,
    Plan.id,
    Plan.name,
    Plan.vcpus,
    Plan.memory_mb,
    Plan.storage_gb,
    Plan.bandwidth_gb,
    OperatingSystem.id,
    OperatingSystem.name,
    Server.backups_enabled,
    ServerUsage.cpu_percent,
    ServerUsage.memory_used_mb,
    ServerUsage.disk_used_gb,
    ServerUsage.bandwidth_used_gb,
    Server.error_code,
    Server.error_message,
    Server.created_at,
    Server.updated_at,
    Server.version,
)
assert len(_SERVER_COLUMNS) == len(ServerView._fields)

_JOINED = (
    Server.__table__.join(Plan, Plan.id == Server.plan_id)
    .join(OperatingSystem, OperatingSystem.id == Server.os_id)
    .join(Location, Location.id == Server.location_id)
    .outerjoin(ServerUsage, ServerUsage.server_id == Server.id)
)
_VISIBLE = and_(Server.account_id == bindparam("account_id"), Server.deleted_at.is_(None))

_SERVER_BY_ID = PreparedQuery(
    select(*_SERVER_COLUMNS).select_from(_JOINED).where(Server.id == bindparam("id"), _VISIBLE)
)
# The token and, when its account has it, the server: a GET in one round trip.
_TOKEN_WITH_SERVER = PreparedQuery(
    select(*_TOKEN_COLUMNS, *_SERVER_COLUMNS)
    .select_from(
        ApiToken.__table__.outerjoin(
            _JOINED,
            and_(
                Server.account_id == ApiToken.account_id,
                Server.id == bindparam("id"),
                Server.deleted_at.is_(None),
            ),
        )
    )
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def _filtered(statement: AnySelect, by_status: bool, by_location: bool) -> AnySelect:
    if by_status:
        statement = statement.where(Server.status == bindparam("status"))
    if by_location:
        statement = statement.where(Location.code == bindparam("location"))
    return statement


def _page_with_total(by_status: bool, by_location: bool) -> AnySelect:
    """The total of the matching servers joined to one page of them: one statement, so one
    snapshot (a status that changes meanwhile cannot make the count disagree with the
    page), and one row with an empty page past the end. The count uses the account's
    index, so it grows with the account's servers, never with the table's."""
    total = _filtered(
        select(func.count().label("total"))
        .select_from(
            Server.__table__.join(Location, Location.id == Server.location_id)
            if by_location
            else Server.__table__
        )
        .where(_VISIBLE),
        by_status,
        by_location,
    ).subquery("total")
    page = (
        _filtered(
            select(*_SERVER_COLUMNS).select_from(_JOINED).where(_VISIBLE), by_status, by_location
        )
        .order_by(Server.id)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
        .subquery("page")
    )
    return (
        select(total.c.total, *page.c)
        .select_from(total.outerjoin(page, true()))
        .order_by(page.c.id)  # the server's (the plan's and the system's are id_1, id_2)
    )


_PAGES = {
    (by_status, by_location): PreparedQuery(_page_with_total(by_status, by_location))
    for by_status in (False, True)
    for by_location in (False, True)
}

_LOCATION_EXISTS = PreparedQuery(select(Location.id).where(Location.code == bindparam("code")))


async def token_by_hash(reader: RawReader, token_hash: str) -> TokenView | None:
    row = await fetch_one(reader, _TOKEN_BY_HASH, {"token_hash": token_hash})
    return None if row is None else TokenView._make(row)


async def token_with_server(
    reader: RawReader, token_hash: str, server_id: int
) -> tuple[TokenView, ServerView | None] | None:
    """The token with this hash (None if there is none) and the server with this id if the
    token's account has it (deleted servers excluded), in one query."""
    if not storable_id(server_id):
        token = await token_by_hash(reader, token_hash)
        return None if token is None else (token, None)
    row = await fetch_one(reader, _TOKEN_WITH_SERVER, {"token_hash": token_hash, "id": server_id})
    if row is None:
        return None
    width = len(TokenView._fields)
    found = None if row[width] is None else ServerView._make(row[width:])
    return TokenView._make(row[:width]), found


async def server_in(session: AsyncSession, account_id: int, server_id: int) -> ServerView | None:
    """The account's server as the read model shows it, read in the caller's transaction
    (so it sees the caller's own writes), with the same statement as the raw reader's."""
    if not storable_id(server_id):
        return None
    result = await execute(
        session, _SERVER_BY_ID.statement, {"id": server_id, "account_id": account_id}
    )
    row = result.first()
    return None if row is None else ServerView._make(row)


async def server_page(
    reader: RawReader,
    account_id: int,
    *,
    status: str | None,
    location: str | None,
    offset: int,
    limit: int,
) -> tuple[int, list[ServerView]]:
    """The total of the account's servers that match, and one page of them by id, from one
    statement (see `_page_with_total`)."""
    params = {
        "account_id": account_id,
        "status": status,
        "location": location,
        "limit": limit,
        "offset": offset,
    }
    rows = await reader.fetch_all(_PAGES[status is not None, location is not None], params)
    # Past the end (or nothing): one row, the total beside an empty page.
    page = [ServerView._make(row[1:]) for row in rows if row[1] is not None]
    return int(rows[0][0]), page


async def location_exists(reader: RawReader, code: str) -> bool:
    if not storable_text(code, 63):
        return False
    return await fetch_one(reader, _LOCATION_EXISTS, {"code": code}) is not None
