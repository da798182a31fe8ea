"""Hypervisor hosts: registration, and the capacity counters placement moves.

Placement is race-free without locks held across statements: `reserve` is one conditional
UPDATE that adds a server's resources only while the sums stay within the limits and the
host is active. Two transactions reserving on the same host are serialised by the row lock
of that UPDATE (PostgreSQL re-evaluates the condition on the row the other committed; on
SQLite the write lock rules the race out), so a host can never be promised past its limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import Host, Location, Server
from vps.db.rows import execute
from vps.domain.hosts import Demand, HostStatus
from vps.domain.states import ServerStatus


class HostTarget(NamedTuple):
    """How a worker reaches a host."""

    id: int
    name: str
    driver: str
    uri: str | None


class HostSummary(NamedTuple):
    """A host as `vps hosts list` shows it."""

    host: Host
    location_code: str
    servers: int


_hosts = cast(Table, Host.__table__)
# An active host with room for the demand on all three resources.
_HAS_ROOM = (
    _hosts.c.status == HostStatus.ACTIVE.value,
    _hosts.c.used_vcpus + bindparam("demand_vcpus") <= _hosts.c.vcpu_limit,
    _hosts.c.used_memory_mb + bindparam("demand_memory_mb") <= _hosts.c.memory_limit_mb,
    _hosts.c.used_disk_gb + bindparam("demand_disk_gb") <= _hosts.c.disk_limit_gb,
)
_RESERVE = (
    update(_hosts)
    .where(_hosts.c.id == bindparam("host_id"), *_HAS_ROOM)
    .values(
        used_vcpus=_hosts.c.used_vcpus + bindparam("demand_vcpus"),
        used_memory_mb=_hosts.c.used_memory_mb + bindparam("demand_memory_mb"),
        used_disk_gb=_hosts.c.used_disk_gb + bindparam("demand_disk_gb"),
    )
)
_RELEASE = (
    update(_hosts)
    .where(_hosts.c.id == bindparam("host_id"))
    .values(
        used_vcpus=_hosts.c.used_vcpus - bindparam("demand_vcpus"),
        used_memory_mb=_hosts.c.used_memory_mb - bindparam("demand_memory_mb"),
        used_disk_gb=_hosts.c.used_disk_gb - bindparam("demand_disk_gb"),
    )
)
# The location's active hosts with room for a demand, emptiest first (by the share of
# memory promised, the resource that runs out first on most hypervisors): new servers are
# spread, so one host's failure touches as few as possible.
_CANDIDATES = (
    select(_hosts.c.id)
    .where(_hosts.c.location_id == bindparam("location_id"), *_HAS_ROOM)
    .order_by(
        (_hosts.c.used_memory_mb * 1.0 / _hosts.c.memory_limit_mb),
        _hosts.c.used_vcpus * 1.0 / _hosts.c.vcpu_limit,
        _hosts.c.id,
    )
)
_HAS_HOSTS = select(_hosts.c.id).where(_hosts.c.location_id == bindparam("location_id")).limit(1)
_TARGET = select(Host.id, Host.name, Host.driver, Host.uri).where(Host.id == bindparam("host_id"))


def _demand(demand: Demand) -> dict[str, Any]:
    # Not the column names: an UPDATE reserves those for its own values.
    return {
        "demand_vcpus": demand.vcpus,
        "demand_memory_mb": demand.memory_mb,
        "demand_disk_gb": demand.disk_gb,
    }


class HostRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, host: Host) -> Host:
        self.session.add(host)
        await self.session.flush()
        return host

    async def by_name(self, name: str) -> Host | None:
        result = await self.session.execute(select(Host).where(Host.name == name))
        return result.scalar_one_or_none()

    async def summaries(self) -> list[HostSummary]:
        servers = (
            select(func.count())
            .where(Server.host_id == Host.id, Server.status != ServerStatus.DELETED.value)
            .scalar_subquery()
        )
        result = await self.session.execute(
            select(Host, Location.code, servers)
            .join(Location, Location.id == Host.location_id)
            .order_by(Location.code, Host.name)
        )
        return [HostSummary(host, code, count) for host, code, count in result.all()]

    async def targets(self) -> list[HostTarget]:
        result = await self.session.execute(
            select(Host.id, Host.name, Host.driver, Host.uri).order_by(Host.id)
        )
        return [HostTarget(*row) for row in result.all()]

    async def target(self, host_id: int) -> HostTarget | None:
        row: Sequence[Any] | None = (
            await execute(self.session, _TARGET, {"host_id": host_id})
        ).first()
        return HostTarget(*row) if row is not None else None

    async def has_hosts(self, location_id: int) -> bool:
        result = await execute(self.session, _HAS_HOSTS, {"location_id": location_id})
        return result.first() is not None

    async def candidates(self, location_id: int, demand: Demand) -> list[int]:
        result = await execute(
            self.session, _CANDIDATES, {"location_id": location_id, **_demand(demand)}
        )
        return [row[0] for row in result.all()]

    async def reserve(self, host_id: int, demand: Demand) -> bool:
        """Promise the demand on the host if it is active and has room; False otherwise."""
        result = await execute(self.session, _RESERVE, {"host_id": host_id, **_demand(demand)})
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release(self, host_id: int, demand: Demand) -> None:
        await execute(self.session, _RELEASE, {"host_id": host_id, **_demand(demand)})

    async def set_status(self, host_id: int, status: HostStatus) -> None:
        await self.session.execute(
            update(Host).where(Host.id == host_id).values(status=status.value)
        )

    async def set_capacity(self, host_id: int, values: dict[str, object]) -> None:
        await self.session.execute(update(Host).where(Host.id == host_id).values(**values))

    async def live_servers(self, host_id: int) -> int:
        result = await self.session.execute(
            select(func.count()).where(
                Server.host_id == host_id, Server.status != ServerStatus.DELETED.value
            )
        )
        return int(result.scalar_one())

    async def remove(self, host_id: int) -> None:
        """Forget the host; deleted servers that were on it forget it too."""
        await self.session.execute(
            update(Server)
            .where(Server.host_id == host_id, Server.status == ServerStatus.DELETED.value)
            .values(host_id=None)
        )
        await self.session.execute(delete(Host).where(Host.id == host_id))
