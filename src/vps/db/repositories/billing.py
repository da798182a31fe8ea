"""The SQL of billing periods: due renewals, suspensions, resumptions and power-offs.

Every write is a compare-and-set on the period number (`billing_period`) and the status the
caller saw, so of two workers renewing one server, or a renewal racing a top-up or a delete,
exactly one wins and the others change nothing. Each write bumps `version`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import Account, Server
from vps.db.repositories.servers import ServerRepository
from vps.db.rows import execute
from vps.domain.billing import PAYMENT_REQUIRED
from vps.domain.states import RESUMED_STATUS, ServerStatus


def _values(statuses: Collection[ServerStatus]) -> list[str]:
    return [status.value for status in statuses]


def _period_due(
    server_id: int, period: int, statuses: Collection[ServerStatus], now: datetime
) -> Any:
    """The server is still in period `period`, which has ended, and in one of `statuses`."""
    return and_(
        Server.id == server_id,
        Server.billing_period == period,
        Server.deleted_at.is_(None),
        Server.status.in_(_values(statuses)),
        Server.paid_until <= now,
    )


# A visible server suspended for lack of credits.
_UNPAID = and_(
    Server.deleted_at.is_(None),
    Server.status == ServerStatus.SUSPENDED.value,
    Server.error_code == PAYMENT_REQUIRED,
)


class BillingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def due(self, statuses: Collection[ServerStatus], now: datetime, limit: int) -> list[int]:
        """Servers in `statuses` whose paid period ended at or before `now`, longest due first."""
        result = await self.session.execute(
            select(Server.id)
            .where(
                Server.deleted_at.is_(None),
                Server.status.in_(_values(statuses)),
                Server.paid_until <= now,
            )
            .order_by(Server.paid_until, Server.id)
            .limit(limit)
        )
        return list(result.scalars())

    async def advance(
        self,
        server_id: int,
        period: int,
        statuses: Collection[ServerStatus],
        now: datetime,
        *,
        paid_from: datetime,
        paid_until: datetime,
    ) -> bool:
        """Move a due server from period `period` to the next; False when another writer
        already did (or the server left `statuses`, or was deleted)."""
        result = await execute(
            self.session,
            update(Server)
            .where(_period_due(server_id, period, statuses, now))
            .values(
                paid_from=paid_from,
                paid_until=paid_until,
                billing_period=period + 1,
                version=Server.version + 1,
            ),
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def suspend(
        self,
        server_id: int,
        period: int,
        statuses: Collection[ServerStatus],
        now: datetime,
        message: str,
    ) -> bool:
        """Suspend a server whose period `period` ended unpaid; the machine is powered off
        afterwards by a worker (`power_off_pending`)."""
        result = await execute(
            self.session,
            update(Server)
            .where(_period_due(server_id, period, statuses, now))
            .values(
                status=ServerStatus.SUSPENDED.value,
                error_code=PAYMENT_REQUIRED,
                error_message=message,
                power_off_pending=True,
                attempts=0,
                retry_at=None,
                updated_at=now,
                version=Server.version + 1,
            ),
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def lock_account(self, account_id: int) -> None:
        """Hold the account's row until the transaction ends (PostgreSQL; a SQLite write
        transaction holds the whole database already). Resuming takes the account before its
        servers, as a top-up does (its credit locks the account first), so a top-up and a
        sweep resuming the same server cannot deadlock."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                select(Account.id).where(Account.id == account_id).with_for_update()
            )

    async def unpaid(self, account_id: int) -> list[Server]:
        """The account's servers suspended for lack of credits, oldest first."""
        result = await self.session.execute(
            select(Server)
            .where(
                Server.account_id == account_id,
                _UNPAID,
            )
            .order_by(Server.created_at, Server.id)
            .execution_options(populate_existing=True)
        )
        return list(result.unique().scalars())

    async def accounts_with_unpaid(self, limit: int) -> list[int]:
        result = await self.session.execute(
            select(Server.account_id)
            .where(
                _UNPAID,
            )
            .group_by(Server.account_id)
            .order_by(Server.account_id)
            .limit(limit)
        )
        return list(result.scalars())

    async def resume(
        self, server_id: int, period: int, now: datetime, paid_until: datetime
    ) -> bool:
        """Start a server suspended for lack of credits on a new period from `now`."""
        result = await execute(
            self.session,
            update(Server)
            .where(
                Server.id == server_id,
                Server.billing_period == period,
                _UNPAID,
            )
            .values(
                status=RESUMED_STATUS.value,
                error_code=None,
                error_message=None,
                paid_from=now,
                paid_until=paid_until,
                billing_period=period + 1,
                power_off_pending=False,
                attempts=0,
                retry_at=None,
                updated_at=now,
                version=Server.version + 1,
            ),
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def power_off_candidates(self, now: datetime, limit: int) -> list[int]:
        """Suspended servers whose machine may still run, with no live lease."""
        return await ServerRepository(self.session).free_of_lease(
            and_(
                Server.status == ServerStatus.SUSPENDED.value,
                Server.power_off_pending.is_(True),
            ),
            now,
            limit,
        )

    async def powered_off(self, server_id: int, owner: str) -> bool:
        """Record, as the lease holder, that a suspended server's machine is off; False when
        the server is no longer suspended (resumed or deleted meanwhile)."""
        result = await execute(
            self.session,
            update(Server)
            .where(
                Server.id == server_id,
                Server.lease_owner == owner,
                Server.status == ServerStatus.SUSPENDED.value,
            )
            .values(
                power_off_pending=False,
                lease_owner=None,
                lease_expires_at=None,
                attempts=0,
                retry_at=None,
                version=Server.version + 1,
            ),
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
