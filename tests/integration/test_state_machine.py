"""The state machine through HTTP: every visible status against every operation, races between
requests, and a delete that lands while the machine is being built."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.factories import Factory, Tenant, eventually, unique_name
from vps.db.engine import Database
from vps.db.models import Action, IpAllocation, Server
from vps.drivers.base import MachineSpec
from vps.drivers.simulator import SimulatorDriver

VISIBLE = [
    "provisioning",
    "active",
    "starting",
    "stopping",
    "stopped",
    "rebooting",
    "suspended",
    "error",
]
POWER = ["start", "stop", "reboot"]
OPERATIONS = [*POWER, "delete", "patch", "put"]
# (action, status it is allowed from) -> (the status it moves to, the spec's message)
ALLOWED = {
    ("start", "stopped"): ("starting", "Server is starting"),
    ("stop", "active"): ("stopping", "Server is stopping"),
    ("reboot", "active"): ("rebooting", "Server is rebooting"),
}
LOCATION = "us-east"


async def snapshot(database: Database, server_id: int) -> dict[str, Any]:
    """What a refused request must leave alone: status, version, timestamps and actions."""
    async with database.read() as session:
        row = (
            await session.execute(
                select(
                    Server.status,
                    Server.version,
                    Server.updated_at,
                    Server.name,
                    Server.deleted_at,
                ).where(Server.id == server_id)
            )
        ).one()
        actions = (
            await session.execute(
                select(Action.id, Action.kind, Action.status)
                .where(Action.server_id == server_id)
                .order_by(Action.id)
            )
        ).all()
    return {"server": tuple(row), "actions": [tuple(a) for a in actions]}


async def db_status(database: Database, server_id: int) -> str:
    async with database.read() as session:
        status = await session.scalar(select(Server.status).where(Server.id == server_id))
    assert status is not None
    return status


async def action_kinds(database: Database, server_id: int) -> list[str]:
    async with database.read() as session:
        kinds = await session.scalars(
            select(Action.kind).where(Action.server_id == server_id).order_by(Action.id)
        )
        return list(kinds)


async def discard(factory: Factory, tenant: Tenant, server_id: int) -> None:
    """Delete a test's server and let the worker destroy it, so its addresses go back."""
    await tenant.delete(f"/api/v1/servers/{server_id}/")
    await factory.release_hold(server_id)


async def held_server(factory: Factory, tenant: Tenant, status: str) -> int:
    """An active server (with a machine and addresses), then pinned in `status`."""
    server = await tenant.active_server(name="matrix-01", location=LOCATION)
    await factory.force_status(server["id"], status)
    return int(server["id"])


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("status", VISIBLE)
async def test_every_visible_status_and_operation(
    factory: Factory, status: str, operation: str
) -> None:
    tenant = await factory.tenant()
    sid = await held_server(factory, tenant, status)
    path = f"/api/v1/servers/{sid}/"
    try:
        before = await snapshot(factory.database, sid)
        assert before["server"][0] == status

        if operation == "delete":
            response = await tenant.delete(path)
            assert response.status_code == 204, response.text
            assert response.content == b""
            assert (await tenant.get(path)).status_code == 404
            assert (await tenant.get("/api/v1/servers/")).json()["count"] == 0
            assert (await tenant.post(f"{path}start/")).status_code == 404
            assert (await tenant.patch(path, json={"name": "gone"})).status_code == 404
            assert await db_status(factory.database, sid) == "deleting"
            assert await action_kinds(factory.database, sid) == [
                *(a[1] for a in before["actions"]),
                "delete",
            ]
            return

        if operation in ("patch", "put"):
            if operation == "patch":
                response = await tenant.patch(path, json={"name": "renamed-01"})
            else:
                response = await tenant.put(
                    path,
                    json={
                        "name": "renamed-01",
                        "hostname": "renamed.example.com",
                        "backups_enabled": True,
                    },
                )
            assert response.status_code == 200, response.text
            assert response.json()["name"] == "renamed-01"
            assert response.json()["status"] == status
            shown = (await tenant.get(path)).json()
            assert shown["name"] == "renamed-01"
            assert shown["status"] == status
            if operation == "put":
                assert shown["hostname"] == "renamed.example.com"
                assert shown["backups_enabled"] is True
            after = await snapshot(factory.database, sid)
            assert after["server"][0] == status
            assert after["actions"] == before["actions"]
            return

        response = await tenant.post(f"{path}{operation}/")
        if (operation, status) in ALLOWED:
            target, message = ALLOWED[(operation, status)]
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["status"] == "success"
            assert body["message"] == message
            assert body["server"] == {"id": sid, "name": "matrix-01", "status": target}
            assert body["action"]["kind"] == operation
            assert body["action"]["status"] == "running"
            assert (await tenant.get(path)).json()["status"] == target
            after = await snapshot(factory.database, sid)
            assert after["server"][0] == target
            assert after["actions"][:-1] == before["actions"]
            assert after["actions"][-1][1:] == (operation, "running")
        else:
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["code"] == "invalid_state"
            assert error["current_status"] == status
            assert error["message"]
            assert (await tenant.get(path)).json()["status"] == status
            assert await snapshot(factory.database, sid) == before
    finally:
        await discard(factory, tenant, sid)


