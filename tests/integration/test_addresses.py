"""Addresses: one IPv4 and one IPv6 per server from its location's pools, never shared, hidden
while provisioning, released only once the machine is destroyed, and then reused."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from tests.factories import Factory, Tenant, eventually, unique_name
from vps.db.engine import Database
from vps.db.models import IpAllocation, IpPool, Location, Server
from vps.drivers.base import MachineSpec, PermanentDriverError
from vps.drivers.simulator import SimulatorDriver
from vps.services import accounts
from vps.worker.engine import Worker

WEST_V4 = ipaddress.ip_network("203.0.113.0/24")
WEST_V6 = ipaddress.ip_network("2001:db8:1::/64")


async def allocations(database: Database, server_id: int) -> dict[int, str]:
    """The addresses `server_id` holds in `ip_allocations`, by family."""
    async with database.read() as session:
        rows = await session.execute(
            select(IpAllocation.family, IpAllocation.address).where(
                IpAllocation.server_id == server_id
            )
        )
        return {int(family): str(address) for family, address in rows.all()}


async def west_pools(database: Database) -> dict[int, IpPool]:
    async with database.read() as session:
        pools = await session.scalars(
            select(IpPool)
            .join(Location, Location.id == IpPool.location_id)
            .where(Location.code == "us-west")
        )
        return {pool.family: pool for pool in pools}


async def quiescent(database: Database, worker: Worker) -> None:
    """Wait until the running worker has no address to allocate or release (servers held by a
    test or leased elsewhere do not move), so "the lowest free address" stays put."""

    async def idle() -> bool:
        async with database.read() as session:
            busy = await session.scalar(
                select(func.count())
                .select_from(Server)
                .where(
                    Server.status.in_(["provisioning", "deleting"]),
                    or_(Server.lease_owner.is_(None), Server.lease_owner == worker.worker_id),
                )
            )
        return busy == 0

    await eventually(idle, "no server is being provisioned or deleted")


async def delete_all(tenant: Tenant, server_ids: list[int]) -> None:
    for server_id in server_ids:
        await tenant.delete(f"/api/v1/servers/{server_id}/")


def gate_create(
    monkeypatch: pytest.MonkeyPatch, driver: SimulatorDriver, name: str
) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold the machine build of the server named `name`: (building, gate)."""
    building, gate = asyncio.Event(), asyncio.Event()
    original = driver.create

    async def create(spec: MachineSpec) -> None:
        if spec.name == name:
            building.set()
            await gate.wait()
        await original(spec)

    monkeypatch.setattr(driver, "create", create)
    return building, gate


async def test_ten_servers_at_once_get_distinct_addresses_from_the_pool(
    factory: Factory,
) -> None:
    tenant = await factory.tenant()
    pools = await west_pools(factory.database)
    assert ipaddress.ip_network(pools[4].cidr) == WEST_V4
    assert ipaddress.ip_network(pools[6].cidr) == WEST_V6

    responses = await asyncio.gather(
        *(
            tenant.post(
                "/api/v1/servers/",
                json={"name": f"addr-{i}", "plan_id": 3, "os_id": 5, "location": "us-west"},
            )
            for i in range(10)
        )
    )
    assert [r.status_code for r in responses] == [201] * 10
    ids = [r.json()["id"] for r in responses]
    try:
        assert all(r.json()["ip_address"] is None for r in responses)
        assert all(r.json()["ipv6_address"] is None for r in responses)
        servers = [await tenant.wait_for_status(sid, "active") for sid in ids]

        v4 = [ipaddress.ip_address(s["ip_address"]) for s in servers]
        v6 = [ipaddress.ip_address(s["ipv6_address"]) for s in servers]
        assert len(set(v4)) == 10, v4
        assert len(set(v6)) == 10, v6
        for address in v4:
            assert address in WEST_V4
            index = int(address) - int(WEST_V4.network_address)
            assert pools[4].first_host <= index <= pools[4].last_host
        for address in v6:
            assert address in WEST_V6
            index = int(address) - int(WEST_V6.network_address)
            assert pools[6].first_host <= index <= pools[6].last_host

        async with factory.database.read() as session:
            rows = (
                await session.execute(
                    select(
                        IpAllocation.server_id,
                        IpAllocation.family,
                        IpAllocation.address,
                        IpAllocation.pool_id,
                    ).where(IpAllocation.server_id.in_(ids))
                )
            ).all()
        assert len(rows) == 20
        recorded = {(sid, family): (address, pool) for sid, family, address, pool in rows}
        for server in servers:
            assert recorded[(server["id"], 4)] == (server["ip_address"], pools[4].id)
            assert recorded[(server["id"], 6)] == (server["ipv6_address"], pools[6].id)
    finally:
        await delete_all(tenant, ids)


