"""PostgreSQL goes away and comes back: clients get 503 (never a stack trace) meanwhile, and
the API and its worker reconnect and finish the work on their own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import new_database_url
from tests.e2e.processes import VpsCommand, free_port, stop_gently, wait_for_http, wait_until
from tests.e2e.test_processes import _server, _token_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("VPS_TEST_DATABASE_URL"), reason="needs a PostgreSQL server"
    ),
]


class Outage:
    """A TCP proxy in front of PostgreSQL that can cut every connection and refuse new ones,
    as a database restart does, without touching the real server."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.up = True
        self.loop = asyncio.new_event_loop()
        self.writers: set[asyncio.StreamWriter] = set()
        ready = threading.Event()
        self.port = 0

        async def serve() -> None:
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await server.serve_forever()

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(serve(),))
        self.thread.daemon = True
        self.thread.start()
        ready.wait(10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, upstream_writer}
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    def cut(self) -> None:
        def close_all() -> None:
            self.up = False
            for writer in self.writers:
                writer.close()
            self.writers.clear()

        self.loop.call_soon_threadsafe(close_all)

    def restore(self) -> None:
        self.loop.call_soon_threadsafe(setattr, self, "up", True)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    with new_database_url(tmp_path) as url:
        yield url


def test_outage_answers_503_then_work_completes(database: str, tmp_path: Path) -> None:
    direct = make_url(database)
    outage = Outage(direct.host or "127.0.0.1", direct.port or 5432)
    proxied = direct.set(host="127.0.0.1", port=outage.port).render_as_string(hide_password=False)
    admin = VpsCommand(data_dir=tmp_path / "data", env={"VPS_DATABASE_URL": database})
    token = _token_for(admin, "outage")
    service = VpsCommand(
        data_dir=tmp_path / "data",
        env={
            "VPS_DATABASE_URL": proxied,
            "VPS_SIM_PROVISION_SECONDS": "3",
            "VPS_WORKER_LEASE_SECONDS": "2",
            "VPS_WORKER_POLL_SECONDS": "0.2",
            "VPS_LOG_LEVEL": "warning",
        },
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    serve = service.start("serve", "--port", str(port), log=tmp_path / "serve.log")
    try:
        wait_for_http(base)
        created = httpx.post(
            f"{base}/api/v1/servers/",
            headers=headers,
            json={"name": "survivor", "plan_id": 1, "os_id": 5, "location": "us-west"},
        )
        assert created.status_code == 201
        sid = created.json()["id"]

        outage.cut()  # while the server is being built (3 s)
        response = wait_until(
            lambda: (
                (r := httpx.get(f"{base}/api/v1/servers/", headers=headers)).status_code == 503
                and r
            ),
            15,
            "a 503 during the outage",
        )
        error = response.json()["error"]
        assert error["code"] == "service_unavailable" and response.headers["retry-after"]
        assert "Traceback" not in response.text and "asyncpg" not in response.text

        outage.restore()
        wait_until(lambda: _server(base, token, sid)["status"] == "active", 60, "recovery")
        assert httpx.get(f"{base}/api/v1/servers/", headers=headers).json()["count"] == 1
    finally:
        stop_gently(serve)
