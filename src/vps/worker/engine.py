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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.engine import Database
from vps.db.types import utcnow
from vps.domain.billing import BillingTerms
from vps.domain.states import ServerStatus
from vps.drivers.base import DriverError, HypervisorDriver, PermanentDriverError, ResourceUsage
from vps.services import audit, events, idempotency, lifecycle, renewals
from vps.services.hosts import HostTarget
from vps.services.lifecycle import AddressesUnavailable, Job, LeaseLost, RetryPolicy
from vps.worker.hypervisors import DriverFactory, HostUnreachable, Hypervisors
from vps.worker.notify import listen_for_work

log = logging.getLogger("vps.worker")


class BuildTimedOut(PermanentDriverError):
    """A build ran past the build timeout: it fails (and is refunded) like a permanent error."""

    code = "build_timeout"


# How often a worker looks for paid periods that ended (at most; see runtime.worker_config).
BILLING_SWEEP_SECONDS = 60.0
# Servers renewed per query, and rounds per sweep (a server many periods behind is renewed
# one period per round).
_BILLING_BATCH = 500
_BILLING_ROUNDS = 10


@dataclass(frozen=True)
class WorkerConfig:
    concurrency: int = 16
    poll_seconds: float = 0.5
    lease_seconds: float = 15.0
    usage_sample_seconds: float = 10.0
    orphan_sweep_seconds: float = 60.0
    # How long events are kept for the streams' Last-Event-ID resumption.
    event_retention_seconds: float = 259_200.0
    # How long audit events are kept.
    audit_retention_seconds: float = 31_536_000.0
    build_timeout_seconds: float = 900.0
    billing: BillingTerms = field(default_factory=BillingTerms)
    billing_sweep_seconds: float = BILLING_SWEEP_SECONDS
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=5, base_seconds=1.0, max_seconds=60.0)
    )


def _no_hosts(target: HostTarget) -> HypervisorDriver:
    raise HostUnreachable(f"this worker was not given drivers for hosts ({target.name})")


