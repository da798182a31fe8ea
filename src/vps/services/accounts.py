"""Operator use cases: accounts, credits, tokens, catalog (driven by the admin CLI)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import (
    Account,
    ApiToken,
    CreditTransaction,
    IpPool,
    Location,
    OperatingSystem,
    Plan,
)
from vps.db.repositories.accounts import AccountRepository, LedgerRepository, TokenRepository
from vps.db.repositories.catalog import CatalogRepository
from vps.domain.billing import BillingTerms
from vps.domain.errors import Conflict, InvalidParameters, NotFound
from vps.domain.validation import account_name_problem
from vps.services import auth, billing, renewals


@dataclass(frozen=True)
class AccountSummary:
    account: Account
    ledger: list[CreditTransaction]


async def create_account(
    session: AsyncSession, name: str, credits_cents: int, now: datetime
) -> Account:
    if why := account_name_problem(name):
        raise InvalidParameters.single("name", f"Account name {why}.")
    accounts = AccountRepository(session)
    if await accounts.by_name(name) is not None:
        raise Conflict(f"An account named {name!r} already exists.")
    account = await accounts.add(name, now)
    if credits_cents > 0:
        await billing.top_up(session, account.id, credits_cents, now, "Initial credits")
        await session.refresh(account)
    return account


async def account_by_name(session: AsyncSession, name: str) -> Account:
    account = await AccountRepository(session).by_name(name)
    if account is None:
        raise NotFound(f"No account named {name!r}.")
    return account


@dataclass(frozen=True)
class CreditsAdded:
    balance_cents: int
    # Servers suspended for lack of credits that this top-up paid for and started again.
    resumed_server_ids: list[int]


async def add_credits(
    session: AsyncSession, name: str, cents: int, now: datetime, terms: BillingTerms
) -> CreditsAdded:
    """Top the account up, then renew and resume (oldest first) every server it suspended
    for lack of credits that the new balance pays for, in the same transaction."""
    account = await account_by_name(session, name)
    balance = await billing.top_up(session, account.id, cents, now, "Credits added by an operator")
    resumed = await renewals.resume_unpaid(session, account.id, now, terms)
    if resumed:
        balance = await AccountRepository(session).balance(account.id)
    return CreditsAdded(balance, resumed)


async def create_token(
    session: AsyncSession,
    name: str,
    now: datetime,
    *,
    read_only: bool,
    expires_in: timedelta | None,
    label: str = "",
) -> tuple[str, ApiToken]:
    account = await account_by_name(session, name)
    return await auth.issue_token(
        session, account, now, read_only=read_only, expires_in=expires_in, label=label
    )


async def list_tokens(session: AsyncSession, name: str) -> list[ApiToken]:
    account = await account_by_name(session, name)
    return await TokenRepository(session).for_account(account.id)


async def account_by_id(session: AsyncSession, account_id: int) -> Account:
    account = await AccountRepository(session).get(account_id)
    if account is None:
        raise NotFound("No such account.")
    return account


async def account_summary(session: AsyncSession, account_id: int) -> AccountSummary:
    account = await account_by_id(session, account_id)
    ledger = await LedgerRepository(session).for_account(account_id, limit=20)
    return AccountSummary(account, ledger)


async def ledger_page(
    session: AsyncSession, account_id: int, offset: int, limit: int
) -> tuple[int, list[CreditTransaction]]:
    """The account's credit transactions, newest first, and how many there are in all."""
    return await LedgerRepository(session).page(account_id, offset, limit)


async def is_empty(session: AsyncSession) -> bool:
    return await AccountRepository(session).count() == 0


async def add_plan(session: AsyncSession, plan: Plan) -> Plan:
    await CatalogRepository(session).add(plan)
    return plan


async def add_os(session: AsyncSession, system: OperatingSystem) -> OperatingSystem:
    catalog = CatalogRepository(session)
    if await catalog.os_by_slug(system.slug) is not None:
        raise Conflict(f"An operating system with slug {system.slug!r} exists.")
    await catalog.add(system)
    return system


async def add_location(
    session: AsyncSession, code: str, name: str, ipv4_cidr: str, ipv6_cidr: str
) -> Location:
    catalog = CatalogRepository(session)
    if await catalog.location_by_code(code) is not None:
        raise Conflict(f"A location with code {code!r} exists.")
    location = Location(code=code, name=name, available=True)
    await catalog.add(location)
    for family, cidr in ((4, ipv4_cidr), (6, ipv6_cidr)):
        try:
            network = ipaddress.ip_network(cidr)
        except ValueError as error:
            raise InvalidParameters.single(f"ipv{family}", str(error)) from None
        if network.version != family:
            raise InvalidParameters.single(f"ipv{family}", f"{cidr} is not an IPv{family} range")
        # Skip the network address and the first hosts (gateway), and IPv4's broadcast.
        first = 2 if family == 4 else 16
        last = min(network.num_addresses - (2 if family == 4 else 1), 2**32 - 1)
        if last < first:
            raise InvalidParameters.single(f"ipv{family}", f"{cidr} is too small")
        await catalog.add(
            IpPool(
                location_id=location.id,
                family=family,
                cidr=str(network),
                first_host=first,
                last_host=last,
            )
        )
    return location


async def set_available(
    session: AsyncSession, kind: type[Plan] | type[OperatingSystem], item_id: int, available: bool
) -> None:
    catalog = CatalogRepository(session)
    item: Plan | OperatingSystem | None = (
        await catalog.get(Plan, item_id)
        if kind is Plan
        else await catalog.get(OperatingSystem, item_id)
    )
    if item is None:
        raise NotFound(f"No {kind.__tablename__[:-1].replace('_', ' ')} with id {item_id}.")
    item.available = available


async def set_location_available(session: AsyncSession, code: str, available: bool) -> None:
    location = await CatalogRepository(session).location_by_code(code)
    if location is None:
        raise NotFound(f"No location {code!r}.")
    location.available = available
