"""The driver contract: what the control plane asks of a hypervisor.

Drivers know nothing of the database or the API. Every call is keyed by our server id, and
native ids and states stay inside the driver. Postconditions are part of the contract and
are tested against every driver by one contract suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class MachineSpec:
    """Everything a hypervisor needs to build or describe a server's machine."""

    server_id: int
    name: str
    hostname: str | None
    vcpus: int
    memory_mb: int
    disk_gb: int
    bandwidth_gb: int
    image: str
    ipv4_address: str | None
    ipv6_address: str | None
    ssh_public_key: str | None
    # The networks the addresses were allocated from (`203.0.113.0/24`), whose first host is
    # the gateway: known to a build (for the guest's network configuration), else None.
    ipv4_network: str | None = None
    ipv6_network: str | None = None


@dataclass(frozen=True)
class ResourceUsage:
    cpu_percent: float
    memory_used_mb: int
    disk_used_gb: int
    bandwidth_used_gb: int


class DriverError(Exception):
    """A driver call failed. `code` is stable and recorded on the failed action."""

    code = "driver_error"


class RetriableDriverError(DriverError):
    """A transient failure (hypervisor busy, connection lost): the same call may succeed."""

    code = "driver_retriable"


class PermanentDriverError(DriverError):
    """The call cannot succeed as asked (bad image, no capacity): do not retry."""

    code = "driver_permanent"


class HypervisorDriver(Protocol):
    async def create(self, spec: MachineSpec) -> None:
        """Ensure a running machine exists for `spec.server_id`.

        Idempotent: called again for the same server it neither builds a second machine nor
        fails. A failed create leaves no partial machine behind.
        """

    async def start(self, server_id: int) -> None:
        """Power the machine on. Succeeds if it is already running."""

    async def stop(self, server_id: int) -> None:
        """Shut the machine down through its operating system, forcing it off after a
        deadline. Succeeds if it is already off."""

    async def reboot(self, server_id: int) -> None:
        """Restart the machine; it is running when this returns."""

    async def delete(self, server_id: int) -> None:
        """Destroy the machine and its disks. Succeeds if the machine is already gone."""

    async def list_machines(self) -> list[int]:
        """The server ids of every machine on the hypervisor. The worker destroys those whose
        server is gone (a build that gave up, or a stale worker's late create)."""

    async def usage(self, spec: MachineSpec, *, running: bool) -> ResourceUsage:
        """Current resource usage, within the limits of `spec`; no CPU when not running."""

    async def close(self) -> None:
        """Release connections. The driver is not used afterwards."""
