"""The driver contract (vps.drivers.base), checked against every driver configuration."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from vps.drivers.base import MachineSpec, PermanentDriverError, RetriableDriverError
from vps.drivers.simulator import SimulatorDriver, SimulatorTimings, read_inventory

INSTANT = SimulatorTimings(provision_seconds=0, action_seconds=0, delete_seconds=0)
SPEC = MachineSpec(
    server_id=42,
    name="web-01",
    hostname="web01.example.com",
    vcpus=2,
    memory_mb=4096,
    disk_gb=80,
    bandwidth_gb=2048,
    image="ubuntu-22.04",
    ipv4_address="203.0.113.10",
    ipv6_address="2001:db8:1::10",
    ssh_public_key=None,
)

DriverFactory = Callable[[Path], SimulatorDriver]
DRIVERS: dict[str, DriverFactory] = {
    "simulator-memory": lambda _tmp: SimulatorDriver(INSTANT),
    "simulator-shared-file": lambda tmp: SimulatorDriver(INSTANT, state_file=tmp / "sim.db"),
}


@pytest.fixture(params=sorted(DRIVERS))
def make_driver(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], SimulatorDriver]:
    factory = DRIVERS[request.param]
    return lambda: factory(tmp_path)


async def test_create_is_idempotent(make_driver: Callable[[], SimulatorDriver]) -> None:
    driver = make_driver()
    await driver.create(SPEC)
    await driver.create(SPEC)
    await asyncio.gather(*(driver.create(SPEC) for _ in range(5)))
    assert driver.builds[SPEC.server_id] == 1
    assert driver.machines[SPEC.server_id].running


async def test_delete_of_a_missing_machine_succeeds(
    make_driver: Callable[[], SimulatorDriver],
) -> None:
    driver = make_driver()
    await driver.delete(999)
    await driver.create(SPEC)
    await driver.delete(SPEC.server_id)
    await driver.delete(SPEC.server_id)
    assert SPEC.server_id not in driver.machines


async def test_power_calls_are_idempotent_and_usage_follows(
    make_driver: Callable[[], SimulatorDriver],
) -> None:
    driver = make_driver()
    await driver.create(SPEC)
    await driver.stop(SPEC.server_id)
    await driver.stop(SPEC.server_id)
    assert not driver.machines[SPEC.server_id].running
    stopped = await driver.usage(SPEC, running=False)
    assert stopped.cpu_percent == 0 and stopped.memory_used_mb == 0
    await driver.start(SPEC.server_id)
    await driver.start(SPEC.server_id)
    await driver.reboot(SPEC.server_id)
    assert driver.machines[SPEC.server_id].running
    running = await driver.usage(SPEC, running=True)
    assert 0 < running.cpu_percent <= 100
    assert 0 < running.memory_used_mb <= SPEC.memory_mb
    assert 0 < running.disk_used_gb <= SPEC.disk_gb
    assert 0 <= running.bandwidth_used_gb <= SPEC.bandwidth_gb


async def test_a_shared_file_is_one_hypervisor_for_several_processes(tmp_path: Path) -> None:
    state = tmp_path / "sim.db"
    first, second = (SimulatorDriver(INSTANT, state_file=state) for _ in range(2))
    await asyncio.gather(first.create(SPEC), second.create(SPEC))
    machines, builds = read_inventory(state)
    assert set(machines) == {SPEC.server_id} and builds == {SPEC.server_id: 1}
    await second.stop(SPEC.server_id)
    assert not read_inventory(state)[0][SPEC.server_id].running
    await first.delete(SPEC.server_id)
    assert read_inventory(state)[0] == {}
    # The machine is gone for every process: powering it on is a permanent error.
    with pytest.raises(PermanentDriverError):
        await second.start(SPEC.server_id)


async def test_failure_rate_fails_a_share_of_calls_retriably() -> None:
    driver = SimulatorDriver(INSTANT, failure_rate=1.0)
    outcomes = []
    for _ in range(400):
        try:
            await driver.create(SPEC)
            outcomes.append("ok")
        except RetriableDriverError:
            outcomes.append("failed")
    # With rate 1, half the calls fail before the work; until the machine exists the others
    # fail after it. So about 200 of 400 fail: 150 is five standard deviations below.
    assert outcomes.count("failed") >= 150
    assert driver.builds.get(SPEC.server_id, 0) <= 1


async def test_list_machines_names_every_machine(
    make_driver: Callable[[], SimulatorDriver],
) -> None:
    driver = make_driver()
    assert await driver.list_machines() == []
    await driver.create(SPEC)
    assert await driver.list_machines() == [SPEC.server_id]
    await driver.delete(SPEC.server_id)
    assert await driver.list_machines() == []
