"""A worker frozen (SIGSTOP) in the middle of a build, in real processes sharing one database
and one simulated hypervisor: another worker takes the server over when the lease expires,
the server is deleted, and when the frozen worker wakes up (SIGCONT) and finishes its stale
build it changes nothing in the database, and the orphan sweep destroys its late machine."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from tests.conftest import new_database_url
from tests.e2e.processes import VpsCommand, free_port, stop_gently, wait_for_http, wait_until
from vps.config import Settings
from vps.db.engine import Database
from vps.db.models import Action, IpAllocation, Server
from vps.drivers.simulator import read_inventory

pytestmark = pytest.mark.slow

PROVISION_SECONDS = 3.0


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    with new_database_url(tmp_path) as url:
        yield url


class Probe:
    """Reads the database of the processes under test, from the test's own event loop."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.url = url
        self.runner = asyncio.Runner()
        resolved = Settings(database_url=url, data_dir=data_dir).resolved_database_url
        self.database = Database(resolved, pool_size=2)

    def close(self) -> None:
        self.runner.run(self.database.dispose())
        self.runner.close()

    def server(self, server_id: int) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            async with self.database.read() as session:
                row = (
                    await session.execute(
                        select(
                            Server.status,
                            Server.version,
                            Server.updated_at,
                            Server.deleted_at,
                            Server.lease_owner,
                            Server.lease_expires_at,
                            Server.ipv4_address,
                            Server.ipv6_address,
                        ).where(Server.id == server_id)
                    )
                ).one()
                actions = (
                    await session.execute(
                        select(Action.id, Action.kind, Action.status, Action.finished_at)
                        .where(Action.server_id == server_id)
                        .order_by(Action.id)
                    )
                ).all()
                held = await session.scalar(
                    select(func.count())
                    .select_from(IpAllocation)
                    .where(IpAllocation.server_id == server_id)
                )
            return {**row._asdict(), "actions": [tuple(a) for a in actions], "held": held}

        return self.runner.run(read())

    def row_is_free(self, server_id: int) -> bool:
        """True when no other process holds a write lock that would block the server's row
        (a process frozen inside a transaction would block every other worker)."""
        if self.database.is_sqlite:
            path = make_url(self.url).database
            assert path is not None
            with closing(sqlite3.connect(path, timeout=0.5, isolation_level=None)) as connection:
                try:
                    connection.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError:
                    return False
                connection.execute("ROLLBACK")
                return True

        async def try_lock() -> bool:
            connection = await asyncpg.connect(self.url)
            try:
                async with connection.transaction():
                    await connection.execute(
                        "SELECT id FROM servers WHERE id = $1 FOR UPDATE NOWAIT", server_id
                    )
                return True
            except asyncpg.LockNotAvailableError:
                return False
            finally:
                await connection.close()

        return self.runner.run(try_lock())


def freeze(process: subprocess.Popen[bytes], probe: Probe, server_id: int) -> None:
    """SIGSTOP the process at a moment it holds no database lock on the server's row."""
    for _ in range(20):
        process.send_signal(signal.SIGSTOP)
        if probe.row_is_free(server_id):
            return
        process.send_signal(signal.SIGCONT)
        wait_until(lambda: probe.row_is_free(server_id), 5, "the worker's transaction to end")
    raise AssertionError("could not freeze the worker outside a transaction")


def test_frozen_worker_is_taken_over_and_its_late_build_is_destroyed(
    tmp_path: Path, database_url: str
) -> None:
    state_file = tmp_path / "hypervisor.sqlite"
    vps = VpsCommand(
        data_dir=tmp_path / "data",
        env={
            "VPS_DATABASE_URL": database_url,
            "VPS_EMBEDDED_WORKER": "false",
            "VPS_SIM_STATE_FILE": str(state_file),
            "VPS_WORKER_LEASE_SECONDS": "1",
            "VPS_WORKER_POLL_SECONDS": "0.1",
            "VPS_SIM_PROVISION_SECONDS": str(PROVISION_SECONDS),
            "VPS_WORKER_ORPHAN_SWEEP_SECONDS": "1",
            "VPS_LOG_LEVEL": "info",
        },
    )
    assert vps.run("db", "upgrade").returncode == 0
    assert vps.run("accounts", "create", "sigstop", "--credits", "500").returncode == 0
    token_run = vps.run("tokens", "create", "sigstop")
    assert token_run.returncode == 0, token_run.stderr
    headers = {"Authorization": f"Bearer {token_run.stdout.strip().splitlines()[-1]}"}

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    logs = {name: tmp_path / f"{name}.log" for name in ("serve", "a", "b")}
    probe = Probe(database_url, tmp_path / "data")
    serve = vps.start("serve", "--port", str(port), log=logs["serve"])
    worker_a = vps.start("worker", log=logs["a"])
    worker_b: subprocess.Popen[bytes] | None = None
    frozen = False
    try:
        wait_for_http(base)
        created = httpx.post(
            f"{base}/api/v1/servers/",
            headers=headers,
            json={"name": "frozen-build", "plan_id": 1, "os_id": 5, "location": "us-west"},
        )
        assert created.status_code == 201, created.text
        sid = int(created.json()["id"])

        # A claims the server and starts building (its addresses are assigned just before the
        # driver call): freeze it there.
        claimed = wait_until(
            lambda: (s := probe.server(sid))["lease_owner"] and s["ipv4_address"] and s,
            20,
            "worker A to claim the server",
        )
        owner_a = claimed["lease_owner"]
        freeze(worker_a, probe, sid)
        frozen = True
        assert probe.server(sid)["status"] == "provisioning"

        # B takes the server over once A's lease expired, and builds it.
        worker_b = vps.start("worker", log=logs["b"])
        wait_until(
            lambda: probe.server(sid)["status"] == "active", 30, "worker B to build the server"
        )
        taken_over = probe.server(sid)
        machines, builds = read_inventory(state_file)
        assert sid in machines and builds[sid] == 1

        deleted = httpx.delete(f"{base}/api/v1/servers/{sid}/", headers=headers)
        assert deleted.status_code == 204, deleted.text
        wait_until(lambda: probe.server(sid)["status"] == "deleted", 30, "the delete")
        after_delete = probe.server(sid)
        assert after_delete["held"] == 0
        assert sid not in read_inventory(state_file)[0]

        # A wakes up and finishes its stale build: the simulator builds the machine again.
        worker_a.send_signal(signal.SIGCONT)
        frozen = False
        wait_until(
            lambda: read_inventory(state_file)[1].get(sid, 0) >= 2,
            2 * PROVISION_SECONDS,
            "worker A's late build",
        )

        # The orphan sweep destroys the late machine...
        wait_until(
            lambda: sid not in read_inventory(state_file)[0],
            15,
            "the orphan sweep to destroy the late machine",
        )
        # ...and the stale worker changed nothing in the database.
        final = probe.server(sid)
        assert final == after_delete
        assert final["status"] == "deleted"
        assert final["held"] == 0
        assert final["lease_owner"] != owner_a
        assert taken_over["lease_owner"] != owner_a
        assert worker_a.poll() is None, "worker A died"
        assert worker_b.poll() is None, "worker B died"
    finally:
        if frozen:
            worker_a.send_signal(signal.SIGCONT)
        for process in (worker_a, worker_b, serve):
            if process is not None:
                stop_gently(process)
        probe.close()
    assert worker_a.returncode == 0, logs["a"].read_text()
    assert worker_b is not None and worker_b.returncode == 0, logs["b"].read_text()
