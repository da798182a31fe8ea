"""Hypervisor hosts: what operators register, and where each new server goes.

A location with no registered host keeps the zero-set-up behaviour: its servers run on the
worker's default driver (`VPS_DRIVER`), without a capacity limit. Once a location has hosts,
every new server of it is placed on one of them, or the create is refused with
`location_full` (nothing is charged: the placement is part of the create's transaction).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import Host
from vps.db.repositories.catalog import CatalogRepository
from vps.db.repositories.hosts import HostRepository, HostSummary, HostTarget
from vps.domain.errors import Conflict, InvalidState, LocationFull, NotFound, Problems
from vps.domain.hosts import Capacity, Demand, HostStatus, check_capacity, check_host

__all__ = ["HostSummary", "HostTarget"]


async def add_host(
    session: AsyncSession,
    *,
    name: str,
    location: str,
    driver: str,
    uri: str | None,
    capacity: Capacity,
    now: datetime,
) -> Host:
    problems = Problems()
    check_host(problems, name, driver, uri, capacity)
    problems.raise_if_any()
    found = await CatalogRepository(session).location_by_code(location)
    if found is None:
        raise NotFound(f"No location {location!r} (see `vps catalog list`).")
    hosts = HostRepository(session)
    if await hosts.by_name(name) is not None:
        raise Conflict(f"A host named {name!r} exists.")
    return await hosts.add(
        Host(
            name=name,
            location_id=found.id,
            driver=driver,
            uri=uri or None,
            status=HostStatus.ACTIVE.value,
            **_capacity_columns(capacity),
            used_vcpus=0,
            used_memory_mb=0,
            used_disk_gb=0,
            created_at=now,
        )
    )


def _capacity_columns(capacity: Capacity) -> dict[str, object]:
    return {
        "vcpus": capacity.vcpus,
        "memory_mb": capacity.memory_mb,
        "disk_gb": capacity.disk_gb,
        "cpu_overcommit": capacity.cpu_overcommit,
        "memory_overcommit": capacity.memory_overcommit,
        "disk_overcommit": capacity.disk_overcommit,
        "vcpu_limit": capacity.vcpu_limit,
        "memory_limit_mb": capacity.memory_limit_mb,
        "disk_limit_gb": capacity.disk_limit_gb,
    }


async def list_hosts(session: AsyncSession) -> list[HostSummary]:
    return await HostRepository(session).summaries()


async def _named(hosts: HostRepository, name: str) -> Host:
    host = await hosts.by_name(name)
    if host is None:
        raise NotFound(f"No host named {name!r} (see `vps hosts list`).")
    return host


async def set_status(session: AsyncSession, name: str, status: HostStatus) -> Host:
    """Drain a host (it keeps its servers and takes no new ones) or make it active again."""
    hosts = HostRepository(session)
    host = await _named(hosts, name)
    await hosts.set_status(host.id, status)
    return host


async def update_capacity(session: AsyncSession, name: str, **changes: float | None) -> Host:
    """Change some of a host's capacity and ratios (the keys of `Capacity`; None keeps the
    current value). Servers already placed stay, even if they now exceed the limits: the
    host then takes no new server until enough of them are gone."""
    hosts = HostRepository(session)
    host = await _named(hosts, name)
    current = {key: getattr(host, key) for key in Capacity.__dataclass_fields__}
    unknown = set(changes) - set(current)
    if unknown:
        raise ValueError(f"not capacity fields: {sorted(unknown)}")
    merged = {**current, **{key: value for key, value in changes.items() if value is not None}}
    capacity = Capacity(**merged)
    problems = Problems()
    check_capacity(problems, capacity)
    problems.raise_if_any()
    await hosts.set_capacity(host.id, _capacity_columns(capacity))
    return host


async def remove_host(session: AsyncSession, name: str) -> None:
    """Forget a drained host that no longer has a server."""
    hosts = HostRepository(session)
    host = await _named(hosts, name)
    if host.status != HostStatus.DRAINING.value:
        raise InvalidState(
            f"Drain host {name!r} first (`vps hosts drain {name}`), so that nothing is "
            "placed on it while it goes.",
            host.status,
        )
    live = await hosts.live_servers(host.id)
    if live:
        raise InvalidState(
            f"Host {name!r} still has {live} server(s); they must be deleted first.",
            host.status,
        )
    await hosts.remove(host.id)


async def place(
    session: AsyncSession, location_id: int, location_code: str, plan_name: str, demand: Demand
) -> int | None:
    """Promise a host of the location to a new server: its id, or None when the location has
    no registered host (the default driver). LocationFull when none has room.

    Runs in the create's transaction: a refused create leaves nothing promised, and a
    committed one holds its host's resources until its server is deleted.
    """
    hosts = HostRepository(session)
    # The candidates were read without a lock; `reserve` checks again as it writes, so a
    # host that filled up meanwhile is skipped rather than overcommitted.
    for host_id in await hosts.candidates(location_id, demand):
        if await hosts.reserve(host_id, demand):
            return host_id
    if not await hosts.has_hosts(location_id):
        return None
    raise LocationFull(
        f"No host in location {location_code!r} has room for plan {plan_name!r} right now "
        "(nothing was charged). Try another location or a smaller plan."
    )


async def release(session: AsyncSession, host_id: int, demand: Demand) -> None:
    """Give a deleted server's resources back to its host."""
    await HostRepository(session).release(host_id, demand)


async def targets(session: AsyncSession) -> list[HostTarget]:
    return await HostRepository(session).targets()


async def target(session: AsyncSession, host_id: int) -> HostTarget | None:
    return await HostRepository(session).target(host_id)
