"""Shared fixtures: a migrated database (SQLite, or PostgreSQL when VPS_TEST_DATABASE_URL is
set), the API served in-process with a fast simulator and a running worker, and factories.

Tests share one database per run; each test makes its own accounts, so tenant isolation
keeps them independent (and is exercised all the time).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.factories import Factory
from vps.api.app import create_app
from vps.config import Settings
from vps.db import migrate
from vps.db.engine import Database
from vps.drivers.simulator import SimulatorDriver, SimulatorTimings
from vps.runtime import host_driver_factory
from vps.services.lifecycle import RetryPolicy
from vps.worker.engine import Worker, WorkerConfig

FAST = SimulatorTimings(provision_seconds=0.05, action_seconds=0.02, delete_seconds=0.01)


def _admin_dsn(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )


@contextmanager
def new_database_url(directory: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file in `directory`, or a new PostgreSQL database
    next to VPS_TEST_DATABASE_URL (dropped afterwards)."""
    configured = os.environ.get("VPS_TEST_DATABASE_URL")
    if not configured:
        yield f"sqlite:///{directory / 'vps.db'}"
        return
    name = f"vps_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_dsn(configured)

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(admin)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    yield make_url(configured).set(database=name).render_as_string(hide_password=False)
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The database shared by the in-process tests of this run."""
    with new_database_url(tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=Path(tmp_path_factory.mktemp("data")),
        demo=False,
        sim_provision_seconds=FAST.provision_seconds,
        sim_action_seconds=FAST.action_seconds,
        sim_delete_seconds=FAST.delete_seconds,
        rate_limits="off",
    )


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.resolved_database_url)
    await migrate.upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
def driver() -> SimulatorDriver:
    return SimulatorDriver(FAST)


@pytest.fixture(scope="session")
async def worker(
    settings: Settings, database: Database, driver: SimulatorDriver
) -> AsyncIterator[Worker]:
    config = WorkerConfig(
        concurrency=64,
        poll_seconds=0.05,
        lease_seconds=3.0,
        usage_sample_seconds=0.5,
        retry=RetryPolicy(max_attempts=3, base_seconds=0.05, max_seconds=0.2),
    )
    # Registered hosts (tests/integration/test_hosts.py) get simulators of their own.
    engine = Worker(database, driver, config, host_drivers=host_driver_factory(settings))
    task = asyncio.create_task(engine.run())
    yield engine
    engine.stop()
    await task


@pytest.fixture(scope="session")
async def client(
    settings: Settings, database: Database, worker: Worker
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database, wake_worker=worker.wake)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def factory(client: httpx.AsyncClient, database: Database) -> Factory:
    return Factory(client, database)
