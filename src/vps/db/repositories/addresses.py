from __future__ import annotations

import ipaddress
from datetime import datetime

from sqlalchemy import BigInteger, bindparam, delete, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import IpAllocation, IpPool
from vps.db.repositories.catalog import Pool
from vps.db.rows import execute


class PoolExhausted(Exception):
    pass


def address_of(pool: Pool, host_index: int) -> str:
    network = ipaddress.ip_network(pool.cidr)
    return str(network.network_address + host_index)


_allocations = IpAllocation.__table__
_later = _allocations.alias("later")
# The first host when it is free; otherwise the host after the lowest allocation whose
# successor is free.
_FIRST_IF_FREE = select(bindparam("first", type_=BigInteger)).where(
    ~exists().where(
        _allocations.c.pool_id == bindparam("pool_id"),
        _allocations.c.host_index == bindparam("first"),
    )
)
_FIRST_GAP = (
    select(_allocations.c.host_index + 1)
    .where(
        _allocations.c.pool_id == bindparam("pool_id"),
        _allocations.c.host_index >= bindparam("first"),
        ~exists().where(
            _later.c.pool_id == _allocations.c.pool_id,
            _later.c.host_index == _allocations.c.host_index + 1,
        ),
    )
    .order_by(_allocations.c.host_index)
    .limit(1)
)
_LOWEST_FREE = select(func.coalesce(_FIRST_IF_FREE.scalar_subquery(), _FIRST_GAP.scalar_subquery()))
_ALLOCATE = insert(IpAllocation)
_LOCK_POOL = select(IpPool.id).where(IpPool.id == bindparam("pool_id")).with_for_update()


class AddressRepository:
    """IP address management. The allocations' primary key rules out double allocation."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def held_by(self, server_id: int) -> dict[int, str]:
        result = await self.session.execute(
            select(IpAllocation.family, IpAllocation.address).where(
                IpAllocation.server_id == server_id
            )
        )
        return {int(row[0]): str(row[1]) for row in result.all()}

    async def _lowest_free(self, pool: Pool) -> int | None:
        """The lowest free host index of the pool: the first one, or the one after the
        lowest allocation whose successor is free (found by the database walking the
        primary key in order, so it stops at the first gap)."""
        params = {"pool_id": pool.id, "first": pool.first_host}
        lowest = (await execute(self.session, _LOWEST_FREE, params)).scalar_one_or_none()
        return lowest if lowest is not None and lowest <= pool.last_host else None

    async def allocate(self, pool: Pool, server_id: int, now: datetime) -> str:
        """Give `server_id` the lowest free address of `pool`.

        Allocators of one pool take turns: on PostgreSQL the pool's row is locked until the
        transaction ends (racing for the lowest free address instead, concurrent builds
        collided again and again while the others' allocations were uncommitted); on
        SQLite the write transaction holds the database's write lock already. Should an
        address be taken anyway, the primary key refuses it and the transaction fails.
        """
        if self.session.get_bind().dialect.name != "sqlite":
            await execute(self.session, _LOCK_POOL, {"pool_id": pool.id})
        index = await self._lowest_free(pool)
        if index is None:
            raise PoolExhausted(f"no free address left in {pool.cidr}")
        address = address_of(pool, index)
        await execute(
            self.session,
            _ALLOCATE,
            {
                "pool_id": pool.id,
                "host_index": index,
                "address": address,
                "family": pool.family,
                "server_id": server_id,
                "allocated_at": now,
            },
        )
        return address

    async def release_all(self, server_id: int) -> None:
        await execute(self.session, delete(IpAllocation).where(IpAllocation.server_id == server_id))
