"""The per-account audit log of mutations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import AuditEvent
from vps.db.rows import execute, insert_row, oldest_ids_before


async def record(session: AsyncSession, event: AuditEvent) -> None:
    await insert_row(session, event)


async def page(
    session: AsyncSession, account_id: int, offset: int, limit: int
) -> tuple[int, list[AuditEvent]]:
    """The account's events, newest first."""
    total = await session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.account_id == account_id)
    )
    result = await session.execute(
        select(AuditEvent)
        .where(AuditEvent.account_id == account_id)
        .order_by(AuditEvent.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return int(total or 0), list(result.scalars())


async def prune(session: AsyncSession, before: datetime, limit: int) -> int:
    """Delete up to `limit` of the oldest events written before `before`; returns how many."""
    doomed = await oldest_ids_before(session, AuditEvent.id, AuditEvent.created_at, before, limit)
    if doomed:
        await execute(session, delete(AuditEvent).where(AuditEvent.id <= doomed[-1]))
    return len(doomed)
