"""The async client against the emulator's real HTTP API."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from tests.sdk.conftest import ed25519_public_key, unique_name
from vps.client import (
    AsyncClient,
    AsyncServer,
    BadRequest,
    InsufficientCredits,
    InvalidState,
    NotFound,
    PreconditionFailed,
    WaitFailed,
    WaitTimeout,
)
from vps.testing import Emulator, EmulatorAccount


async def _create(client: AsyncClient, **overrides: object) -> AsyncServer:
    arguments: dict[str, object] = {
        "name": unique_name("async"),
        "plan_id": 1,
        "os_id": 5,
        "location": "us-west",
    }
    arguments.update(overrides)
    return await client.servers.create(**arguments)  # type: ignore[arg-type]


async def test_lifecycle(async_client: AsyncClient) -> None:
    server = await _create(async_client)
    assert isinstance(server, AsyncServer)
    assert server.status == "provisioning"
    assert server.action is not None and server.message
    active = await server.wait_until("active", timeout=30)
    assert active.status == "active" and active.ip_address is not None

    renamed = await async_client.servers.update(
        server.id, name="async-renamed", if_match=active.etag
    )
    assert renamed.name == "async-renamed"
    with pytest.raises(PreconditionFailed) as stale:
        await async_client.servers.update(server.id, hostname="a.example.com", if_match=active.etag)
    assert stale.value.current_etag == (await async_client.servers.get(server.id)).etag
    replaced = await async_client.servers.replace(
        server.id, name="async-replaced", hostname="b.example.com", backups_enabled=True
    )
    assert (replaced.hostname, replaced.backups_enabled) == ("b.example.com", True)

    stopping = await replaced.stop()
    assert stopping.action is not None and stopping.action.kind == "stop"
    stopped = await stopping.wait_until("stopped", timeout=30)
    with pytest.raises(InvalidState) as caught:
        await async_client.servers.reboot(server.id)
    assert caught.value.current_status == "stopped"
    started = await stopped.start()
    await started.wait_until("active", timeout=30)
    rebooting = await async_client.servers.reboot(server.id)
    assert rebooting.action is not None
    assert (await async_client.actions.wait(rebooting.action.id, timeout=30)).status == "succeeded"

    history = await async_client.servers.actions(server.id)
    assert sorted(action.kind for action in history.results) == [
        "create",
        "reboot",
        "start",
        "stop",
    ]

    deleting = await async_client.servers.delete(server.id)
    assert deleting.kind == "delete"
    with pytest.raises(NotFound):
        await async_client.servers.get(server.id)
    assert (await async_client.actions.wait(deleting.id, timeout=30)).done


async def test_lists_catalog_keys_and_account(async_client: AsyncClient) -> None:
    created = [await _create(async_client) for _ in range(3)]
    page = await async_client.servers.list(page_size=2)
    assert page.count == 3 and len(page.results) == 2
    assert [s.id async for s in async_client.servers.iterate(page_size=2)] == [
        s.id for s in created
    ]
    assert any(plan.id == 1 for plan in await async_client.plans.list())
    assert any(os.id == 5 for os in await async_client.operating_systems.list())
    assert any(loc.code == "us-west" for loc in await async_client.locations.list())

    key = await async_client.ssh_keys.create(name="async-key", public_key=ed25519_public_key())
    assert (await async_client.ssh_keys.get(key.id)).fingerprint == key.fingerprint
    assert (await async_client.ssh_keys.list()).count == 1
    await async_client.ssh_keys.delete(key.id)
    assert (await async_client.ssh_keys.list()).count == 0

    account = await async_client.account.get()
    assert account.balance == Decimal("28.00")  # 100 - 3 x 24
    ledger = await async_client.account.transactions(page_size=3)
    assert [entry.kind for entry in ledger.results] == ["charge"] * 3
    audit = await async_client.account.audit_log()
    assert audit.count >= 5


async def test_typed_errors(
    async_client: AsyncClient, vps_account: EmulatorAccount, vps_emulator: Emulator
) -> None:
    with pytest.raises(BadRequest) as bad:
        await _create(async_client, os_id=424_242)
    assert bad.value.field == "os_id"
    vps_emulator.set_credits(vps_account.name, "10.00")
    with pytest.raises(InsufficientCredits) as short:
        await _create(async_client)
    assert (short.value.required, short.value.available) == (Decimal("24.00"), Decimal("10.00"))


async def test_wait_failed_and_wait_timeout(
    async_client: AsyncClient, vps_emulator: Emulator
) -> None:
    vps_emulator.fail_next("create", message="no capacity")
    failing = await _create(async_client)
    with pytest.raises(WaitFailed) as failed:
        await async_client.servers.wait_until(failing.id, "active", timeout=30)
    assert failed.value.status == "error"
    assert failed.value.error is not None and "no capacity" in failed.value.error.message

    vps_emulator.set_timings(provision_seconds=60)
    slow = await _create(async_client)
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as late:
        await slow.wait_until("active", timeout=1.0)
    assert 1.0 <= time.monotonic() - started < 6.0
    assert isinstance(late.value.last, AsyncServer)
    assert late.value.last.status == "provisioning"


async def test_event_streams(async_client: AsyncClient) -> None:
    async with async_client.events() as account_stream:
        server = await _create(async_client)
        statuses = []
        async with asyncio.timeout(30):
            async for event in account_stream:
                if event.type == "server.status" and event.server_id == server.id:
                    assert event.status is not None
                    statuses.append(event.status)
                    if event.status == "active":
                        break
    assert statuses[-1] == "active"
    resume_after = account_stream.last_event_id
    assert resume_after is not None

    async with async_client.servers.events(server.id) as server_stream:
        await async_client.servers.delete(server.id)
        async with asyncio.timeout(30):
            seen = [event.status async for event in server_stream if event.type == "server.status"]
    assert seen[-1] == "deleted"