async def _stopped_server(tenant: Tenant) -> dict[str, Any]:
    server = await tenant.active_server(location=LOCATION)
    assert (await tenant.post(f"/api/v1/servers/{server['id']}/stop/")).status_code == 200
    return await tenant.wait_for_status(server["id"], "stopped")


def gate_driver(
    monkeypatch: pytest.MonkeyPatch, driver: SimulatorDriver, methods: list[str], server_id: int
) -> asyncio.Event:
    """Make the driver's `methods` wait for the returned event for one server, so that the
    worker cannot finish an accepted action while a burst of requests is still arriving."""
    gate = asyncio.Event()
    for method in methods:
        original: Callable[[int], Awaitable[None]] = getattr(driver, method)

        async def gated(sid: int, original: Callable[[int], Awaitable[None]] = original) -> None:
            if sid == server_id:
                await gate.wait()
            await original(sid)

        monkeypatch.setattr(driver, method, gated)
    return gate


@pytest.mark.parametrize(
    ("action", "start_from", "transitional", "settles_in"),
    [
        ("stop", "active", "stopping", "stopped"),
        ("reboot", "active", "rebooting", "active"),
        ("start", "stopped", "starting", "active"),
    ],
)
async def test_twenty_concurrent_power_actions_exactly_one_wins(
    factory: Factory,
    driver: SimulatorDriver,
    monkeypatch: pytest.MonkeyPatch,
    action: str,
    start_from: str,
    transitional: str,
    settles_in: str,
) -> None:
    tenant = await factory.tenant()
    if start_from == "active":
        server = await tenant.active_server(location=LOCATION)
    else:
        server = await _stopped_server(tenant)
    sid = server["id"]
    gate = gate_driver(monkeypatch, driver, [action], sid)
    try:
        kinds_before = await action_kinds(factory.database, sid)
        responses = await asyncio.gather(
            *(tenant.post(f"/api/v1/servers/{sid}/{action}/") for _ in range(20))
        )
        codes = [r.status_code for r in responses]
        assert codes.count(200) == 1, codes
        assert codes.count(400) == 19, codes
        for response in responses:
            if response.status_code == 400:
                error = response.json()["error"]
                assert error["code"] == "invalid_state"
                assert error["current_status"] == transitional
        assert await action_kinds(factory.database, sid) == [*kinds_before, action]
        assert (await tenant.get(f"/api/v1/servers/{sid}/")).json()["status"] == transitional
        gate.set()
        await tenant.wait_for_status(sid, settles_in)
    finally:
        gate.set()
        await discard(factory, tenant, sid)