async def test_no_two_live_servers_share_an_address(factory: Factory) -> None:
    tenant = await factory.tenant()
    ids = [(await tenant.create_server(name=f"u-{i}", plan_id=3))["id"] for i in range(3)]
    try:
        for sid in ids:
            await tenant.wait_for_status(sid, "active")
        async with factory.database.read() as session:
            for column in (Server.ipv4_address, Server.ipv6_address):
                duplicated = (
                    await session.execute(
                        select(column, func.count())
                        .where(column.is_not(None), Server.status != "deleted")
                        .group_by(column)
                        .having(func.count() > 1)
                    )
                ).all()
                assert duplicated == []
    finally:
        await delete_all(tenant, ids)


async def allocate_clashing(
    database: Database, server_id: int, pool_id: int, host_index: int, address: str
) -> None:
    """Give `server_id` another IPv4 allocation, in one transaction that must fail."""
    async with database.write() as session:
        # Free the server's own IPv4 first, so only the shared slot or address can clash.
        await session.execute(
            delete(IpAllocation).where(
                IpAllocation.server_id == server_id, IpAllocation.family == 4
            )
        )
        session.add(
            IpAllocation(
                pool_id=pool_id,
                host_index=host_index,
                address=address,
                family=4,
                server_id=server_id,
                allocated_at=datetime.now(UTC),
            )
        )
        await session.flush()


async def test_the_database_refuses_a_double_allocation(factory: Factory) -> None:
    tenant = await factory.tenant()
    first = await tenant.active_server(name="first", plan_id=3)
    second = await tenant.active_server(name="second", plan_id=3)
    try:
        async with factory.database.read() as session:
            taken = (
                await session.scalars(
                    select(IpAllocation).where(
                        IpAllocation.server_id == first["id"], IpAllocation.family == 4
                    )
                )
            ).one()
        slot, address = (taken.pool_id, taken.host_index), taken.address
        for pool_id, host_index, text in (
            (*slot, "192.0.2.77"),  # the same pool slot (the primary key) under another address
            (slot[0], 10**6, address),  # the same address under a slot nobody holds
        ):
            with pytest.raises(IntegrityError):
                await allocate_clashing(factory.database, second["id"], pool_id, host_index, text)
        # Both transactions rolled back: nothing changed.
        assert await allocations(factory.database, first["id"]) == {
            4: first["ip_address"],
            6: first["ipv6_address"],
        }
        assert await allocations(factory.database, second["id"]) == {
            4: second["ip_address"],
            6: second["ipv6_address"],
        }
    finally:
        await delete_all(tenant, [first["id"], second["id"]])


