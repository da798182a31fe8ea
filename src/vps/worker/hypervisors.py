"""The drivers a worker talks to: its default driver, and one per registered host.

A host's driver is built the first time a job or a sweep needs it and kept while the host
stays as it was registered (a libvirt driver keeps its connection open). A driver is closed
once its host is removed, and replaced if another host comes to carry its id (SQLite hands
out the highest id again after that row is deleted). Servers with no host run on the
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
        self._by_host: dict[int, tuple[HostTarget, HypervisorDriver]] = {}
        self._lock = asyncio.Lock()

    async def for_host(self, host_id: int | None) -> HypervisorDriver:
        """The driver of a host (None: the default driver). HostUnreachable if it cannot be
        built: the job is retried, so a fixed configuration lets it go on."""
        if host_id is None:
            return self.default
        # Read each time (a primary-key lookup): the id alone may name another host by now.
        async with self._database.read() as session:
            target = await hosts.target(session, host_id)
        if target is None:
            raise HostUnreachable(f"host {host_id} is not registered")
        return await self._driver_of(target)

    async def _driver_of(self, target: HostTarget) -> HypervisorDriver:
        kept = self._by_host.get(target.id)
        if kept is not None and kept[0] == target:
            return kept[1]
        async with self._lock:
            kept = self._by_host.get(target.id)
            if kept is None or kept[0] != target:
                if kept is not None:
                    await _close(kept[1])
                self._by_host[target.id] = (target, self._built(target))
            return self._by_host[target.id][1]

    def _built(self, target: HostTarget) -> HypervisorDriver:
        try:
            return self._build(target)
        except DriverError:
            raise
        except Exception as error:
            # DriverUnavailable (a missing package), a bad setting: say which host it is.
            raise HostUnreachable(f"host {target.name}: {error}") from error

    async def everywhere(self) -> list[tuple[int | None, HypervisorDriver]]:
        """The default driver and the driver of every registered host that can be built;
        the drivers of hosts removed since the last call are closed."""
        async with self._database.read() as session:
            targets = await hosts.targets(session)
        await self._forget_all_but({target.id for target in targets})
        found: list[tuple[int | None, HypervisorDriver]] = [(None, self.default)]
        for target in targets:
            try:
                found.append((target.id, await self._driver_of(target)))
            except DriverError as error:
                log.warning("host %s: %s", target.name, error)
        return found

    async def _forget_all_but(self, registered: set[int]) -> None:
        async with self._lock:
            removed = [self._by_host.pop(i)[1] for i in list(self._by_host) if i not in registered]
        for driver in removed:
            await _close(driver)

    async def close(self) -> None:
        for driver in [self.default, *(driver for _, driver in self._by_host.values())]:
            await _close(driver)
        self._by_host.clear()


async def _close(driver: HypervisorDriver) -> None:
    with contextlib.suppress(Exception):
        await driver.close()