async def test_concurrent_stops_and_reboots_only_one_of_all_wins(
    factory: Factory, driver: SimulatorDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await factory.tenant()
    sid = (await tenant.active_server(location=LOCATION))["id"]
    gate = gate_driver(monkeypatch, driver, ["stop", "reboot"], sid)
    try:
        kinds_before = await action_kinds(factory.database, sid)
        requests = [tenant.post(f"/api/v1/servers/{sid}/stop/") for _ in range(10)]
        requests += [tenant.post(f"/api/v1/servers/{sid}/reboot/") for _ in range(10)]
        responses = await asyncio.gather(*requests)
        winners = [r for r in responses if r.status_code == 200]
        assert len(winners) == 1, [r.status_code for r in responses]
        losers = [r for r in responses if r.status_code != 200]
        assert [r.status_code for r in losers] == [400] * 19
        won = winners[0].json()["action"]["kind"]
        assert await action_kinds(factory.database, sid) == [*kinds_before, won]
        gate.set()
        await tenant.wait_for_status(sid, "stopped" if won == "stop" else "active")
    finally:
        gate.set()
        await discard(factory, tenant, sid)


async def test_concurrent_deletes_accept_exactly_one(factory: Factory) -> None:
    tenant = await factory.tenant()
    sid = (await tenant.active_server(location=LOCATION))["id"]
    try:
        responses = await asyncio.gather(
            *(tenant.delete(f"/api/v1/servers/{sid}/") for _ in range(10))
        )
        codes = sorted(r.status_code for r in responses)
        assert codes == [204] + [404] * 9
        assert (await action_kinds(factory.database, sid)).count("delete") == 1
    finally:
        await discard(factory, tenant, sid)


async def test_delete_during_provisioning_leaves_no_machine(
    factory: Factory, driver: SimulatorDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique_name("doomed")
    building = asyncio.Event()
    gate = asyncio.Event()
    original_create = driver.create

    async def gated_create(spec: MachineSpec) -> None:
        if spec.name == name:
            building.set()
            await gate.wait()
        await original_create(spec)

    monkeypatch.setattr(driver, "create", gated_create)
    tenant = await factory.tenant()
    try:
        created = await tenant.create_server(name=name, location=LOCATION)
        sid = created["id"]
        path = f"/api/v1/servers/{sid}/"
        await asyncio.wait_for(building.wait(), 10)
        assert (await tenant.get(path)).json()["status"] == "provisioning"
        response = await tenant.delete(path)
        assert response.status_code == 204, response.text
        assert (await tenant.get(path)).status_code == 404
    finally:
        gate.set()

    async def machine_destroyed() -> bool:
        status = await db_status(factory.database, sid)
        return status == "deleted" and sid not in driver.machines

    await eventually(machine_destroyed, f"server {sid} is deleted and its machine is gone")
    # The machine was really built (after the delete was accepted) and then destroyed.
    assert driver.builds.get(sid) == 1
    assert sid not in driver.machines
    assert (await tenant.get(path)).status_code == 404
    assert (await tenant.get("/api/v1/servers/")).json()["count"] == 0
    async with factory.database.read() as session:
        held = await session.scalar(
            select(func.count()).select_from(IpAllocation).where(IpAllocation.server_id == sid)
        )
    assert held == 0
    kinds = await action_kinds(factory.database, sid)
    assert kinds == ["create", "delete"]


async def test_refused_action_on_another_accounts_server_is_404(factory: Factory) -> None:
    owner = await factory.tenant()
    stranger = await factory.tenant()
    sid = await held_server(factory, owner, "active")
    try:
        for operation in POWER:
            response = await stranger.post(f"/api/v1/servers/{sid}/{operation}/")
            assert response.status_code == 404
        assert (await stranger.delete(f"/api/v1/servers/{sid}/")).status_code == 404
        assert (await owner.get(f"/api/v1/servers/{sid}/")).json()["status"] == "active"
    finally:
        await discard(factory, owner, sid)
