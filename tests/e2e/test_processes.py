"""The real command, in real processes: first run, kill and restart, a separate worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import new_database_url
from tests.e2e.processes import (
    VpsCommand,
    free_port,
    kill_hard,
    stop_gently,
    wait_for_http,
    wait_until,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def vps(tmp_path: Path) -> Iterator[VpsCommand]:
    with new_database_url(tmp_path) as url:
        yield VpsCommand(
            data_dir=tmp_path / "data",
            env={
                "VPS_DATABASE_URL": url,
                "VPS_WORKER_POLL_SECONDS": "0.1",
                "VPS_WORKER_LEASE_SECONDS": "1",
                "VPS_LOG_LEVEL": "warning",
            },
        )


def _token_for(vps: VpsCommand, account: str, credits: str = "500") -> str:
    assert vps.run("db", "upgrade").returncode == 0
    created = vps.run("accounts", "create", account, "--credits", credits)
    assert created.returncode == 0, created.stderr
    token = vps.run("tokens", "create", account)
    assert token.returncode == 0, token.stderr
    return token.stdout.strip().splitlines()[-1]


def _server(base: str, token: str, server_id: int) -> dict[str, Any]:
    response = httpx.get(
        f"{base}/api/v1/servers/{server_id}/", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _all_in(base: str, token: str, ids: list[int], status: str) -> bool:
    return all(_server(base, token, sid)["status"] == status for sid in ids)


def test_killed_serve_resumes_every_transition_on_restart(vps: VpsCommand, tmp_path: Path) -> None:
    token = _token_for(vps, "restart")
    vps.env.update(VPS_SIM_PROVISION_SECONDS="2", VPS_SIM_ACTION_SECONDS="2")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    log = tmp_path / "serve.log"
    serve = vps.start("serve", "--port", str(port), log=log)
    try:
        wait_for_http(base)
        ids = []
        for i in range(3):
            response = httpx.post(
                f"{base}/api/v1/servers/",
                headers=headers,
                json={"name": f"resume-{i}", "plan_id": 1, "os_id": 5, "location": "us-west"},
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        # Kill while every server is provisioning (the simulator takes 2 s).
        assert _all_in(base, token, ids, "provisioning")
        kill_hard(serve)

        serve = vps.start("serve", "--port", str(port), log=log)
        wait_for_http(base)
        wait_until(lambda: _all_in(base, token, ids, "active"), 30, "servers to become active")
        servers = [_server(base, token, sid) for sid in ids]
        addresses = {s["ip_address"] for s in servers}
        assert len(addresses) == 3 and all(a.startswith("203.0.113.") for a in addresses)

        # Kill again in the middle of a stop: the stop completes after the restart.
        stop = httpx.post(f"{base}/api/v1/servers/{ids[0]}/stop/", headers=headers)
        assert stop.status_code == 200
        kill_hard(serve)
        serve = vps.start("serve", "--port", str(port), log=log)
        wait_for_http(base)
        wait_until(lambda: _all_in(base, token, ids[:1], "stopped"), 30, "the stop to finish")
        assert _server(base, token, ids[1])["status"] == "active"
    finally:
        stop_gently(serve)


def test_separate_worker_process_drives_servers(vps: VpsCommand, tmp_path: Path) -> None:
    token = _token_for(vps, "workers")
    vps.env.update(VPS_EMBEDDED_WORKER="false", VPS_SIM_PROVISION_SECONDS="0.2")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    serve = vps.start("serve", "--port", str(port), log=tmp_path / "serve.log")
    worker = None
    try:
        wait_for_http(base)
        created = httpx.post(
            f"{base}/api/v1/servers/",
            headers=headers,
            json={"name": "by-worker", "plan_id": 1, "os_id": 5, "location": "us-east"},
        )
        assert created.status_code == 201
        sid = created.json()["id"]
        # Without a worker nothing moves...
        assert _server(base, token, sid)["status"] == "provisioning"
        worker = vps.start("worker", log=tmp_path / "worker.log")
        # ...and the worker process finishes the job.
        wait_until(lambda: _all_in(base, token, [sid], "active"), 30, "the worker")
    finally:
        if worker is not None:
            stop_gently(worker)
        stop_gently(serve)
    assert worker.returncode == 0, (tmp_path / "worker.log").read_text()


def test_first_run_prints_a_working_token_once(tmp_path: Path) -> None:
    vps = VpsCommand(data_dir=tmp_path / "fresh", env={"VPS_LOG_LEVEL": "warning"})
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    serve = vps.start("serve", "--port", str(port), log=log)
    try:
        wait_for_http(base)
    finally:
        stop_gently(serve)
    output = log.read_text()
    tokens = [w for w in output.split() if w.startswith("VPS_TOKEN=vps_")]
    assert len(tokens) == 1, output
    assert f'curl -H "Authorization: Bearer $VPS_TOKEN" {base}/api/v1/servers/' in output
    token = tokens[0].removeprefix("VPS_TOKEN=")

    serve = vps.start("serve", "--port", str(port), log=log)
    try:
        wait_for_http(base)
        response = httpx.get(
            f"{base}/api/v1/account/", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200
        assert response.json()["name"] == "demo"
    finally:
        stop_gently(serve)
    # The second start found an account and printed no new token.
    assert log.read_text().count("VPS_TOKEN=vps_") == 1


def test_no_demo_account_when_bound_to_a_public_address(tmp_path: Path) -> None:
    vps = VpsCommand(data_dir=tmp_path / "public", env={"VPS_LOG_LEVEL": "warning"})
    port = free_port()
    log = tmp_path / "serve.log"
    serve = vps.start("serve", "--host", "0.0.0.0", "--port", str(port), log=log)  # noqa: S104
    try:
        wait_for_http(f"http://127.0.0.1:{port}")
    finally:
        stop_gently(serve)
    assert "VPS_TOKEN=" not in log.read_text()
    assert vps.run("accounts", "show", "demo").returncode != 0
