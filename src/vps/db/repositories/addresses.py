from __future__ import annotations

import ipaddress
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import IpAllocation, IpPool


class PoolExhausted(Exception):
    pass


def address_of(pool: IpPool, host_index: int) -> str:
    network = ipaddress.ip_network(pool.cidr)
    return str(network.network_address + host_index)


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

    async def _lowest_free(self, pool: IpPool) -> int | None:
        taken = await self.session.execute(
            select(IpAllocation.host_index)
            .where(IpAllocation.pool_id == pool.id)
            .order_by(IpAllocation.host_index)
        )
        candidate = pool.first_host
        for (index,) in taken.all():
            if index > candidate:
                break
            if index == candidate:
                candidate += 1
        return candidate if candidate <= pool.last_host else None

    async def allocate(self, pool: IpPool, server_id: int, now: datetime) -> str:
        """Give `server_id` the lowest free address of `pool`.

        Two allocators racing for the same address: one insert wins, the other retries
        inside a savepoint with the next address.
        """
        for _attempt in range(20):
            index = await self._lowest_free(pool)
            if index is None:
                raise PoolExhausted(f"no free address left in {pool.cidr}")
            allocation = IpAllocation(
                pool_id=pool.id,
                host_index=index,
                address=address_of(pool, index),
                family=pool.family,
                server_id=server_id,
                allocated_at=now,
            )
            try:
                async with self.session.begin_nested():
                    self.session.add(allocation)
                    await self.session.flush()
            except IntegrityError:
                continue
            return allocation.address
        raise PoolExhausted(f"could not allocate from {pool.cidr} under contention")

    async def release_all(self, server_id: int) -> None:
        await self.session.execute(delete(IpAllocation).where(IpAllocation.server_id == server_id))
