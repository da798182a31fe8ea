"""Hypervisor hosts: what an operator may register, and how much a host may hold.

A host offers its physical capacity times an overcommit ratio per resource. The limits are
whole numbers computed once, when the host is registered or changed, so that placement is a
comparison of integers in one conditional UPDATE (see the host repository).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from vps.domain.errors import Problems

HostDriverName = Literal["simulator", "libvirt"]
HOST_DRIVERS: tuple[HostDriverName, ...] = ("simulator", "libvirt")

# A lowercase DNS label: host names show up in logs, metrics and commands.
_HOST_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# scheme[+transport]://[user@][host]/path, as libvirt writes connection URIs.
_LIBVIRT_URI = re.compile(r"[a-z][a-z0-9]*(?:\+[a-z0-9]+)?://[^\s]*")
URI_MAX_LENGTH = 500
# Below 1 keeps part of a host for itself; far above 16, nobody means it.
MIN_OVERCOMMIT = 0.1
MAX_OVERCOMMIT = 64.0


class HostStatus(StrEnum):
    ACTIVE = "active"  # takes new servers
    DRAINING = "draining"  # keeps its servers, takes no new ones


@dataclass(frozen=True)
class Capacity:
    """Physical resources and how far each may be overcommitted."""

    vcpus: int
    memory_mb: int
    disk_gb: int
    cpu_overcommit: float = 1.0
    memory_overcommit: float = 1.0
    disk_overcommit: float = 1.0

    @property
    def vcpu_limit(self) -> int:
        return _limit(self.vcpus, self.cpu_overcommit)

    @property
    def memory_limit_mb(self) -> int:
        return _limit(self.memory_mb, self.memory_overcommit)

    @property
    def disk_limit_gb(self) -> int:
        return _limit(self.disk_gb, self.disk_overcommit)


def _limit(amount: int, ratio: float) -> int:
    # A tiny epsilon so that 3 x 1.1 is 3.3 and not 3.2999999999999998.
    return math.floor(amount * ratio + 1e-9)


@dataclass(frozen=True)
class Demand:
    """What one server takes from its host: its plan's resources."""

    vcpus: int
    memory_mb: int
    disk_gb: int


def check_host(
    problems: Problems, name: str, driver: str, uri: str | None, capacity: Capacity
) -> None:
    """Add a problem for every invalid part of a host's registration."""
    if not _HOST_NAME.fullmatch(name):
        problems.add(
            "name",
            "A host name is 1 to 63 lowercase letters, digits and hyphens, "
            "not starting or ending with a hyphen.",
        )
    if driver not in HOST_DRIVERS:
        problems.add("driver", f"The driver must be one of: {', '.join(HOST_DRIVERS)}.")
    elif driver == "libvirt":
        if not uri:
            problems.add("uri", "A libvirt host needs a connection URI, e.g. qemu:///system.")
        elif len(uri) > URI_MAX_LENGTH or not _LIBVIRT_URI.fullmatch(uri):
            problems.add(
                "uri",
                "Not a libvirt connection URI (e.g. qemu:///system, qemu+ssh://root@hv1/system).",
            )
    elif uri:
        problems.add("uri", "Only libvirt hosts have a connection URI.")
    check_capacity(problems, capacity)


def check_capacity(problems: Problems, capacity: Capacity) -> None:
    for field_name, amount in (
        ("vcpus", capacity.vcpus),
        ("memory_mb", capacity.memory_mb),
        ("disk_gb", capacity.disk_gb),
    ):
        if not 1 <= amount <= 2**31 - 1:
            problems.add(field_name, "Must be a whole number from 1 to 2147483647.")
    for field_name, ratio in (
        ("cpu_overcommit", capacity.cpu_overcommit),
        ("memory_overcommit", capacity.memory_overcommit),
        ("disk_overcommit", capacity.disk_overcommit),
    ):
        if not (math.isfinite(ratio) and MIN_OVERCOMMIT <= ratio <= MAX_OVERCOMMIT):
            problems.add(
                field_name, f"Must be a ratio from {MIN_OVERCOMMIT:g} to {MAX_OVERCOMMIT:g}."
            )
        elif _limit(getattr(capacity, _AMOUNT_OF[field_name]), ratio) > 2**31 - 1:
            problems.add(field_name, "The capacity times this ratio is too large.")


_AMOUNT_OF = {
    "cpu_overcommit": "vcpus",
    "memory_overcommit": "memory_mb",
    "disk_overcommit": "disk_gb",
}
