"""The drivers a worker talks to: its default driver, and one per registered host.

A host's driver is built the first time a job or a sweep needs it and kept for the life of
the worker (a libvirt driver keeps its connection open). Servers with no host run on the
default driver (`VPS_DRIVER`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from vps.db.engine import Database
from vps.drivers.base import DriverError, HypervisorDriver, RetriableDriverError
from vps.services import hosts
from vps.services.hosts import HostTarget

log = logging.getLogger(__name__)

DriverFactory = Callable[[HostTarget], HypervisorDriver]


class HostUnreachable(RetriableDriverError):
    """The host's driver cannot be built here (its host is unknown, or a package is missing)."""

    code = "host_unavailable"


class Hypervisors:
    def __init__(self, default: HypervisorDriver, build: DriverFactory, database: Database):
        self.default = default
        self._build = build
        self._database = database
        self._by_host: dict[int, HypervisorDriver] = {}
        self._lock = asyncio.Lock()

    async def for_host(self, host_id: int | None) -> HypervisorDriver:
        """The driver of a host (None: the default driver). HostUnreachable if it cannot be
        built: the job is retried, so a fixed configuration lets it go on."""
        if host_id is None:
            return self.default
        driver = self._by_host.get(host_id)
        if driver is not None:
            return driver
        async with self._lock:
            if host_id not in self._by_host:
                async with self._database.read() as session:
                    target = await hosts.target(session, host_id)
                if target is None:
                    raise HostUnreachable(f"host {host_id} is not registered")
                self._by_host[host_id] = self._built(target)
            return self._by_host[host_id]

    def _built(self, target: HostTarget) -> HypervisorDriver:
        try:
            return self._build(target)
        except DriverError:
            raise
        except Exception as error:
            # DriverUnavailable (a missing package), a bad setting: say which host it is.
            raise HostUnreachable(f"host {target.name}: {error}") from error

    async def everywhere(self) -> list[tuple[int | None, HypervisorDriver]]:
        """The default driver and the driver of every registered host that can be built."""
        async with self._database.read() as session:
            targets = await hosts.targets(session)
        found: list[tuple[int | None, HypervisorDriver]] = [(None, self.default)]
        for target in targets:
            try:
                found.append((target.id, await self.for_host(target.id)))
            except DriverError as error:
                log.warning("host %s: %s", target.name, error)
        return found

    async def close(self) -> None:
        for driver in [self.default, *self._by_host.values()]:
            with contextlib.suppress(Exception):
                await driver.close()
        self._by_host.clear()
