"""The driver contract (vps.drivers.base), checked against every driver configuration.

Each configuration comes with an observer that reads a machine's power state from the
hypervisor itself (the simulator's inventory, libvirt through a connection of its own), so
the checks hold a driver to what it did, not to what it says.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from vps.drivers.base import (
    HypervisorDriver,
    MachineSpec,
    PermanentDriverError,
    RetriableDriverError,
)
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


@dataclass(frozen=True)
class Harness:
    driver: HypervisorDriver
    # Whether the hypervisor itself has the server's machine running.
    is_running: Callable[[int], bool]


@asynccontextmanager
async def simulator_in_memory(_tmp: Path) -> AsyncIterator[Harness]:
    driver = SimulatorDriver(INSTANT)
    yield Harness(driver, lambda server_id: driver.machines[server_id].running)


@asynccontextmanager
async def simulator_shared_file(tmp: Path) -> AsyncIterator[Harness]:
    state = tmp / "sim.db"
    driver = SimulatorDriver(INSTANT, state_file=state)
    yield Harness(driver, lambda server_id: read_inventory(state)[0][server_id].running)


@asynccontextmanager
async def libvirt_test_driver(_tmp: Path) -> AsyncIterator[Harness]:
    """libvirt's in-process `test:///default`, with the spec's base image in its pool. The
    test driver keeps its state while any connection to it is open, and starts over from
    its default state once all are closed: this one is held for the whole test."""
    libvirt = pytest.importorskip("libvirt")
    pytest.importorskip("pycdlib")
    from vps.drivers.libvirt import LibvirtConfig, LibvirtDriver

    hypervisor = libvirt.open("test:///default")
    if hypervisor.storagePoolLookupByName("default-pool").listVolumes():
        # An earlier test's objects, still in reference cycles, keep its state alive.
        hypervisor.close()
        gc.collect()
        hypervisor = libvirt.open("test:///default")
    try:
        hypervisor.storagePoolLookupByName("default-pool").createXML(
            "<volume><name>ubuntu-22.04.qcow2</name><capacity unit='GiB'>2</capacity>"
            "<target><format type='qcow2'/></target></volume>",
            0,
        )
        config = LibvirtConfig(
            uri="test:///default",
            domain_type="kvm",
            storage_pool="default-pool",
            images={SPEC.image: "ubuntu-22.04.qcow2"},
            bridge="br-test",
        )
        driver = LibvirtDriver(config)

        def is_running(server_id: int) -> bool:
            return bool(hypervisor.lookupByName(f"vps-{server_id}").isActive())

        try:
            yield Harness(driver, is_running)
        finally:
            await driver.close()
    finally:
        hypervisor.close()


HARNESSES: dict[str, Callable[[Path], AbstractAsyncContextManager[Harness]]] = {
    "simulator-memory": simulator_in_memory,
    "simulator-shared-file": simulator_shared_file,
    "libvirt-test-driver": libvirt_test_driver,
}


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    async with HARNESSES[request.param](tmp_path) as made:
        yield made


async def test_create_is_idempotent(harness: Harness) -> None:
    driver = harness.driver
    await driver.create(SPEC)
    await driver.create(SPEC)
    await asyncio.gather(*(driver.create(SPEC) for _ in range(5)))
    assert await driver.list_machines() == [SPEC.server_id]
    assert harness.is_running(SPEC.server_id)


async def test_create_of_a_stopped_machine_leaves_it_running(harness: Harness) -> None:
    """A build retried after its machine was stopped (by hand, or by a crash) ends with the
    running machine the contract promises, not a second one."""
    driver = harness.driver
    await driver.create(SPEC)
    await driver.stop(SPEC.server_id)
    assert not harness.is_running(SPEC.server_id)
    await driver.create(SPEC)
    assert harness.is_running(SPEC.server_id)
    assert await driver.list_machines() == [SPEC.server_id]


async def test_delete_of_a_missing_machine_succeeds(harness: Harness) -> None:
    driver = harness.driver
    await driver.delete(999)
    await driver.create(SPEC)
    await driver.delete(SPEC.server_id)
    await driver.delete(SPEC.server_id)
    assert await driver.list_machines() == []


async def test_power_calls_are_idempotent_and_usage_follows(harness: Harness) -> None:
    driver = harness.driver
    await driver.create(SPEC)
    await driver.stop(SPEC.server_id)
    await driver.stop(SPEC.server_id)
    assert not harness.is_running(SPEC.server_id)
    stopped = await driver.usage(SPEC, running=False)
    assert stopped.cpu_percent == 0 and stopped.memory_used_mb == 0
    await driver.start(SPEC.server_id)
    await driver.start(SPEC.server_id)
    await driver.reboot(SPEC.server_id)
    assert harness.is_running(SPEC.server_id)
    running = await driver.usage(SPEC, running=True)
    assert 0 < running.cpu_percent <= 100
    assert 0 < running.memory_used_mb <= SPEC.memory_mb
    assert 0 < running.disk_used_gb <= SPEC.disk_gb
    assert 0 <= running.bandwidth_used_gb <= SPEC.bandwidth_gb


async def test_reboot_of_a_stopped_machine_leaves_it_running(harness: Harness) -> None:
    driver = harness.driver
    await driver.create(SPEC)
    await driver.stop(SPEC.server_id)
    await driver.reboot(SPEC.server_id)
    assert harness.is_running(SPEC.server_id)


async def test_list_machines_names_every_machine(harness: Harness) -> None:
    driver = harness.driver
    assert await driver.list_machines() == []
    await driver.create(SPEC)
    await driver.create(replace(SPEC, server_id=7))
    assert await driver.list_machines() == [7, SPEC.server_id]
    await driver.delete(SPEC.server_id)
    assert await driver.list_machines() == [7]


# The simulator's own promises, beyond the contract.


@pytest.mark.parametrize("kind", ["simulator-memory", "simulator-shared-file"])
async def test_the_simulator_builds_a_machine_once(kind: str, tmp_path: Path) -> None:
    async with HARNESSES[kind](tmp_path) as made:
        driver = made.driver
        assert isinstance(driver, SimulatorDriver)
        await driver.create(SPEC)
        await driver.create(SPEC)
        await asyncio.gather(*(driver.create(SPEC) for _ in range(5)))
        assert driver.builds[SPEC.server_id] == 1


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
