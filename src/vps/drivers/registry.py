"""Build the configured driver by name."""

from __future__ import annotations

from vps.drivers.base import HypervisorDriver
from vps.drivers.simulator import SimulatorDriver, SimulatorTimings

DRIVER_NAMES = ("simulator",)


def build_driver(
    name: str, *, provision_seconds: float, action_seconds: float, delete_seconds: float
) -> HypervisorDriver:
    if name == "simulator":
        return SimulatorDriver(
            SimulatorTimings(
                provision_seconds=provision_seconds,
                action_seconds=action_seconds,
                delete_seconds=delete_seconds,
            )
        )
    raise ValueError(f"unknown driver {name!r}; known: {', '.join(DRIVER_NAMES)}")
