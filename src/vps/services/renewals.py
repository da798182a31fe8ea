"""Billing periods after the first: renewals, suspensions, resumptions, power-offs.

A server is paid for one period at a time, in advance (`vps.domain.billing`). When its paid
period ends, a worker charges the next one and moves `paid_until` on by one period, in one
transaction. When the account cannot pay, the server is suspended: it keeps its machine,
disks and addresses, shows `suspended`, refuses power actions, and a worker powers its
machine off (level-based: `power_off_pending` stays set until a stop succeeded). A top-up
that covers a suspended server's next period charges it and starts the server again, on a
period that begins then (time spent suspended is not billed).

Each write is a compare-and-set on the period number, and each charge has the unique
reference of its period (`server:{id}:period:{n}`), so a period is charged at most once
however many workers run. Like every service these take the caller's session and never
commit; a savepoint undoes a half-made renewal when the charge is refused.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import Server
from vps.db.repositories.billing import BillingRepository
from vps.db.repositories.servers import ServerRepository
from vps.domain.billing import PAYMENT_REQUIRED, BillingTerms
from vps.domain.errors import InsufficientCredits
from vps.domain.money import format_cents
from vps.domain.states import (
    RENEWED_STATUSES,
    RESUMED_STATUS,
    SUSPENDABLE_STATUSES,
    ServerStatus,
)
from vps.services import billing, events


class Renewal(StrEnum):
    RENEWED = "renewed"
    SUSPENDED = "suspended"
    # Not due any more, renewed by someone else, or unpaid but still busy: nothing written.
    SKIPPED = "skipped"


def _period_description(server: Server, period: int, resumed: bool = False) -> str:
    suffix = ", resumed after a top-up" if resumed else ""
    return f"Period {period} of server {server.id} ({server.plan.name}){suffix}"


def _suspension_message(period: int, error: InsufficientCredits) -> str:
    return (
        f"Suspended: billing period {period} costs {format_cents(error.required_cents)} and "
        f"the account has {format_cents(error.available_cents)}. "
        "Top up the account's credits to resume the server."
    )


async def due_for_renewal(session: AsyncSession, now: datetime, limit: int) -> list[int]:
    """Servers whose paid period has ended and whose next one the worker should charge."""
    return await BillingRepository(session).due(RENEWED_STATUSES, now, limit)


async def renew(
    session: AsyncSession, server_id: int, now: datetime, terms: BillingTerms
) -> Renewal:
    """Charge a due server's next period and move `paid_until` on, or suspend the server
    when its account cannot pay. The new period follows the old one without a gap, so a late
    renewal (no worker ran for a while) bills exactly the time the server had."""
    server = await ServerRepository(session).get(server_id)
    if (
        server is None
        or server.deleted_at is not None
        or ServerStatus(server.status) not in RENEWED_STATUSES
        or server.paid_until > now
    ):
        return Renewal.SKIPPED
    period = server.billing_period
    price = billing.monthly_price(server.plan, server.backups_enabled)
    repository = BillingRepository(session)
    try:
        async with session.begin_nested():
            # The compare-and-set comes first: on PostgreSQL it locks the row, so a second
            # worker renewing the same server waits, then finds the period moved and skips.
            if not await repository.advance(
                server.id,
                period,
                RENEWED_STATUSES,
                now,
                paid_from=server.paid_until,
                paid_until=server.paid_until + terms.period,
            ):
                return Renewal.SKIPPED
            await billing.charge(
                session,
                server.account_id,
                price,
                now,
                server_id=server.id,
                reference=billing.period_reference(server.id, period + 1),
                description=_period_description(server, period + 1),
            )
    except InsufficientCredits as error:
        message = _suspension_message(period + 1, error)
        if await repository.suspend(server.id, period, SUSPENDABLE_STATUSES, now, message):
            events.server_status(
                session,
                account_id=server.account_id,
                server_id=server.id,
                status=ServerStatus.SUSPENDED.value,
                previous=server.status,
                now=now,
                error=(PAYMENT_REQUIRED, message),
            )
            return Renewal.SUSPENDED
        return Renewal.SKIPPED
    return Renewal.RENEWED


async def resume_unpaid(
    session: AsyncSession, account_id: int, now: datetime, terms: BillingTerms
) -> list[int]:
    """Charge and restart every server of the account suspended for lack of credits that the
    balance now pays for, oldest first (one it cannot pay for is passed over, so a cheaper
    one after it may still resume). Returns the ids of the servers resumed."""
    repository = BillingRepository(session)
    await repository.lock_account(account_id)
    resumed: list[int] = []
    for server in await repository.unpaid(account_id):
        period = server.billing_period
        try:
            async with session.begin_nested():
                if not await repository.resume(server.id, period, now, now + terms.period):
                    continue
                await billing.charge(
                    session,
                    server.account_id,
                    billing.monthly_price(server.plan, server.backups_enabled),
                    now,
                    server_id=server.id,
                    reference=billing.period_reference(server.id, period + 1),
                    description=_period_description(server, period + 1, resumed=True),
                )
        except InsufficientCredits:
            continue
        # After the savepoint: a resume it rolled back announces nothing.
        events.server_status(
            session,
            account_id=server.account_id,
            server_id=server.id,
            status=RESUMED_STATUS.value,
            previous=ServerStatus.SUSPENDED.value,
            now=now,
        )
        resumed.append(server.id)
    if resumed:
        await ServerRepository(session).announce_work()
    return resumed


async def accounts_with_unpaid_servers(session: AsyncSession, limit: int) -> list[int]:
    return await BillingRepository(session).accounts_with_unpaid(limit)


async def claim_power_offs(
    session: AsyncSession, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[int]:
    """Take the lease of suspended servers whose machine has not been powered off yet.

    The lease keeps a resumed server's start from running before this power-off is done.
    """
    candidates = await BillingRepository(session).power_off_candidates(now, limit)
    servers = ServerRepository(session)
    return await servers.claim(candidates, owner, now, now + lease)


async def powered_off(session: AsyncSession, server_id: int, owner: str) -> bool:
    """Record that the machine is off and hand the lease back; False when the server was
    resumed or deleted meanwhile (the caller then just releases it)."""
    return await BillingRepository(session).powered_off(server_id, owner)


async def power_off_later(
    session: AsyncSession, server_id: int, owner: str, retry_at: datetime
) -> None:
    """The stop failed: hand the server back, to be tried again from `retry_at`."""
    await ServerRepository(session).release(server_id, owner, {"retry_at": retry_at})
