"""On PostgreSQL an idle worker is woken by NOTIFY: new work starts long before its poll."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import free_port, stop_gently, wait_for_http, wait_until
from tests.e2e.test_processes import _server, _token_for, vps  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("VPS_TEST_DATABASE_URL"), reason="LISTEN/NOTIFY is PostgreSQL's"
    ),
]


def test_separate_worker_is_woken_by_notify(vps, tmp_path: Path) -> None:  # noqa: F811
    token = _token_for(vps, "notify")
    # The worker would poll only every 60 s: anything faster is the notification.
    vps.env.update(
        VPS_EMBEDDED_WORKER="false",
        VPS_WORKER_POLL_SECONDS="60",
        VPS_SIM_PROVISION_SECONDS="0",
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = vps.start("serve", "--port", str(port), log=tmp_path / "serve.log")
    worker = vps.start("worker", log=tmp_path / "worker.log")
    try:
        wait_for_http(base)
        headers = {"Authorization": f"Bearer {token}"}
        body = {"plan_id": 1, "os_id": 5, "location": "us-west"}

        def create_and_time(name: str) -> float:
            started = time.monotonic()
            created = httpx.post(
                f"{base}/api/v1/servers/", headers=headers, json={**body, "name": name}
            )
            assert created.status_code == 201
            sid = created.json()["id"]
            wait_until(lambda: _server(base, token, sid)["status"] == "active", 30, name)
            return time.monotonic() - started

        # The first may be found by the worker's start-up look; after it the worker is idle,
        # waiting up to a minute for its next poll.
        create_and_time("first")
        assert create_and_time("woken") < 10
    finally:
        stop_gently(worker)
        stop_gently(serve)
