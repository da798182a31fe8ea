"""A change made by one process reaches a stream served by another: two `vps serve`
processes on one database, the worker in the first, the stream read from the second."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.processes import free_port, stop_gently, wait_for_http
from tests.e2e.test_processes import _token_for, vps  # noqa: F401 - fixture

pytestmark = pytest.mark.slow


def _read_events(
    base: str, token: str, into: list[dict[str, Any]], opened: threading.Event
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.stream("GET", f"{base}/api/v1/events/", headers=headers, timeout=60) as response:
        assert response.status_code == 200
        opened.set()
        for line in response.iter_lines():
            if line.startswith("data: "):
                into.append(orjson.loads(line.removeprefix("data: ")))
                if any(e.get("status") == "deleted" for e in into):
                    return


def test_a_worker_in_one_process_feeds_the_stream_of_another(vps, tmp_path: Path) -> None:  # noqa: F811
    token = _token_for(vps, "streams")
    vps.env.update(VPS_SIM_PROVISION_SECONDS="0.2", VPS_SIM_DELETE_SECONDS="0.1")
    with_worker, streaming = free_port(), free_port()
    first = vps.start("serve", "--port", str(with_worker), log=tmp_path / "first.log")
    vps.env.update(VPS_EMBEDDED_WORKER="false")
    second = vps.start("serve", "--port", str(streaming), log=tmp_path / "second.log")
    try:
        a, b = f"http://127.0.0.1:{with_worker}", f"http://127.0.0.1:{streaming}"
        wait_for_http(a)
        wait_for_http(b)
        events: list[dict[str, Any]] = []
        opened = threading.Event()
        reader = threading.Thread(target=_read_events, args=(b, token, events, opened))
        reader.start()
        assert opened.wait(30)
        headers = {"Authorization": f"Bearer {token}"}
        created = httpx.post(
            f"{a}/api/v1/servers/",
            headers=headers,
            json={"name": "far", "plan_id": 1, "os_id": 5, "location": "us-west"},
        )
        assert created.status_code == 201, created.text
        server_id = created.json()["id"]
        # The long-poll on the process without a worker is answered by the other's work.
        waited = httpx.get(
            f"{b}/api/v1/servers/{server_id}/",
            params={"wait_for": "active", "wait": 30},
            headers=headers,
            timeout=40,
        )
        assert waited.json()["status"] == "active"
        assert httpx.delete(f"{a}/api/v1/servers/{server_id}/", headers=headers).status_code == 204
        reader.join(60)
        assert not reader.is_alive()
        statuses = [e["status"] for e in events if e["type"] == "server.status"]
        assert statuses == ["provisioning", "active", "deleting", "deleted"]
    finally:
        stop_gently(second)
        stop_gently(first)


def test_serve_stops_promptly_with_streams_open(vps, tmp_path: Path) -> None:  # noqa: F811
    """An event stream never ends by itself: `vps serve` must still stop on SIGTERM (the
    client reconnects elsewhere with Last-Event-ID)."""
    token = _token_for(vps, "shutdown")
    port = free_port()
    serve = vps.start("serve", "--port", str(port), log=tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base)
        ended = threading.Event()
        opened = threading.Event()

        def follow() -> None:
            headers = {"Authorization": f"Bearer {token}"}
            try:
                with httpx.stream("GET", f"{base}/api/v1/events/", headers=headers) as response:
                    opened.set()
                    for _line in response.iter_lines():
                        pass
            except httpx.HTTPError:
                pass
            finally:
                ended.set()

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        assert opened.wait(30)
        started = time.monotonic()
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=20)
        assert time.monotonic() - started < 15
        assert ended.wait(10)
    finally:
        stop_gently(serve)
