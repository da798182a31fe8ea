"""The installed `vps` command as scripts run it: real processes, stdout piped to a parser."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.cli.conftest import create_command
from vps.testing import Emulator, EmulatorAccount

VPS = Path(sys.executable).with_name("vps")


def _environment(
    account: EmulatorAccount, config: Path, token: str | None = None
) -> dict[str, str]:
    """This process's environment without any VPS_ setting of its own, plus the account's."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("VPS_")}
    environment.update(
        VPS_CONFIG=str(config), VPS_API_URL=account.url, VPS_TOKEN=token or account.token
    )
    return environment


def _run(command: list[str], account: EmulatorAccount, config: Path, token: str | None = None):
    environment = _environment(account, config, token)
    environment.pop("NO_COLOR", None)  # a pipe alone must be enough to drop colours
    return subprocess.run(
        command, capture_output=True, text=True, env=environment, timeout=60, check=False
    )


def test_installed_script_prints_only_json_on_stdout(
    vps_account: EmulatorAccount, api: httpx.Client, tmp_path: Path
) -> None:
    result = _run([str(VPS), "plans", "-o", "json"], vps_account, tmp_path / "c.toml")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == api.get("/plans/").json()
    table = _run([str(VPS), "plans"], vps_account, tmp_path / "c.toml")
    assert "Standard VPS" in table.stdout
    assert "\x1b[" not in table.stdout + table.stderr  # no colour codes into a pipe


def test_module_create_wait_then_json(
    vps_account: EmulatorAccount, api: httpx.Client, tmp_path: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "vps",
        *create_command("scripted", plan="Starter VPS", system="Debian 12", location="us-east"),
        "--wait",
        "-o",
        "json",
    ]
    result = _run(command, vps_account, tmp_path / "c.toml")
    assert result.returncode == 0, result.stderr
    server = json.loads(result.stdout)
    assert server["status"] == "active" and server["ip_address"]
    reference = api.get(f"/servers/{server['id']}/").json()
    assert server["ip_address"] == reference["ip_address"]
    assert "build done (active)" in result.stderr


def test_module_failure_is_one_line_and_exit_1(
    vps_account: EmulatorAccount, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "vps", "servers", "list"]
    result = _run(command, vps_account, tmp_path / "c.toml", token="vps_revoked_or_wrong")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: not authenticated")


def test_ctrl_c_stops_the_wait_not_the_build(
    vps_account: EmulatorAccount, vps_emulator: Emulator, api: httpx.Client, tmp_path: Path
) -> None:
    vps_emulator.set_timings(provision_seconds=60)
    environment = _environment(vps_account, tmp_path / "c.toml")
    command = [
        sys.executable,
        "-m",
        "vps",
        *create_command("patient", plan="3", system="3", location="us-east"),
        "--wait",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    )
    # A deadline for the whole exchange: a hung process is killed, and the test fails.
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        assert process.stderr is not None
        # The plain progress line (stderr is a pipe) says the wait has begun.
        for line in process.stderr:
            if "waiting for build: provisioning" in line:
                break
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=30)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "stopped waiting" in rest and "carries on" in rest
    assert "Traceback" not in rest
    assert api.get("/servers/").json()["results"][0]["status"] == "provisioning"
