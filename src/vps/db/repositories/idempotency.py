"""Remembered outcomes of POSTs sent with an idempotency key."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import IdempotencyKey
from vps.db.reader import PreparedQuery, RawReader, fetch_one
from vps.db.rows import execute, insert_row


class StoredResponse(NamedTuple):
    fingerprint: str
    method: str
    path: str
    status_code: int
    headers: str  # a JSON object
    body: bytes
    expires_at: datetime


_FIND = PreparedQuery(
    select(
        IdempotencyKey.fingerprint,
        IdempotencyKey.method,
        IdempotencyKey.path,
        IdempotencyKey.status_code,
        IdempotencyKey.response_headers,
        IdempotencyKey.response_body,
        IdempotencyKey.expires_at,
    ).where(
        IdempotencyKey.account_id == bindparam("account_id"),
        IdempotencyKey.key == bindparam("key"),
    )
)
_REMOVE = delete(IdempotencyKey).where(
    IdempotencyKey.account_id == bindparam("account_id"), IdempotencyKey.key == bindparam("key")
)
_TRY_LOCK = select(func.pg_try_advisory_xact_lock(func.hashtextextended(bindparam("name"), 0)))
# Expired keys, oldest first, a bounded batch at a time (one sweep never holds the write lock
# for long, however many keys piled up).
_EXPIRED_BATCH = (
    select(IdempotencyKey.id)
    .where(IdempotencyKey.expires_at <= bindparam("now"))
    .order_by(IdempotencyKey.expires_at)
    .limit(bindparam("limit"))
)


def _stored(row: Sequence[Any]) -> StoredResponse:
    stored = StoredResponse._make(row)
    # asyncpg hands back memoryview-free bytes, SQLite bytes; make sure of it either way.
    return stored._replace(body=bytes(stored.body))


async def find(reader: RawReader, account_id: int, key: str) -> StoredResponse | None:
    """The committed outcome remembered for the account's key (expired or not)."""
    row = await fetch_one(reader, _FIND, {"account_id": account_id, "key": key})
    return None if row is None else _stored(row)


async def find_in(session: AsyncSession, account_id: int, key: str) -> StoredResponse | None:
    """The same, read in the caller's transaction."""
    result = await execute(session, _FIND.statement, {"account_id": account_id, "key": key})
    row = result.first()
    return None if row is None else _stored(row)


async def lock_key(session: AsyncSession, account_id: int, key: str) -> bool:
    """Take the key for this transaction, without waiting: False while another transaction
    holds it (a request with the same key in flight).

    On PostgreSQL this is a transaction-scoped advisory lock on a hash of the account and the
    key (a hash collision can only make a request wait for a retry, never mix two keys up:
    the stored row is looked up by the key itself). On SQLite the write transaction already
    excludes every other writer, so the key is always free.
    """
    if (await session.connection()).dialect.name != "postgresql":
        return True
    result = await execute(session, _TRY_LOCK, {"name": f"idempotency:{account_id}:{key}"})
    return bool(result.scalar_one())


async def forget(session: AsyncSession, account_id: int, key: str) -> None:
    """Remove an expired outcome, so the key can be used afresh."""
    await execute(session, _REMOVE, {"account_id": account_id, "key": key})


async def remember(session: AsyncSession, row: IdempotencyKey) -> None:
    await insert_row(session, row)


async def reap(session: AsyncSession, now: datetime, limit: int) -> int:
    """Delete up to `limit` expired keys; returns how many went."""
    ids = (await execute(session, _EXPIRED_BATCH, {"now": now, "limit": limit})).scalars().all()
    if ids:
        await execute(session, delete(IdempotencyKey).where(IdempotencyKey.id.in_(ids)))
    return len(ids)
