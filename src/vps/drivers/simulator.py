"""A simulated hypervisor: a real product for client developers, and the default driver.

It keeps its machines in memory, takes the configured time for each operation, and reports
plausible resource usage within each plan's limits. Machines it does not know (because the
process restarted) are treated as existing: the control plane's record is the truth, as a
real hypervisor would still have them after a control-plane restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from dataclasses import dataclass, field

from vps.drivers.base import MachineSpec, ResourceUsage


@dataclass(frozen=True)
class SimulatorTimings:
    provision_seconds: float = 5.0
    action_seconds: float = 2.0
    delete_seconds: float = 0.5


@dataclass
class _Machine:
    running: bool = True
    boots: int = 1


@dataclass
class SimulatorDriver:
    timings: SimulatorTimings = field(default_factory=SimulatorTimings)
    machines: dict[int, _Machine] = field(default_factory=dict)
    # How many times create() actually built a machine, per server: a test of idempotency.
    builds: dict[int, int] = field(default_factory=dict)

    async def _take(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    def _machine(self, server_id: int) -> _Machine:
        return self.machines.setdefault(server_id, _Machine())

    async def create(self, spec: MachineSpec) -> None:
        if spec.server_id in self.machines:
            return
        await self._take(self.timings.provision_seconds)
        if spec.server_id not in self.machines:
            self.machines[spec.server_id] = _Machine()
            self.builds[spec.server_id] = self.builds.get(spec.server_id, 0) + 1

    async def start(self, server_id: int) -> None:
        await self._take(self.timings.action_seconds)
        self._machine(server_id).running = True

    async def stop(self, server_id: int) -> None:
        await self._take(self.timings.action_seconds)
        self._machine(server_id).running = False

    async def reboot(self, server_id: int) -> None:
        await self._take(self.timings.action_seconds)
        machine = self._machine(server_id)
        machine.running = True
        machine.boots += 1

    async def delete(self, server_id: int) -> None:
        await self._take(self.timings.delete_seconds)
        self.machines.pop(server_id, None)

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
