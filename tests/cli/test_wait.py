"""`--wait`: success, a failed build (exit 1) and a deadline (exit 2)."""

from __future__ import annotations

import httpx

from tests.cli.conftest import Cli
from vps.testing import Emulator

CREATE = ["servers", "create", "--plan", "3", "--os", "3", "--location", "us-east"]


def test_create_wait_reaches_active(user_cli: Cli, api: httpx.Client) -> None:
    result = user_cli(*CREATE, "--name", "waited", "--wait", "-o", "json")
    assert result.exit_code == 0, result.output
    import json

    server = json.loads(result.stdout)
    assert server["status"] == "active"
    assert server["ip_address"]
    assert api.get(f"/servers/{server['id']}/").json()["status"] == "active"
    # Progress went to stderr, one line per status when stderr is not a terminal.
    assert f"server {server['id']}: waiting for build" in result.stderr
    assert "build done (active)" in result.stderr


def test_failed_build_exits_1_with_the_reason(
    user_cli: Cli, api: httpx.Client, vps_emulator: Emulator
) -> None:
    vps_emulator.fail_next("create", message="no capacity left in us-east")
    result = user_cli(*CREATE, "--name", "broken", "--wait")
    assert result.exit_code == 1, result.output
    assert "build failed: no capacity left in us-east" in result.stderr
    assert "the server is error" in result.stderr
    assert "Traceback" not in result.output
    servers = api.get("/servers/").json()["results"]
    assert [s["status"] for s in servers] == ["error"]


def test_wait_timeout_exits_2(user_cli: Cli, api: httpx.Client, vps_emulator: Emulator) -> None:
    vps_emulator.set_timings(provision_seconds=60)
    result = user_cli(*CREATE, "--name", "slow", "--wait", "--timeout", "1")
    assert result.exit_code == 2, result.output
    assert "timed out after 1 s" in result.stderr
    assert "still provisioning" in result.stderr
    assert api.get("/servers/").json()["results"][0]["status"] == "provisioning"


def test_stop_and_start_wait(user_cli: Cli, api: httpx.Client) -> None:
    import json

    created = json.loads(user_cli(*CREATE, "--name", "cycled", "--wait", "-o", "json").stdout)
    sid = str(created["id"])
    stopped = user_cli("servers", "stop", sid, "--wait")
    assert stopped.exit_code == 0, stopped.output
    assert "stop done (stopped)" in stopped.stderr
    assert api.get(f"/servers/{sid}/").json()["status"] == "stopped"
    started = user_cli("servers", "start", sid, "--wait", "-o", "json")
    assert started.exit_code == 0, started.output
    assert json.loads(started.stdout)["status"] == "active"


def test_failed_reboot_exits_1(user_cli: Cli, api: httpx.Client, vps_emulator: Emulator) -> None:
    import json

    created = json.loads(user_cli(*CREATE, "--name", "flaky", "--wait", "-o", "json").stdout)
    vps_emulator.fail_next("reboot", message="hypervisor said no")
    result = user_cli("servers", "reboot", str(created["id"]), "--wait")
    assert result.exit_code == 1, result.output
    assert "reboot failed: hypervisor said no" in result.stderr
