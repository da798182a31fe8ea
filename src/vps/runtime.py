"""The composition root: settings -> database, driver, worker, application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from vps.api.app import create_app
from vps.config import Settings, parse_images
from vps.db.engine import Database
from vps.domain.billing import BillingTerms
from vps.drivers.base import HypervisorDriver
from vps.drivers.registry import build_libvirt, build_simulator, require_libvirt
from vps.services.emulator import EmulatorControls
from vps.services.hosts import HostTarget
from vps.services.lifecycle import RetryPolicy
from vps.worker.engine import BILLING_SWEEP_SECONDS, Worker, WorkerConfig
from vps.worker.hypervisors import DriverFactory


def build_database(settings: Settings) -> Database:
    return Database(settings.resolved_database_url, pool_size=settings.database_pool_size)


def check_driver(settings: Settings) -> None:
    """DriverUnavailable now, rather than at the first build, when the configured driver
    cannot be loaded (libvirt-python missing)."""
    if settings.driver == "libvirt":
        require_libvirt()


def build_configured_driver(settings: Settings) -> HypervisorDriver:
    """The default driver: the one of locations without registered hosts."""
    if settings.driver == "libvirt":
        return _libvirt(settings, settings.libvirt_uri)
    return _simulator(settings, settings.sim_state_file)


def _libvirt(settings: Settings, uri: str) -> HypervisorDriver:
    return build_libvirt(
        uri=uri,
        domain_type=settings.libvirt_domain_type,
        storage_pool=settings.libvirt_storage_pool,
        images=parse_images(settings.libvirt_images),
        bridge=settings.libvirt_bridge,
        shutdown_timeout_seconds=settings.libvirt_shutdown_timeout_seconds,
        reboot_timeout_seconds=settings.libvirt_reboot_timeout_seconds,
    )


def _simulator(settings: Settings, state_file: Path | None) -> HypervisorDriver:
    return build_simulator(
        provision_seconds=settings.sim_provision_seconds,
        action_seconds=settings.sim_action_seconds,
        delete_seconds=settings.sim_delete_seconds,
        failure_rate=settings.sim_failure_rate,
        state_file=state_file,
    )


def host_driver_factory(settings: Settings) -> DriverFactory:
    """How a worker reaches a registered host: its URI with the libvirt settings, or a
    simulator of its own (its own state file when the simulator's state is shared)."""

    def build(host: HostTarget) -> HypervisorDriver:
        if host.driver == "libvirt":
            assert host.uri is not None  # registration requires it
            return _libvirt(settings, host.uri)
        state_file = settings.sim_state_file
        if state_file is not None:
            name = f"{state_file.stem}-host-{host.id}{state_file.suffix}"
            state_file = state_file.with_name(name)
        return _simulator(settings, state_file)

    return build


def billing_terms(settings: Settings) -> BillingTerms:
    return BillingTerms.from_seconds(settings.billing_period_seconds)


def worker_config(settings: Settings) -> WorkerConfig:
    terms = billing_terms(settings)
    return WorkerConfig(
        concurrency=settings.worker_concurrency,
        poll_seconds=settings.worker_poll_seconds,
        lease_seconds=settings.worker_lease_seconds,
        usage_sample_seconds=settings.usage_sample_seconds,
        orphan_sweep_seconds=settings.worker_orphan_sweep_seconds,
        event_retention_seconds=settings.event_retention_seconds,
        audit_retention_seconds=settings.audit_retention_seconds,
        build_timeout_seconds=settings.build_timeout_seconds,
        billing=terms,
        # Often enough that a renewal is never late by more than a tenth of a period.
        billing_sweep_seconds=min(BILLING_SWEEP_SECONDS, terms.period.total_seconds() / 10),
        retry=RetryPolicy(
            max_attempts=settings.worker_max_attempts,
            base_seconds=settings.worker_retry_base_seconds,
            max_seconds=settings.worker_retry_max_seconds,
        ),
    )


def build_worker(settings: Settings, database: Database) -> Worker:
    return Worker(
        database,
        build_configured_driver(settings),
        worker_config(settings),
        host_drivers=host_driver_factory(settings),
    )


def build_app(settings: Settings) -> FastAPI:
    """The application `vps serve` runs: the API, with the worker embedded when enabled."""
    database = build_database(settings)
    worker = build_worker(settings, database) if settings.embedded_worker else None

    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(worker.run()) if worker else None
        try:
            yield
        finally:
            if worker and task:
                worker.stop()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await worker.hypervisors.close()
            await database.dispose()

    controls = None
    if settings.emulator_controls:
        controls = EmulatorControls(worker.driver if worker else None)
    return create_app(
        settings,
        database,
        wake_worker=worker.wake if worker else (lambda: None),
        lifespan=lifespan,
        emulator=controls,
    )


def app_from_environment() -> FastAPI:
    """Factory for `uvicorn --factory` (each API process builds its own)."""
    return build_app(Settings())
