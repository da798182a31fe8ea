"""The lifecycle worker.

It claims servers in a transitional status with a lease, calls the driver, and records the
outcome with fenced writes. While a driver call runs, a heartbeat renews the lease; a worker
that dies stops renewing, its lease expires, and another worker (or this one, restarted)
claims the server and does the work again: driver calls are idempotent, so doing it twice
is safe. Any number of workers can run against one database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError, OperationalError

from vps.db.engine import Database
from vps.db.types import utcnow
from vps.domain.states import ServerStatus
from vps.drivers.base import DriverError, HypervisorDriver, PermanentDriverError, ResourceUsage
from vps.services import lifecycle
from vps.services.lifecycle import AddressesUnavailable, Job, RetryPolicy

log = logging.getLogger("vps.worker")


@dataclass(frozen=True)
class WorkerConfig:
    concurrency: int = 16
    poll_seconds: float = 1.0
    lease_seconds: float = 15.0
    usage_sample_seconds: float = 10.0
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=5, base_seconds=1.0, max_seconds=60.0)
    )


def new_worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    def __init__(
        self,
        database: Database,
        driver: HypervisorDriver,
        config: WorkerConfig,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.driver = driver
        self.config = config
        self.clock = clock
        self.worker_id = new_worker_id()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._jobs: set[asyncio.Task[None]] = set()
        self._last_usage_sweep = 0.0

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.config.lease_seconds)

    def wake(self) -> None:
        """Look for work now (called by the API in the same process after a change)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        log.info("worker %s started", self.worker_id)
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            try:
                await self._tick()
                if loop.time() - self._last_usage_sweep >= self.config.usage_sample_seconds:
                    self._last_usage_sweep = loop.time()
                    await self._sample_usage()
            except (OperationalError, DBAPIError, OSError) as error:
                # The database went away: keep going, the next tick reconnects.
                log.warning("worker tick failed, will retry: %s", error.__class__.__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)
            self._wake.clear()
        for task in list(self._jobs):
            task.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        log.info("worker %s stopped", self.worker_id)

    async def run_until_idle(self, deadline_seconds: float = 30.0) -> None:
        """Process work until none is left (for tests and one-shot runs)."""
        deadline = asyncio.get_running_loop().time() + deadline_seconds
        while asyncio.get_running_loop().time() < deadline:
            claimed = await self._tick()
            if self._jobs:
                await asyncio.gather(*self._jobs, return_exceptions=True)
            elif not claimed:
                return
        raise TimeoutError("work did not finish in time")

    async def _tick(self) -> int:
        free = self.config.concurrency - len(self._jobs)
        if free <= 0:
            return 0
        now = self.clock()
        async with self.database.write() as session:
            claimed = await lifecycle.claim(session, self.worker_id, now, self.lease, free)
        for server_id in claimed:
            task = asyncio.create_task(self._process(server_id))
            self._jobs.add(task)
            task.add_done_callback(self._job_done)
        return len(claimed)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        self._jobs.discard(task)
        self._wake.set()

    async def _process(self, server_id: int) -> None:
        try:
            async with self.database.read() as session:
                job = await lifecycle.load_job(session, server_id, self.worker_id)
            if job is None:
                return
            heartbeat = asyncio.create_task(self._heartbeat(server_id))
            try:
                await self._do(job)
            finally:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease will expire and another attempt will be made.
            log.exception("job for server %s failed unexpectedly", server_id)

    async def _heartbeat(self, server_id: int) -> None:
        interval = self.config.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.database.write() as session:
                    held = await lifecycle.renew(
                        session, server_id, self.worker_id, self.clock() + self.lease
                    )
            except (OperationalError, DBAPIError, OSError):
                continue
            if not held:
                log.warning("lost the lease of server %s", server_id)
                return

    async def _do(self, job: Job) -> None:
        try:
            if job.status is ServerStatus.PROVISIONING:
                async with self.database.write() as session:
                    job = await lifecycle.ensure_addresses(
                        session, job, self.worker_id, self.clock()
                    )
            usage = await self._call_driver(job)
        except AddressesUnavailable as error:
            await self._fail(job, "no_addresses", str(error))
            return
        except PermanentDriverError as error:
            await self._fail(job, error.code, str(error) or error.__class__.__name__)
            return
        except DriverError as error:
            message = str(error) or error.__class__.__name__
            async with self.database.write() as session:
                again = await lifecycle.retry_later(
                    session,
                    job,
                    self.worker_id,
                    self.clock(),
                    self.config.retry,
                    error.code,
                    message,
                )
            if not again:
                await self._fail(job, error.code, f"gave up after retries: {message}")
            return
        async with self.database.write() as session:
            done = await lifecycle.complete(session, job, self.worker_id, self.clock(), usage)
        if not done:
            # The server changed meanwhile (deleted during provisioning, say): hand it back at
            # once so the work its new status asks for starts without waiting for the lease.
            log.info("server %s changed while it was worked on; releasing it", job.server_id)
            async with self.database.write() as session:
                await lifecycle.release(session, job.server_id, self.worker_id)

    async def _fail(self, job: Job, code: str, message: str) -> None:
        async with self.database.write() as session:
            await lifecycle.fail(session, job, self.worker_id, self.clock(), code, message)

    async def _call_driver(self, job: Job) -> ResourceUsage | None:
        driver, server_id = self.driver, job.server_id
        if job.status is ServerStatus.PROVISIONING:
            await driver.create(job.spec)
            return await driver.usage(job.spec, running=True)
        if job.status is ServerStatus.STARTING:
            await driver.start(server_id)
            return await driver.usage(job.spec, running=True)
        if job.status is ServerStatus.STOPPING:
            await driver.stop(server_id)
            return await driver.usage(job.spec, running=False)
        if job.status is ServerStatus.REBOOTING:
            await driver.reboot(server_id)
            return await driver.usage(job.spec, running=True)
        await driver.delete(server_id)
        return None

    async def _sample_usage(self) -> None:
        now = self.clock()
        every = timedelta(seconds=self.config.usage_sample_seconds)
        async with self.database.read() as session:
            due = await lifecycle.servers_needing_usage(session, now, every, limit=500)
        if not due:
            return
        samples = []
        for spec, running in due:
            try:
                samples.append((spec.server_id, await self.driver.usage(spec, running=running)))
            except DriverError:
                continue
        async with self.database.write() as session:
            for server_id, usage in samples:
                await lifecycle.record_usage(session, server_id, usage, now)
