"""Hypervisor hosts and placement, through the operator CLI and the public API.

Each test registers simulator hosts in a location of its own, so the servers of other
tests (in locations without hosts, on the default driver) are never placed on them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from tests.factories import Factory, Tenant, spec_for, unique_name
from vps.cli.main import app
from vps.config import Settings
from vps.db.models import Host, Server
from vps.drivers.simulator import SimulatorDriver
from vps.services import accounts
from vps.worker.engine import Worker
from vps.worker.hypervisors import HostUnreachable

runner = CliRunner()
STARTER = 3  # 1 vCPU, 1024 MB, 25 GB


async def vps(settings: Settings, *args: str, env: dict[str, str] | None = None) -> Result:
    base = {"VPS_DATABASE_URL": settings.database_url or "", "VPS_DATA_DIR": str(settings.data_dir)}
    return await asyncio.to_thread(runner.invoke, app, list(args), env={**base, **(env or {})})


async def new_location(factory: Factory) -> str:
    code = unique_name("hl")[:20]
    salt = uuid.uuid4().int
    v4 = ipaddress.ip_network(f"100.{64 + salt % 64}.{(salt >> 8) % 256}.0/24")
    v6 = ipaddress.ip_network(f"2001:db8:{(salt >> 16) % 0xFFFF:x}:{(salt >> 32) % 0xFFFF:x}::/64")
    async with factory.database.write() as session:
        await accounts.add_location(session, code, "Host lab", str(v4), str(v6))
    return code


async def add_host(
    settings: Settings, location: str, *, vcpus: int, memory_mb: int, disk_gb: int
) -> str:
    name = unique_name("hv")[:20]
    result = await vps(
        settings,
        "hosts",
        "add",
        name,
        "--location",
        location,
        "--driver",
        "simulator",
        "--vcpus",
        str(vcpus),
        "--memory-mb",
        str(memory_mb),
        "--disk-gb",
        str(disk_gb),
        "--cpu-overcommit",
        "1",
    )
    assert result.exit_code == 0, result.output
    return name


async def hosts_json(settings: Settings) -> dict[str, dict[str, Any]]:
    result = await vps(settings, "hosts", "list", "-o", "json")
    assert result.exit_code == 0, result.output
    return {host["name"]: host for host in json.loads(result.stdout)}


async def placed_on(factory: Factory, server_id: int) -> str | None:
    async with factory.database.read() as session:
        row = await session.execute(
            select(Host.name).join(Server, Server.host_id == Host.id).where(Server.id == server_id)
        )
        return row.scalar_one_or_none()


async def host_id(factory: Factory, name: str) -> int:
    async with factory.database.read() as session:
        found = await session.execute(select(Host.id).where(Host.name == name))
        return found.scalar_one()


async def balance(tenant: Tenant) -> Decimal:
    return Decimal((await tenant.get("/api/v1/account/")).json()["balance"])


def create_body(location: str, name: str = "placed") -> dict[str, Any]:
    return {"name": name, "plan_id": STARTER, "os_id": 5, "location": location}


async def delete_and_wait(factory: Factory, tenant: Tenant, server_id: int) -> None:
    assert (await tenant.delete(f"/api/v1/servers/{server_id}/")).status_code == 204
    await factory.wait_until_deleted(server_id)


async def test_servers_fill_the_hosts_with_room_then_the_location_is_refused_uncharged(
    factory: Factory, settings: Settings, worker: Worker, driver: SimulatorDriver
) -> None:
    location = await new_location(factory)
    big = await add_host(settings, location, vcpus=2, memory_mb=2048, disk_gb=50)
    small = await add_host(settings, location, vcpus=1, memory_mb=1024, disk_gb=25)
    tenant = await factory.tenant("1000.00")

    servers = [await tenant.active_server(**create_body(location, f"p{i}")) for i in range(3)]
    placements = [await placed_on(factory, server["id"]) for server in servers]
    assert sorted(placements, key=str) == sorted([big, big, small], key=str)
    # Spread, not packed: the emptiest host (by the share of memory promised) goes first.
    assert placements[0] != placements[1]
    # Each machine was built by its host's driver, not by the default one.
    for server, name in zip(servers, placements, strict=True):
        host_driver = await worker.hypervisors.for_host(await host_id(factory, str(name)))
        assert isinstance(host_driver, SimulatorDriver) and host_driver is not driver
        assert host_driver.machines[server["id"]].running
        assert server["id"] not in driver.machines
    listed = await hosts_json(settings)
    assert listed[big]["used"] == {"vcpus": 2, "memory_mb": 2048, "disk_gb": 50}
    assert listed[big]["servers"] == 2 and listed[small]["servers"] == 1

    before = await balance(tenant)
    refused = await tenant.post("/api/v1/servers/", json=create_body(location, "one-too-many"))
    assert refused.status_code == 503, refused.text
    error = refused.json()["error"]
    assert error["code"] == "location_full"
    assert location in error["message"] and "Starter VPS" in error["message"]
    assert "Retry-After" not in refused.headers
    assert await balance(tenant) == before  # nothing charged, nothing to refund
    names = [s["name"] for s in (await tenant.get("/api/v1/servers/")).json()["results"]]
    assert "one-too-many" not in names

    # Deleting a server gives its resources back to its host: the next create fits again.
    freed_host = str(placements[2])
    await delete_and_wait(factory, tenant, servers[2]["id"])
    assert (await hosts_json(settings))[freed_host]["used"]["vcpus"] == (
        listed[freed_host]["used"]["vcpus"] - 1
    )
    again = await tenant.active_server(**create_body(location, "fits-again"))
    assert await placed_on(factory, again["id"]) == freed_host
    for server in (servers[0], servers[1], again):
        await delete_and_wait(factory, tenant, server["id"])
    assert all(
        host["used"] == {"vcpus": 0, "memory_mb": 0, "disk_gb": 0}
        for name, host in (await hosts_json(settings)).items()
        if name in {big, small}
    )


async def test_a_draining_host_takes_nothing_new_and_is_removed_only_when_empty(
    factory: Factory, settings: Settings
) -> None:
    location = await new_location(factory)
    first = await add_host(settings, location, vcpus=8, memory_mb=8192, disk_gb=500)
    second = await add_host(settings, location, vcpus=8, memory_mb=8192, disk_gb=500)
    tenant = await factory.tenant("1000.00")
    on_first = await tenant.active_server(**create_body(location, "a"))
    assert await placed_on(factory, on_first["id"]) == first  # equal load: the lower id

    assert (await vps(settings, "hosts", "drain", first)).exit_code == 0
    for i in range(3):
        server = await tenant.active_server(**create_body(location, f"b{i}"))
        assert await placed_on(factory, server["id"]) == second
    # The drained host keeps serving its server: power actions still reach it.
    stop = await tenant.post(f"/api/v1/servers/{on_first['id']}/stop/")
    assert stop.status_code in (200, 202), stop.text
    await tenant.wait_for_status(on_first["id"], "stopped")

    assert (await vps(settings, "hosts", "drain", second)).exit_code == 0
    refused = await tenant.post("/api/v1/servers/", json=create_body(location, "nowhere"))
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "location_full"
    assert (await vps(settings, "hosts", "activate", second)).exit_code == 0
    await tenant.active_server(**create_body(location, "back"))

    busy = await vps(settings, "hosts", "remove", first)
    assert busy.exit_code != 0 and "still has 1 server" in busy.output
    active = await vps(settings, "hosts", "remove", second)
    assert active.exit_code != 0 and "Drain host" in active.output
    await delete_and_wait(factory, tenant, on_first["id"])
    removed = await vps(settings, "hosts", "remove", first)
    assert removed.exit_code == 0, removed.output
    assert first not in await hosts_json(settings)
    assert (await tenant.get(f"/api/v1/servers/{on_first['id']}/")).status_code == 404


async def test_concurrent_creates_never_promise_a_host_more_than_it_has(
    factory: Factory, settings: Settings
) -> None:
    location = await new_location(factory)
    name = await add_host(settings, location, vcpus=5, memory_mb=5 * 1024, disk_gb=5 * 25)
    tenants = [await factory.tenant("1000.00") for _ in range(4)]
    before = {t.name: await balance(t) for t in tenants}

    async def create(i: int) -> tuple[Tenant, httpx.Response]:
        tenant = tenants[i % len(tenants)]
        body = create_body(location, f"race-{i}")
        return tenant, await tenant.post("/api/v1/servers/", json=body)

    outcomes = await asyncio.gather(*(create(i) for i in range(12)))
    responses = [response for _, response in outcomes]
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 5 + [503] * 7, [r.text for r in responses]
    host = (await hosts_json(settings))[name]
    assert host["used"] == {"vcpus": 5, "memory_mb": 5 * 1024, "disk_gb": 125}
    assert host["servers"] == 5
    # Only the accepted creates were charged.
    plans = (await tenants[0].get("/api/v1/plans/")).json()
    price = Decimal(next(p["monthly_price"] for p in plans if p["id"] == STARTER))
    spent = sum([before[t.name] - await balance(t) for t in tenants], Decimal(0))
    assert spent == 5 * price
    for tenant, response in outcomes:
        if response.status_code == 201:
            await delete_and_wait(factory, tenant, response.json()["id"])
    assert (await hosts_json(settings))[name]["used"]["vcpus"] == 0


async def test_locations_without_hosts_keep_the_default_driver(
    factory: Factory, driver: SimulatorDriver
) -> None:
    tenant = await factory.tenant("100.00")
    server = await tenant.active_server()
    assert await placed_on(factory, server["id"]) is None
    assert driver.machines[server["id"]].running
    await delete_and_wait(factory, tenant, server["id"])


async def test_the_orphan_sweep_looks_at_every_host(
    factory: Factory, settings: Settings, worker: Worker, driver: SimulatorDriver
) -> None:
    location = await new_location(factory)
    name = await add_host(settings, location, vcpus=4, memory_mb=4096, disk_gb=100)
    tenant = await factory.tenant("100.00")
    live = await tenant.active_server(**create_body(location, "live"))
    elsewhere = await tenant.active_server()  # on the default driver
    host_driver = await worker.hypervisors.for_host(await host_id(factory, name))
    # A leftover on the host of a server that lives on another driver, and one of nobody.
    await host_driver.create(spec_for(elsewhere["id"]))
    unknown = 2**31 - 3
    await host_driver.create(spec_for(unknown))

    destroyed = await worker.sweep_orphans()

    assert {elsewhere["id"], unknown} <= set(destroyed)
    assert live["id"] not in destroyed and elsewhere["id"] in driver.machines
    assert isinstance(host_driver, SimulatorDriver)
    assert set(host_driver.machines) >= {live["id"]}
    assert elsewhere["id"] not in host_driver.machines and unknown not in host_driver.machines
    for server in (live, elsewhere):
        await delete_and_wait(factory, tenant, server["id"])


async def test_a_removed_host_s_driver_is_dropped_and_never_serves_another_host(
    factory: Factory, settings: Settings, worker: Worker
) -> None:
    location = await new_location(factory)
    first = await add_host(settings, location, vcpus=1, memory_mb=1024, disk_gb=25)
    first_id = await host_id(factory, first)
    first_driver = await worker.hypervisors.for_host(first_id)
    assert first_id in {found for found, _ in await worker.hypervisors.everywhere()}
    for command in ("drain", "remove"):
        assert (await vps(settings, "hosts", command, first)).exit_code == 0

    assert first_id not in {found for found, _ in await worker.hypervisors.everywhere()}
    with pytest.raises(HostUnreachable, match="not registered"):
        await worker.hypervisors.for_host(first_id)
    # SQLite gives the highest id again once its row is gone: the next host may carry it.
    second = await add_host(settings, location, vcpus=1, memory_mb=1024, disk_gb=25)
    second_driver = await worker.hypervisors.for_host(await host_id(factory, second))
    assert second_driver is not first_driver
    for command in ("drain", "remove"):
        assert (await vps(settings, "hosts", command, second)).exit_code == 0


async def test_host_registration_is_validated_field_by_field(
    factory: Factory, settings: Settings
) -> None:
    location = await new_location(factory)
    cases = [
        (["BAD_NAME", "--driver", "simulator"], "name:"),
        (["hv-x", "--driver", "xen"], "driver:"),
        (["hv-x", "--driver", "libvirt"], "uri:"),
        (["hv-x", "--driver", "libvirt", "--uri", "not a uri"], "uri:"),
        (["hv-x", "--driver", "simulator", "--uri", "qemu:///system"], "uri:"),
        (["hv-x", "--driver", "simulator", "--cpu-overcommit", "0"], "cpu_overcommit:"),
        (["hv-x", "--driver", "simulator", "--memory-overcommit", "nan"], "memory_overcommit:"),
    ]
    for args, expected in cases:
        result = await vps(
            settings,
            "hosts",
            "add",
            *args,
            "--location",
            location,
            "--vcpus",
            "4",
            "--memory-mb",
            "4096",
            "--disk-gb",
            "10",
        )
        assert result.exit_code != 0 and expected in result.output, (args, result.output)
    zero = await vps(
        settings, "hosts", "add", "hv-z", "--location", location, "--driver", "simulator",
        "--vcpus", "0", "--memory-mb", "1", "--disk-gb", "1",
    )  # fmt: skip
    assert zero.exit_code != 0 and "vcpus:" in zero.output
    nowhere = await vps(
        settings, "hosts", "add", "hv-n", "--location", "no-such-place", "--driver",
        "simulator", "--vcpus", "1", "--memory-mb", "1", "--disk-gb", "1",
    )  # fmt: skip
    assert nowhere.exit_code != 0 and "No location 'no-such-place'" in nowhere.output
    name = await add_host(settings, location, vcpus=1, memory_mb=1024, disk_gb=25)
    twice = await vps(
        settings, "hosts", "add", name, "--location", location, "--driver", "simulator",
        "--vcpus", "1", "--memory-mb", "1", "--disk-gb", "1",
    )  # fmt: skip
    assert twice.exit_code != 0 and "exists" in twice.output
    for command in ("drain", "activate", "remove"):
        missing = await vps(settings, "hosts", command, "no-such-host")
        assert missing.exit_code != 0 and "No host named" in missing.output
    # Updating keeps what is not given, and validates what is.
    assert (await vps(settings, "hosts", "update", name, "--cpu-overcommit", "3")).exit_code == 0
    updated = (await hosts_json(settings))[name]
    assert updated["capacity"]["vcpus"] == 1 and updated["limits"]["vcpus"] == 3
    bad = await vps(settings, "hosts", "update", name, "--disk-gb", "-1")
    assert bad.exit_code != 0 and "disk_gb:" in bad.output


async def test_a_libvirt_host_s_capacity_can_be_read_from_it(
    factory: Factory, settings: Settings, tmp_path: Path
) -> None:
    pytest.importorskip("libvirt", reason="the libvirt extra is not installed")
    location = await new_location(factory)
    # A host of libvirt's test driver described by a file: each connection to it has a state
    # of its own (`test:///default` is shared by the whole process, and the session's worker
    # would hold it open for the libvirt driver's own tests).
    node = tmp_path / "node.xml"
    node.write_text(
        "<node><cpu><mhz>2000</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets>"
        "<cores>6</cores><threads>2</threads><active>12</active></cpu>"
        "<memory>8388608</memory>"  # KiB: 8192 MB
        "<pool type='dir'><name>vm-pool</name><target><path>/vm-pool</path></target></pool>"
        "</node>"
    )
    uri = f"test://{node}"
    pool = {"VPS_LIBVIRT_STORAGE_POOL": "vm-pool"}
    name = unique_name("hv")[:20]
    added = await vps(
        settings, "hosts", "add", name, "--location", location, "--uri", uri,
        "--detect", "--disk-gb", "40", env=pool,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    # (The test driver sizes every directory pool at 100 GB.)
    assert "detected: 12 CPU threads, 8192 MB of memory, storage pool 100 GB" in added.output
    host = (await hosts_json(settings))[name]
    # Memory less a tenth for the host itself; what was given (--disk-gb) wins.
    assert host["capacity"] == {
        "vcpus": 12,
        "memory_mb": 7372,
        "disk_gb": 40,
        "cpu_overcommit": 4.0,
        "memory_overcommit": 1.0,
        "disk_overcommit": 1.0,
    }
    no_pool = await vps(
        settings, "hosts", "add", "hv-nopool", "--location", location, "--uri", uri,
        "--detect", env={"VPS_LIBVIRT_STORAGE_POOL": "missing"},
    )  # fmt: skip
    assert no_pool.exit_code != 0 and "no storage pool 'missing'" in no_pool.output
    unreachable = await vps(
        settings, "hosts", "add", "hv-gone", "--location", location, "--uri",
        "test:///no/such/file.xml", "--detect", env=pool,
    )  # fmt: skip
    assert unreachable.exit_code != 0 and "cannot connect to test:///no/such/file.xml" in (
        unreachable.output
    )
    simulated = await vps(
        settings, "hosts", "add", "hv-sim", "--location", location, "--driver", "simulator",
        "--detect",
    )  # fmt: skip
    assert simulated.exit_code != 0 and "--detect reads a libvirt host" in simulated.output
    nothing = await vps(settings, "hosts", "add", "hv-x", "--location", location, "--uri", "x:///")
    assert nothing.exit_code != 0 and "give --vcpus, --memory-mb and --disk-gb" in nothing.output
    assert not {"hv-nopool", "hv-gone", "hv-sim", "hv-x"} & set(await hosts_json(settings))
