"""The worker destroys machines whose server is gone, failed or unknown, and only those."""

from __future__ import annotations

from tests.factories import Factory, spec_for
from vps.drivers.simulator import SimulatorDriver
from vps.worker.engine import Worker


async def test_sweep_destroys_only_orphans(
    factory: Factory, worker: Worker, driver: SimulatorDriver
) -> None:
    tenant = await factory.tenant()
    live = await tenant.active_server()
    gone = await tenant.active_server()
    assert (await tenant.delete(f"/api/v1/servers/{gone['id']}/")).status_code == 204
    await factory.wait_until_deleted(gone["id"])
    # A stale worker's late build for the deleted server, and a machine nobody knows.
    await driver.create(spec_for(gone["id"]))
    unknown = 2**31 - 2
    await driver.create(spec_for(unknown))

    destroyed = await worker.sweep_orphans()

    assert {gone["id"], unknown} <= set(destroyed)
    assert live["id"] not in destroyed
    assert live["id"] in driver.machines
    assert gone["id"] not in driver.machines and unknown not in driver.machines
