from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import Account, ApiToken, CreditTransaction
from vps.db.rows import execute, insert_row

# Conditional, so that racing debits can never overdraw the account (the CHECK constraint
# on the column backs this up). Built once: they run on every create and renewal.
_DEBIT = (
    update(Account)
    .where(Account.id == bindparam("account_id"), Account.balance_cents >= bindparam("cents"))
    .values(balance_cents=Account.balance_cents - bindparam("cents"))
    .returning(Account.balance_cents)
)
_CREDIT = (
    update(Account)
    .where(Account.id == bindparam("account_id"))
    .values(balance_cents=Account.balance_cents + bindparam("cents"))
    .returning(Account.balance_cents)
)


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, account_id: int) -> Account | None:
        return await self.session.get(Account, account_id)

    async def by_name(self, name: str) -> Account | None:
        result = await self.session.execute(select(Account).where(Account.name == name))
        return result.scalar_one_or_none()

    async def count(self) -> int:
        result = await self.session.execute(select(Account.id).limit(1))
        return 0 if result.first() is None else 1

    async def add(self, name: str, now: datetime) -> Account:
        account = Account(name=name, balance_cents=0, created_at=now)
        self.session.add(account)
        await self.session.flush()
        return account

    async def debit(self, account_id: int, cents: int) -> int | None:
        """Take `cents` if the balance covers them; the new balance, or None when it does not.

        One conditional statement, so racing debits can never overdraw the account; the
        CHECK constraint on the column backs this up.
        """
        result = await execute(self.session, _DEBIT, {"account_id": account_id, "cents": cents})
        balance: int | None = result.scalar_one_or_none()
        return balance

    async def credit(self, account_id: int, cents: int) -> int:
        result = await execute(self.session, _CREDIT, {"account_id": account_id, "cents": cents})
        balance: int = result.scalar_one()
        return balance

    async def balance(self, account_id: int) -> int:
        result = await self.session.execute(
            select(Account.balance_cents).where(Account.id == account_id)
        )
        return result.scalar_one()


class LedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, entry: CreditTransaction) -> None:
        await insert_row(self.session, entry)

    async def by_reference(self, reference: str) -> CreditTransaction | None:
        result = await self.session.execute(
            select(CreditTransaction).where(CreditTransaction.reference == reference)
        )
        return result.scalar_one_or_none()

    async def has_reference(self, reference: str) -> bool:
        result = await self.session.execute(
            select(CreditTransaction.id).where(CreditTransaction.reference == reference)
        )
        return result.first() is not None

    async def for_account(self, account_id: int, limit: int = 100) -> list[CreditTransaction]:
        result = await self.session.execute(
            select(CreditTransaction)
            .where(CreditTransaction.account_id == account_id)
            .order_by(CreditTransaction.id.desc())
            .limit(limit)
        )
        return list(result.scalars())

    async def page(
        self, account_id: int, offset: int, limit: int
    ) -> tuple[int, list[CreditTransaction]]:
        """The account's ledger, newest first. By id: within one account ids follow commit
        order, because each balance change updates (locks) the account row before it inserts
        its entry."""
        total = await self.session.scalar(
            select(func.count())
            .select_from(CreditTransaction)
            .where(CreditTransaction.account_id == account_id)
        )
        result = await self.session.execute(
            select(CreditTransaction)
            .where(CreditTransaction.account_id == account_id)
            .order_by(CreditTransaction.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return int(total or 0), list(result.scalars())


class TokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_hash(self, token_hash: str) -> ApiToken | None:
        result = await self.session.execute(
            select(ApiToken).where(ApiToken.token_hash == token_hash)
        )
        return result.scalar_one_or_none()

    async def add(self, token: ApiToken) -> ApiToken:
        self.session.add(token)
        await self.session.flush()
        return token

    async def for_account(self, account_id: int) -> list[ApiToken]:
        result = await self.session.execute(
            select(ApiToken).where(ApiToken.account_id == account_id).order_by(ApiToken.id)
        )
        return list(result.scalars())

    async def get(self, token_id: int) -> ApiToken | None:
        return await self.session.get(ApiToken, token_id)
