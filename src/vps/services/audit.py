"""The audit log: every mutation an account's tokens asked for, and how it ended."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import AuditEvent
from vps.db.repositories import audit
from vps.services.principal import Principal


@dataclass(frozen=True)
class Mutation:
    """What was asked: the action (e.g. `server.reboot`), its target and the request."""

    action: str
    target_type: str
    target_id: int | None
    method: str
    path: str
    request_id: str

    def about(self, created_id: int | None) -> Mutation:
        """The same mutation, naming the resource a create made."""
        return self if created_id is None else replace(self, target_id=created_id)


@dataclass(frozen=True)
class AuditPage:
    total: int
    events: list[AuditEvent]


async def record(
    session: AsyncSession,
    principal: Principal,
    mutation: Mutation,
    now: datetime,
    *,
    status_code: int,
    error_code: str | None = None,
) -> None:
    """Write one event in the caller's transaction (a success commits with its change)."""
    await audit.record(
        session,
        AuditEvent(
            account_id=principal.account_id,
            token_id=principal.token_id,
            action=mutation.action,
            target_type=mutation.target_type,
            target_id=mutation.target_id,
            method=mutation.method,
            path=mutation.path[:255],
            status_code=status_code,
            error_code=error_code,
            request_id=mutation.request_id[:64],
            created_at=now,
        ),
    )


async def list_events(
    session: AsyncSession, principal: Principal, offset: int, limit: int
) -> AuditPage:
    total, events = await audit.page(session, principal.account_id, offset, limit)
    return AuditPage(total, events)


# Audit events deleted per transaction by the worker's retention sweep.
PRUNE_BATCH = 1000


async def prune(session: AsyncSession, before: datetime) -> int:
    """Delete one batch of audit events written before `before`; returns how many went."""
    return await audit.prune(session, before, PRUNE_BATCH)
