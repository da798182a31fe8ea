"""Build the configured driver by name.

The libvirt driver is imported only when it is asked for: libvirt-python is an optional
extra (`vps[libvirt]`), and the rest of the product runs without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from vps.drivers.base import HypervisorDriver
from vps.drivers.simulator import SimulatorDriver, SimulatorTimings


class DriverUnavailable(Exception):
    """The configured driver cannot be loaded on this machine (a missing package)."""


def build_simulator(
    *,
    provision_seconds: float,
    action_seconds: float,
    delete_seconds: float,
    failure_rate: float = 0.0,
    state_file: Path | None = None,
) -> HypervisorDriver:
    return SimulatorDriver(
        SimulatorTimings(
            provision_seconds=provision_seconds,
            action_seconds=action_seconds,
            delete_seconds=delete_seconds,
        ),
        failure_rate=failure_rate,
        state_file=state_file,
    )


def require_libvirt() -> None:
    """DriverUnavailable unless the libvirt driver can be loaded."""
    try:
        import vps.drivers.libvirt  # noqa: F401
    except ImportError as error:
        raise DriverUnavailable(
            "VPS_DRIVER=libvirt needs libvirt-python: pip install 'vps[libvirt]' "
            f"(it builds against the libvirt development headers) ({error})"
        ) from error


def build_libvirt(
    *,
    uri: str,
    domain_type: Literal["kvm", "qemu"],
    storage_pool: str,
    images: Mapping[str, str],
    bridge: str | None,
    shutdown_timeout_seconds: float,
    reboot_timeout_seconds: float,
) -> HypervisorDriver:
    require_libvirt()
    from vps.drivers.libvirt import LibvirtConfig, LibvirtDriver

    return LibvirtDriver(
        LibvirtConfig(
            uri=uri,
            domain_type=domain_type,
            storage_pool=storage_pool,
            images=images,
            bridge=bridge,
            shutdown_timeout_seconds=shutdown_timeout_seconds,
            reboot_timeout_seconds=reboot_timeout_seconds,
        )
    )


def probe_libvirt_host(uri: str, storage_pool: str) -> tuple[int, int, int | None]:
    """CPU threads, memory MB and storage pool GB (None: no such pool) of a libvirt host."""
    require_libvirt()
    from vps.drivers.libvirt import probe_host

    found = probe_host(uri, storage_pool)
    return found.cpus, found.memory_mb, found.disk_gb
