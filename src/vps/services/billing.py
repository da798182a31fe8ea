"""Credits: every change of a balance goes with one ledger entry, in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import CreditTransaction
from vps.db.repositories.accounts import AccountRepository, LedgerRepository
from vps.domain.errors import InsufficientCredits


class Priced(Protocol):
    """A plan's prices (a `Plan`, or the catalog's `Offer` of a create)."""

    @property
    def monthly_price_cents(self) -> int: ...

    @property
    def backups_monthly_price_cents(self) -> int: ...


def monthly_price(plan: Priced, backups_enabled: bool) -> int:
    return plan.monthly_price_cents + (plan.backups_monthly_price_cents if backups_enabled else 0)


async def top_up(
    session: AsyncSession, account_id: int, cents: int, now: datetime, description: str
) -> int:
    balance = await AccountRepository(session).credit(account_id, cents)
    await LedgerRepository(session).record(
        CreditTransaction(
            account_id=account_id,
            kind="topup",
            amount_cents=cents,
            balance_after_cents=balance,
            description=description,
            created_at=now,
        )
    )
    return balance


async def charge(
    session: AsyncSession,
    account_id: int,
    cents: int,
    now: datetime,
    *,
    server_id: int | None,
    reference: str,
    description: str,
) -> int:
    """Debit the account or raise InsufficientCredits; nothing is written when it raises."""
    accounts = AccountRepository(session)
    balance = await accounts.debit(account_id, cents)
    if balance is None:
        raise InsufficientCredits(cents, await accounts.balance(account_id))
    await LedgerRepository(session).record(
        CreditTransaction(
            account_id=account_id,
            kind="charge",
            amount_cents=-cents,
            balance_after_cents=balance,
            server_id=server_id,
            reference=reference,
            description=description,
            created_at=now,
        )
    )
    return balance


async def refund_once(
    session: AsyncSession,
    account_id: int,
    cents: int,
    now: datetime,
    *,
    server_id: int,
    reference: str,
    description: str,
) -> bool:
    """Credit back `cents` unless a refund with this reference exists (the unique index on
    `reference` makes "exactly once" hold even if two workers race)."""
    ledger = LedgerRepository(session)
    if cents <= 0 or await ledger.has_reference(reference):
        return False
    balance = await AccountRepository(session).credit(account_id, cents)
    await ledger.record(
        CreditTransaction(
            account_id=account_id,
            kind="refund",
            amount_cents=cents,
            balance_after_cents=balance,
            server_id=server_id,
            reference=reference,
            description=description,
            created_at=now,
        )
    )
    return True


def create_charge_reference(server_id: int) -> str:
    return f"server:{server_id}:create"


def create_refund_reference(server_id: int) -> str:
    return f"server:{server_id}:create-refund"


def period_reference(server_id: int, period: int) -> str:
    """The unique reference of a server's charge for its `period`-th billing period.

    The first period is the create charge; each later one is charged once (by a renewal or
    by a top-up that resumes the server), whatever the number of workers.
    """
    if period == 1:
        return create_charge_reference(server_id)
    return f"server:{server_id}:period:{period}"


def delete_refund_reference(server_id: int) -> str:
    return f"server:{server_id}:delete-refund"


async def charged_for_period(session: AsyncSession, server_id: int, period: int) -> int:
    """Cents the server's `period`-th period was charged (0 when it was not)."""
    entry = await LedgerRepository(session).by_reference(period_reference(server_id, period))
    return -entry.amount_cents if entry is not None and entry.amount_cents < 0 else 0
