"""Leases and fenced writes: one worker acts on a server at a time, and a worker that lost
its lease cannot overwrite newer state."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.factories import Factory
from vps.db.engine import Database
from vps.db.models import Server
from vps.db.repositories.servers import ServerRepository
from vps.db.types import utcnow
from vps.services import lifecycle


async def _claim(
    database: Database, server_id: int, owner: str, lease: timedelta, at_offset: timedelta
) -> bool:
    """Claim one server as `owner`, on a clock `at_offset` ahead (only this server, so the
    servers of other tests are never disturbed)."""
    now = utcnow() + at_offset
    async with database.write() as session:
        taken = await ServerRepository(session).claim([server_id], owner, now, now + lease)
    return taken == [server_id]


async def test_stale_worker_cannot_overwrite_after_losing_its_lease(
    factory: Factory, database: Database
) -> None:
    tenant = await factory.tenant()
    created = await tenant.create_server()
    sid = created["id"]
    # Pin the server with a one-hour hold: the running test worker (on the real clock) leaves
    # it alone, while our two pretend workers live two hours ahead, where the hold is over.
    await factory.force_status(sid, "provisioning")
    lease = timedelta(seconds=30)
    future = timedelta(hours=2)
    assert await _claim(database, sid, "worker-a", lease, future)
    assert not await _claim(database, sid, "worker-b", lease, future)

    job_a = await lifecycle.load_job(database.reader, sid, "worker-a")
    assert job_a is not None

    # a's lease runs out; b takes over and completes the build.
    later = future + timedelta(minutes=5)
    assert await _claim(database, sid, "worker-b", lease, later)
    job_b = await lifecycle.load_job(database.reader, sid, "worker-b")
    assert await lifecycle.load_job(database.reader, sid, "worker-a") is None
    assert job_b is not None
    async with database.write() as session:
        assert await lifecycle.complete(session, job_b, "worker-b", utcnow(), None)

    # The stale worker wakes up and tries to record a failure: nothing is written.
    async with database.write() as session:
        assert not await lifecycle.fail(session, job_a, "worker-a", utcnow(), "late", "too late")
    async with database.read() as session:
        status = await session.scalar(select(Server.status).where(Server.id == sid))
    assert status == "active"
    server = (await tenant.get(f"/api/v1/servers/{sid}/")).json()
    assert server["status"] == "active" and server["error"] is None