def new_worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    def __init__(
        self,
        database: Database,
        driver: HypervisorDriver,
        config: WorkerConfig,
        *,
        host_drivers: DriverFactory | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`driver` serves the servers of locations without registered hosts;
        `host_drivers` builds the driver of a registered host (None: hosts cannot be
        reached from this worker, and their jobs wait for one that can)."""
        self.database = database
        self.hypervisors = Hypervisors(driver, host_drivers or _no_hosts, database)
        self.config = config
        self.clock = clock
        self.worker_id = new_worker_id()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._jobs: set[asyncio.Task[None]] = set()
        self._last_usage_sweep = 0.0
        self._last_billing_sweep = 0.0
        self._last_orphan_sweep = 0.0

    @property
    def driver(self) -> HypervisorDriver:
        """The default driver."""
        return self.hypervisors.default

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
        listener = (
            asyncio.create_task(
                listen_for_work(self.database, self._wake, self._stopping, self.config.poll_seconds)
            )
            if self.database.dialect == "postgresql"
            else None
        )
        while not self._stopping.is_set():
            try:
                await self._tick()
                if loop.time() - self._last_usage_sweep >= self.config.usage_sample_seconds:
                    self._last_usage_sweep = loop.time()
                    await self._sample_usage()
                if loop.time() - self._last_billing_sweep >= self.config.billing_sweep_seconds:
                    self._last_billing_sweep = loop.time()
                    await self.billing_step()
                if loop.time() - self._last_orphan_sweep >= self.config.orphan_sweep_seconds:
                    self._last_orphan_sweep = loop.time()
                    await self.sweep_orphans()
                    await self.reap_idempotency_keys()
                    await self.prune_events()
                    await self.prune_audit_log()
            except (OperationalError, DBAPIError, OSError) as error:
                # The database went away: keep going, the next tick reconnects.
                log.warning("worker tick failed, will retry: %s", error.__class__.__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)
            self._wake.clear()
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
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
            job = await lifecycle.load_job(self.database.reader, server_id, self.worker_id)
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
        except LeaseLost:
            log.info("server %s is no longer ours; leaving it", job.server_id)
            return
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
        if job.status is ServerStatus.PROVISIONING:
            # A build that gave up may still have made a machine (a lost response, say):
            # destroy it before the server is marked failed and its addresses released.
            # Should this fail too, the orphan sweep destroys it later.
            with contextlib.suppress(DriverError):
                driver = await self.hypervisors.for_host(job.host_id)
                await driver.delete(job.server_id)
        async with self.database.write() as session:
            await lifecycle.fail(session, job, self.worker_id, self.clock(), code, message)

    async def _call_driver(self, job: Job) -> ResourceUsage | None:
        driver, server_id = await self.hypervisors.for_host(job.host_id), job.server_id
        if job.status is ServerStatus.PROVISIONING:
            deadline = job.created_at + timedelta(seconds=self.config.build_timeout_seconds)
            remaining = (deadline - self.clock()).total_seconds()
            try:
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(driver.create(job.spec), remaining)
            except TimeoutError:
                raise BuildTimedOut(
                    f"the build did not finish within {self.config.build_timeout_seconds:g} s"
                ) from None
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
        for server in due:
            try:
                driver = await self.hypervisors.for_host(server.host_id)
                usage = await driver.usage(server.spec, running=server.running)
            except DriverError:
                continue
            samples.append((server.spec.server_id, usage))
        # In id order, and never waiting long for a row another sweep holds: two workers'
        # sweeps cannot deadlock, nor hold each other up.
        async with self.database.write() as session:
            await lifecycle.usage_without_lock_waits(session)
            for server_id, usage in sorted(samples, key=lambda sample: sample[0]):
                await lifecycle.record_usage(session, server_id, usage, now)

    async def sweep_orphans(self) -> list[int]:
        """Destroy machines whose server is gone, failed or unknown; returns their ids.

        Fencing stops a stale worker's database writes, not its driver calls: a worker that
        lost its lease while building can still finish building after the server was deleted.
        This level-based sweep (as Nova's cleanup of running deleted instances) removes such
        machines, and those of builds whose cleanup failed.
        """
        destroyed: list[int] = []
        for host_id, driver in await self.hypervisors.everywhere():
            try:
                machines = await driver.list_machines()
            except DriverError as error:
                log.warning("could not list machines (host %s): %s", host_id or "default", error)
                continue
            async with self.database.read() as session:
                orphans = await lifecycle.orphan_machines(session, host_id, machines)
            for server_id in orphans:
                log.warning(
                    "destroying orphan machine of server %s (host %s)",
                    server_id,
                    host_id or "default",
                )
                with contextlib.suppress(DriverError):
                    await driver.delete(server_id)
            destroyed += orphans
        return destroyed

    async def reap_idempotency_keys(self) -> int:
        """Delete the idempotency keys past their retention; returns how many went."""
        return await self._in_batches(
            lambda session: idempotency.reap_expired(session, utcnow()), idempotency.REAP_BATCH
        )

    async def prune_events(self) -> int:
        """Delete the events older than their retention; returns how many went."""
        before = utcnow() - timedelta(seconds=self.config.event_retention_seconds)
        return await self._in_batches(
            lambda session: events.prune(session, before), events.PRUNE_BATCH
        )

    async def prune_audit_log(self) -> int:
        """Delete the audit events older than their retention; returns how many went."""
        before = utcnow() - timedelta(seconds=self.config.audit_retention_seconds)
        return await self._in_batches(
            lambda session: audit.prune(session, before), audit.PRUNE_BATCH
        )

    async def _in_batches(
        self, delete_batch: Callable[[AsyncSession], Awaitable[int]], batch: int
    ) -> int:
        """Run `delete_batch` in a transaction of its own until it deletes less than a
        batch (so the write lock is never held for long); returns how many went."""
        total = 0
        while True:
            async with self.database.write() as session:
                removed = await delete_batch(session)
            total += removed
            if removed < batch:
                return total

    async def billing_step(self) -> None:
        """One billing sweep: charge every paid period that ended (suspending servers whose
        account cannot pay), resume suspended servers whose account can pay again (a top-up
        does this at once; this catches a refund, or a top-up that raced a suspension), and
        start powering off suspended machines (as jobs: `run_until_idle` waits for them).

        Run every `billing_sweep_seconds` by `run`; safe in any number of workers at once.
        """
        now, terms = self.clock(), self.config.billing
        for _ in range(_BILLING_ROUNDS):
            async with self.database.read() as session:
                due = await renewals.due_for_renewal(session, now, _BILLING_BATCH)
            progressed = False
            for server_id in due:
                try:
                    async with self.database.write() as session:
                        outcome = await renewals.renew(session, server_id, now, terms)
                except IntegrityError:
                    # A ledger reference that exists already: never charge it twice.
                    log.exception("renewal of server %s refused by the ledger", server_id)
                    continue
                if outcome is not renewals.Renewal.SKIPPED:
                    log.info("server %s: %s", server_id, outcome.value)
                progressed |= outcome is renewals.Renewal.RENEWED
            if not progressed:
                break
        async with self.database.read() as session:
            accounts = await renewals.accounts_with_unpaid_servers(session, _BILLING_BATCH)
        for account_id in accounts:
            async with self.database.write() as session:
                resumed = await renewals.resume_unpaid(session, account_id, now, terms)
            if resumed:
                log.info("resumed servers %s of account %s", resumed, account_id)
        await self._start_power_offs()

    async def _start_power_offs(self) -> None:
        free = self.config.concurrency - len(self._jobs)
        if free <= 0:
            return
        now = self.clock()
        async with self.database.write() as session:
            claimed = await renewals.claim_power_offs(
                session, self.worker_id, now, self.lease, free
            )
        for server_id in claimed:
            task = asyncio.create_task(self._power_off(server_id))
            self._jobs.add(task)
            task.add_done_callback(self._job_done)

    async def _power_off(self, server_id: int) -> None:
        """Stop a suspended server's machine, holding its lease (a resume's start waits)."""
        heartbeat = asyncio.create_task(self._heartbeat(server_id))
        try:
            try:
                async with self.database.read() as session:
                    host_id = await lifecycle.host_of(session, server_id)
                await (await self.hypervisors.for_host(host_id)).stop(server_id)
            except PermanentDriverError as error:
                # The machine cannot be stopped as asked (it is gone): nothing is left running.
                log.warning("power-off of suspended server %s: %s", server_id, error)
            except DriverError as error:
                log.warning(
                    "power-off of suspended server %s failed, will retry: %s", server_id, error
                )
                async with self.database.write() as session:
                    await renewals.power_off_later(
                        session,
                        server_id,
                        self.worker_id,
                        self.clock() + self.config.retry.delay(1),
                    )
                return
            async with self.database.write() as session:
                done = await renewals.powered_off(session, server_id, self.worker_id)
            if not done:
                async with self.database.write() as session:
                    await lifecycle.release(session, server_id, self.worker_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease will expire and the next sweep tries again.
            log.exception("power-off of suspended server %s failed unexpectedly", server_id)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
