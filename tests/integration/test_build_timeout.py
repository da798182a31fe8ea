"""A build that hangs fails at the build timeout, leaves no machine, and is refunded once."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tests.factories import Factory, unique_name
from vps.drivers.base import MachineSpec
from vps.drivers.simulator import SimulatorDriver
from vps.worker.engine import Worker


async def test_hanging_build_times_out_and_is_refunded(
    factory: Factory, worker: Worker, driver: SimulatorDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique_name("hang")
    real_create = driver.create

    async def hanging_create(spec: MachineSpec) -> None:
        if spec.name == name:
            await asyncio.Event().wait()  # never returns: the hypervisor hangs
        await real_create(spec)

    monkeypatch.setattr(driver, "create", hanging_create)
    monkeypatch.setattr(
        worker, "config", dataclasses.replace(worker.config, build_timeout_seconds=0.5)
    )
    tenant = await factory.tenant(credits="100.00")
    created = await tenant.create_server(name=name)

    failed = await tenant.wait_for_status(created["id"], "error")

    assert failed["error"]["code"] == "build_timeout"
    assert failed["ip_address"] is None
    assert created["id"] not in driver.machines
    account = (await tenant.get("/api/v1/account/")).json()
    assert account["balance"] == "100.00"
    refunds = [t for t in account["recent_transactions"] if t["kind"] == "refund"]
    assert len(refunds) == 1 and refunds[0]["server_id"] == created["id"]
