"""A simulated hypervisor: a real product for client developers, and the default driver.

It keeps its machines in memory (or in a file shared by several processes), takes the
configured time for each operation, can fail a configured share of calls, and reports
plausible resource usage within each plan's limits. Machines it does not know (because the
process restarted) are treated as existing: the control plane's record is the truth, as a
real hypervisor would still have them after a control-plane restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from vps.drivers.base import (
    MachineSpec,
    PermanentDriverError,
    ResourceUsage,
    RetriableDriverError,
)


@dataclass(frozen=True)
class SimulatorTimings:
    provision_seconds: float = 5.0
    action_seconds: float = 2.0
    delete_seconds: float = 0.5


# The operations a fault can be injected into (`SimulatorDriver.fail_next`).
FAULTABLE_OPERATIONS = ("create", "start", "stop", "reboot", "delete")


@dataclass
class InjectedFault:
    """The next `count` calls of `operation` fail, before doing any work."""

    operation: str
    count: int
    retriable: bool
    message: str


@dataclass
class _Machine:
    running: bool = True
    boots: int = 1


class _FileInventory:
    """Machines kept in a SQLite file, so that several processes (API, workers) share one
    simulated hypervisor, as they would share a real one. Each call is one short
    transaction; creation is an atomic insert-if-absent, so a machine is built once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS machines (server_id INTEGER PRIMARY KEY, "
                "running INTEGER NOT NULL, boots INTEGER NOT NULL)"
            )
            connection.execute(
                "CREATE TABLE IF NOT EXISTS builds (server_id INTEGER PRIMARY KEY, "
                "count INTEGER NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        return connection

    def create_if_absent(self, server_id: int) -> bool:
        with closing(self._connect()) as connection:
            connection.execute("BEGIN IMMEDIATE")
            inserted = connection.execute(
                "INSERT OR IGNORE INTO machines VALUES (?, 1, 1)", (server_id,)
            ).rowcount
            if inserted:
                connection.execute(
                    "INSERT INTO builds VALUES (?, 1) "
                    "ON CONFLICT(server_id) DO UPDATE SET count = count + 1",
                    (server_id,),
                )
            connection.execute("COMMIT")
            return bool(inserted)

    def set_running(self, server_id: int, running: bool, *, reboot: bool = False) -> bool:
        """False when there is no such machine."""
        with closing(self._connect()) as connection:
            return bool(
                connection.execute(
                    "UPDATE machines SET running = ?, boots = boots + ? WHERE server_id = ?",
                    (int(running), int(reboot), server_id),
                ).rowcount
            )

    def remove(self, server_id: int) -> None:
        with closing(self._connect()) as connection:
            connection.execute("DELETE FROM machines WHERE server_id = ?", (server_id,))

    def snapshot(self) -> tuple[dict[int, _Machine], dict[int, int]]:
        with closing(self._connect()) as connection:
            machines = {
                sid: _Machine(bool(running), boots)
                for sid, running, boots in connection.execute("SELECT * FROM machines")
            }
            builds = dict(connection.execute("SELECT server_id, count FROM builds").fetchall())
        return machines, builds


def read_inventory(path: Path) -> tuple[dict[int, _Machine], dict[int, int]]:
    """The machines of a shared simulator file, and how often each server's was built."""
    return _FileInventory(path).snapshot()


@dataclass
class SimulatorDriver:
    """In memory by default; with `state_file`, shared by every process that names it.

    `failure_rate` makes that share of calls fail with a retriable error, half of them after
    the work was done (as when a response is lost), to exercise retries and idempotency.
    """

    timings: SimulatorTimings = field(default_factory=SimulatorTimings)
    failure_rate: float = 0.0
    state_file: Path | None = None
    machines: dict[int, _Machine] = field(default_factory=dict)
    # How many times create() actually built a machine, per server: a test of idempotency.
    builds: dict[int, int] = field(default_factory=dict)
    # Faults a client developer asked for, consumed in order (see `fail_next`).
    faults: list[InjectedFault] = field(default_factory=list)
    _random: random.Random = field(default_factory=random.Random, repr=False)
    _file: _FileInventory | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.state_file is not None:
            self._file = _FileInventory(self.state_file)

    async def _take(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    def fail_next(
        self, operation: str, *, count: int = 1, retriable: bool = False, message: str = ""
    ) -> InjectedFault:
        """Make the next `count` calls of `operation` fail: with a permanent error (the
        server ends in its failure status at once) or a retriable one (the worker retries
        with backoff, and gives up after its maximum attempts)."""
        if operation not in FAULTABLE_OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}")
        if count < 1:
            raise ValueError("count must be at least 1")
        fault = InjectedFault(
            operation, count, retriable, message or f"injected {operation} failure"
        )
        self.faults.append(fault)
        return fault

    def _injected_fault(self, operation: str) -> None:
        for fault in self.faults:
            if fault.operation == operation:
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
                error = RetriableDriverError if fault.retriable else PermanentDriverError
                raise error(fault.message)

    def _maybe_fail(self, when: str) -> None:
        if self.failure_rate and self._random.random() < self.failure_rate / 2:
            raise RetriableDriverError(f"simulated hypervisor failure ({when} the operation)")

    def _machine(self, server_id: int) -> _Machine:
        return self.machines.setdefault(server_id, _Machine())

    async def create(self, spec: MachineSpec) -> None:
        self._injected_fault("create")
        self._maybe_fail("before")
        if spec.server_id in self.machines and self._file is None:
            self.machines[spec.server_id].running = True  # the contract: a running machine
            return
        await self._take(self.timings.provision_seconds)
        if self._file is not None:
            built = await asyncio.to_thread(self._file.create_if_absent, spec.server_id)
            if not built:
                await asyncio.to_thread(self._file.set_running, spec.server_id, True)
            self._machine(spec.server_id).running = True
            if built:
                self.builds[spec.server_id] = self.builds.get(spec.server_id, 0) + 1
        elif spec.server_id not in self.machines:
            self.machines[spec.server_id] = _Machine()
            self.builds[spec.server_id] = self.builds.get(spec.server_id, 0) + 1
        self._maybe_fail("after")

    async def _power(self, operation: str, server_id: int, running: bool) -> None:
        self._injected_fault(operation)
        self._maybe_fail("before")
        reboot = operation == "reboot"
        await self._take(self.timings.action_seconds)
        machine = self._machine(server_id)
        machine.running = running
        machine.boots += int(reboot)
        if self._file is not None and not await asyncio.to_thread(
            self._file.set_running, server_id, running, reboot=reboot
        ):
            # A shared inventory knows every machine: a missing one is really gone.
            raise PermanentDriverError(f"no machine for server {server_id}")
        self._maybe_fail("after")

    async def start(self, server_id: int) -> None:
        await self._power("start", server_id, True)

    async def stop(self, server_id: int) -> None:
        await self._power("stop", server_id, False)

    async def reboot(self, server_id: int) -> None:
        await self._power("reboot", server_id, True)

    async def delete(self, server_id: int) -> None:
        self._injected_fault("delete")
        self._maybe_fail("before")
        await self._take(self.timings.delete_seconds)
        self.machines.pop(server_id, None)
        if self._file is not None:
            await asyncio.to_thread(self._file.remove, server_id)
        self._maybe_fail("after")

    async def list_machines(self) -> list[int]:
        if self._file is not None:
            machines, _builds = await asyncio.to_thread(self._file.snapshot)
            return sorted(machines)
        return sorted(self.machines)

    async def usage(self, spec: MachineSpec, *, running: bool) -> ResourceUsage:
        # Deterministic per server, drifting slowly with time: plausible, and stable enough
        # for a client developer to assert on ranges.
        seed = int.from_bytes(hashlib.sha256(str(spec.server_id).encode()).digest()[:4], "big")
        phase = (time.time() / 300.0) + (seed % 1000)
        wave = (math.sin(phase) + 1) / 2
        disk = max(1, int(spec.disk_gb * (0.15 + 0.3 * ((seed >> 8) % 100) / 100)))
        bandwidth = int(spec.bandwidth_gb * 0.2 * ((seed >> 16) % 100) / 100)
        if not running:
            return ResourceUsage(0.0, 0, disk, bandwidth)
        cpu = round(2.0 + 60.0 * wave, 1)
        memory = int(spec.memory_mb * (0.25 + 0.5 * wave))
        return ResourceUsage(cpu, memory, disk, bandwidth)

    async def close(self) -> None:
        return None