async def test_ip_address_is_null_while_provisioning(
    factory: Factory, driver: SimulatorDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique_name("slow")
    building, gate = gate_create(monkeypatch, driver, name)
    tenant = await factory.tenant()
    created = await tenant.create_server(name=name, plan_id=3)
    sid = created["id"]
    try:
        assert created["status"] == "provisioning"
        assert created["ip_address"] is None and created["ipv6_address"] is None
        await asyncio.wait_for(building.wait(), 10)

        # The worker has allocated the addresses, but the server is not built yet.
        held = await allocations(factory.database, sid)
        assert set(held) == {4, 6}
        detail = (await tenant.get(f"/api/v1/servers/{sid}/")).json()
        assert detail["status"] == "provisioning"
        assert detail["ip_address"] is None
        assert detail["ipv6_address"] is None
        listed = (await tenant.get("/api/v1/servers/")).json()["results"]
        assert [(s["id"], s["ip_address"]) for s in listed] == [(sid, None)]

        gate.set()
        active = await tenant.wait_for_status(sid, "active")
        assert active["ip_address"] == held[4]
        assert active["ipv6_address"] == held[6]
        assert ipaddress.ip_address(active["ip_address"]) in WEST_V4
        assert ipaddress.ip_address(active["ipv6_address"]) in WEST_V6
    finally:
        gate.set()
        await delete_all(tenant, [sid])


async def test_addresses_are_released_after_the_machine_is_gone_then_reused(
    factory: Factory, driver: SimulatorDriver, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await factory.tenant()
    await quiescent(factory.database, worker)
    first = await tenant.active_server(name="first", plan_id=3)
    sid = first["id"]
    first_addresses = {4: first["ip_address"], 6: first["ipv6_address"]}
    assert await allocations(factory.database, sid) == first_addresses
    assert sid in driver.machines

    destroying, gate = asyncio.Event(), asyncio.Event()
    original_delete = driver.delete

    async def gated_delete(server_id: int) -> None:
        if server_id == sid:
            destroying.set()
            await gate.wait()
        await original_delete(server_id)

    monkeypatch.setattr(driver, "delete", gated_delete)
    others: list[int] = []
    try:
        assert (await tenant.delete(f"/api/v1/servers/{sid}/")).status_code == 204
        await asyncio.wait_for(destroying.wait(), 10)
        # Gone for its owner, but the machine still exists: the addresses stay taken ...
        assert (await tenant.get(f"/api/v1/servers/{sid}/")).status_code == 404
        assert sid in driver.machines
        assert await allocations(factory.database, sid) == first_addresses
        # ... so a server created meanwhile gets other ones.
        meanwhile = await tenant.active_server(name="meanwhile", plan_id=3)
        others.append(meanwhile["id"])
        assert meanwhile["ip_address"] != first_addresses[4]
        assert meanwhile["ipv6_address"] != first_addresses[6]
        assert await allocations(factory.database, sid) == first_addresses

        gate.set()

        async def released() -> bool:
            held = await allocations(factory.database, sid)
            # Whenever the addresses are free, the machine must already be gone.
            assert held == first_addresses or sid not in driver.machines
            return not held

        await eventually(released, f"server {sid}'s addresses are released")
        assert sid not in driver.machines
        async with factory.database.read() as session:
            status = await session.scalar(select(Server.status).where(Server.id == sid))
        assert status == "deleted"

        # Nothing else is allocating: the freed addresses are the lowest free ones again.
        await quiescent(factory.database, worker)
        again = await tenant.active_server(name="again", plan_id=3)
        others.append(again["id"])
        assert again["ip_address"] == first_addresses[4]
        assert again["ipv6_address"] == first_addresses[6]
        assert await allocations(factory.database, again["id"]) == first_addresses
    finally:
        gate.set()
        await delete_all(tenant, others)


async def test_failed_build_releases_its_addresses_for_reuse(
    factory: Factory, driver: SimulatorDriver, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique_name("broken")
    building, gate = asyncio.Event(), asyncio.Event()
    original = driver.create

    async def create(spec: MachineSpec) -> None:
        if spec.name == name:
            building.set()
            await gate.wait()
            raise PermanentDriverError("disk image corrupt")
        await original(spec)

    monkeypatch.setattr(driver, "create", create)
    tenant = await factory.tenant()
    await quiescent(factory.database, worker)
    created = await tenant.create_server(name=name, plan_id=3)
    sid = created["id"]
    others: list[int] = []
    try:
        await asyncio.wait_for(building.wait(), 10)
        held = await allocations(factory.database, sid)
        assert set(held) == {4, 6}
        gate.set()
        failed = await tenant.wait_for_status(sid, "error")
        assert failed["ip_address"] is None and failed["ipv6_address"] is None
        assert await allocations(factory.database, sid) == {}
        await quiescent(factory.database, worker)
        again = await tenant.active_server(name="again", plan_id=3)
        others.append(again["id"])
        assert {4: again["ip_address"], 6: again["ipv6_address"]} == held
    finally:
        gate.set()
        await delete_all(tenant, [sid, *others])


async def test_an_exhausted_pool_fails_the_build_with_one_refund_until_an_address_is_freed(
    factory: Factory, driver: SimulatorDriver
) -> None:
    # A location of its own with a /29: hosts .2 to .6, five addresses.
    code = unique_name("tiny")
    salt = uuid.uuid4().int
    v4 = ipaddress.ip_network(f"198.18.{salt % 256}.{(salt >> 8) % 32 * 8}/29")
    v6 = ipaddress.ip_network(f"2001:db8:{(salt >> 16) % 0xFFFF:x}:{(salt >> 32) % 0xFFFF:x}::/64")
    async with factory.database.write() as session:
        await accounts.add_location(session, code, "Tiny", str(v4), str(v6))

    tenant = await factory.tenant("1000.00")
    plans = (await tenant.get("/api/v1/plans/")).json()
    monthly = Decimal(next(p["monthly_price"] for p in plans if p["id"] == 3))
    servers = [
        await tenant.active_server(name=f"tiny-{i}", plan_id=3, location=code) for i in range(5)
    ]
    ids = [s["id"] for s in servers]
    try:
        addresses = sorted(ipaddress.ip_address(s["ip_address"]) for s in servers)
        assert addresses == [v4.network_address + i for i in range(2, 7)]
        assert all(ipaddress.ip_address(s["ipv6_address"]) in v6 for s in servers)

        starved = await tenant.create_server(name="tiny-5", plan_id=3, location=code)
        ids.append(starved["id"])
        failed = await tenant.wait_for_status(starved["id"], "error")
        assert failed["error"]["code"] == "no_addresses"
        assert failed["ip_address"] is None and failed["ipv6_address"] is None
        assert await allocations(factory.database, starved["id"]) == {}
        assert starved["id"] not in driver.machines
        summary = (await tenant.get("/api/v1/account/")).json()
        assert Decimal(summary["balance"]) == Decimal("1000.00") - 5 * monthly
        refunds = [e for e in summary["recent_transactions"] if e["kind"] == "refund"]
        assert [(e["server_id"], Decimal(e["amount"])) for e in refunds] == [
            (starved["id"], monthly)
        ]

        # Free one address: once its machine is gone, a new server gets exactly it.
        freed = servers[0]
        assert (await tenant.delete(f"/api/v1/servers/{freed['id']}/")).status_code == 204

        async def released() -> bool:
            return not await allocations(factory.database, freed["id"])

        await eventually(released, f"server {freed['id']}'s addresses are released")
        assert freed["id"] not in driver.machines
        replacement = await tenant.active_server(name="tiny-6", plan_id=3, location=code)
        ids.append(replacement["id"])
        assert replacement["ip_address"] == freed["ip_address"]
    finally:
        await delete_all(tenant, ids)


async def test_a_build_is_told_the_networks_of_its_addresses(
    factory: Factory, driver: SimulatorDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real guest configures its own addresses: the driver gets the pool's network (the
    prefix, and the gateway as its first host) with each address."""
    tenant = await factory.tenant()
    name = unique_name("netinfo")
    seen: list[MachineSpec] = []
    original = driver.create

    async def create(spec: MachineSpec) -> None:
        if spec.name == name:
            seen.append(spec)
        await original(spec)

    monkeypatch.setattr(driver, "create", create)
    created = await tenant.create_server(name=name, location="us-west")
    await tenant.wait_for_status(created["id"], "active")
    (spec,) = seen
    assert spec.ipv4_network == str(WEST_V4)
    assert spec.ipv6_network == str(WEST_V6)
    assert spec.ipv4_address is not None and spec.ipv6_address is not None
    assert ipaddress.ip_address(spec.ipv4_address) in WEST_V4
    assert ipaddress.ip_address(spec.ipv6_address) in WEST_V6
