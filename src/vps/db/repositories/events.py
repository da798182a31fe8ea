"""Server events: buffered by a transaction, numbered and written when it commits.

Why not an autoincrement id: on PostgreSQL a sequence hands out ids in the order
transactions *start* writing, not the order they commit, so a reader that has seen id 11
can later find id 10 committed, and a stream resumed after 11 would never deliver it.
Instead each transaction keeps its events in the session (`record`) and, just before it
commits (`flush`, called by `Database.write`), takes the next ids from the one-row
`event_log` with an UPDATE whose row lock it holds until its commit: ids are given in
commit order, with no gaps, and the lock is held only for the commit itself. On SQLite the
write lock serialises transactions anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import EventLog, ServerEvent
from vps.db.rows import execute, oldest_ids_before

# The PostgreSQL notification channel on which committed events are announced to every
# API process (so a stream served by one sees a change made by a worker elsewhere).
EVENTS_CHANNEL = "vps_events"
_PENDING = "vps_pending_events"

_TAKE_IDS = (
    update(EventLog)
    .where(EventLog.id == 1)
    .values(last_id=EventLog.last_id + bindparam("count"))
    .returning(EventLog.last_id)
)
_INSERT = insert(ServerEvent)
_NOTIFY = text(f"NOTIFY {EVENTS_CHANNEL}")
_COLUMNS = (
    ServerEvent.id,
    ServerEvent.account_id,
    ServerEvent.server_id,
    ServerEvent.type,
    ServerEvent.data,
)


@dataclass(frozen=True, slots=True)
class PendingEvent:
    account_id: int
    server_id: int
    type: str
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    account_id: int
    server_id: int
    type: str
    # The event's JSON as streamed, id included.
    data: str


def record(session: AsyncSession, event: PendingEvent) -> None:
    """Keep the event until the transaction commits (nothing if it rolls back)."""
    session.info.setdefault(_PENDING, []).append(event)


async def flush(session: AsyncSession) -> bool:
    """Number and write the transaction's events; the caller commits right after.

    Returns whether there were any (so the caller can announce them once committed)."""
    pending: list[PendingEvent] = session.info.pop(_PENDING, [])
    if not pending:
        return False
    last = (await execute(session, _TAKE_IDS, {"count": len(pending)})).scalar_one()
    first = last - len(pending) + 1
    rows = []
    for offset, event in enumerate(pending):
        event_id = first + offset
        document = {"id": event_id, "type": event.type, **event.payload}
        rows.append(
            {
                "id": event_id,
                "account_id": event.account_id,
                "server_id": event.server_id,
                "type": event.type,
                "data": orjson.dumps(document).decode(),
                "created_at": event.created_at,
            }
        )
    await execute(session, _INSERT, rows)  # type: ignore[arg-type]
    if session.get_bind().dialect.name == "postgresql":
        await execute(session, _NOTIFY)  # delivered at commit
    return True


def discard(session: AsyncSession) -> None:
    """Forget the buffered events of a transaction that rolls back."""
    session.info.pop(_PENDING, None)


@dataclass(frozen=True, slots=True)
class LogHead:
    last_id: int
    pruned_through: int


async def head(session: AsyncSession) -> LogHead:
    query = select(EventLog.last_id, EventLog.pruned_through).where(EventLog.id == 1)
    row = (await session.execute(query)).one()
    return LogHead(int(row[0]), int(row[1]))


async def after(
    session: AsyncSession,
    cursor: int,
    limit: int,
    *,
    account_id: int | None = None,
    server_id: int | None = None,
) -> list[StoredEvent]:
    """Events with an id above `cursor`, oldest first (optionally of one account/server)."""
    query = select(*_COLUMNS).where(ServerEvent.id > cursor)
    if account_id is not None:
        query = query.where(ServerEvent.account_id == account_id)
    if server_id is not None:
        query = query.where(ServerEvent.server_id == server_id)
    result = await session.execute(query.order_by(ServerEvent.id).limit(limit))
    return [StoredEvent(*row) for row in result]


async def prune(session: AsyncSession, before: datetime, limit: int) -> int:
    """Delete up to `limit` of the oldest events written before `before`; returns how many.

    Ids grow with time, so the deleted ones are a prefix: `pruned_through` records its end.
    """
    doomed = await oldest_ids_before(session, ServerEvent.id, ServerEvent.created_at, before, limit)
    if not doomed:
        return 0
    await execute(session, delete(ServerEvent).where(ServerEvent.id <= doomed[-1]))
    # Every remaining id is above the last prune, so this only ever moves forward.
    await execute(
        session, update(EventLog).where(EventLog.id == 1).values(pruned_through=doomed[-1])
    )
    return len(doomed)
