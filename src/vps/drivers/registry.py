"""Build the configured driver by name."""

from __future__ import annotations

from pathlib import Path

from vps.drivers.base import HypervisorDriver
from vps.drivers.simulator import SimulatorDriver, SimulatorTimings

DRIVER_NAMES = ("simulator",)


def build_driver(
    name: str,
    *,
    provision_seconds: float,
    action_seconds: float,
    delete_seconds: float,
    failure_rate: float = 0.0,
    state_file: Path | None = None,
) -> HypervisorDriver:
    if name == "simulator":
        return SimulatorDriver(
            SimulatorTimings(
                provision_seconds=provision_seconds,
                action_seconds=action_seconds,
                delete_seconds=delete_seconds,
            ),
            failure_rate=failure_rate,
            state_file=state_file,
        )
    raise ValueError(f"unknown driver {name!r}; known: {', '.join(DRIVER_NAMES)}")
