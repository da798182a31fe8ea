"""Run the `vps` user commands in-process (Typer's CliRunner) against the emulator: a real
HTTP server with the real API, one fresh account per test."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from vps.cli.main import app
from vps.testing import EmulatorAccount

# Variables that would leak the developer's own settings into a test.
_CLEARED: dict[str, str | None] = {
    "VPS_API_URL": None,
    "VPS_TOKEN": None,
    "VPS_PROFILE": None,
    "XDG_CONFIG_HOME": None,
    "COLUMNS": None,
    "NO_COLOR": "1",
}


@dataclass
class Cli:
    """`cli("servers", "list")` runs `vps servers list` with this environment."""

    env: dict[str, str | None] = field(default_factory=dict)

    def __call__(self, *args: str, input: str | None = None, **env: str | None) -> Result:
        return CliRunner().invoke(
            app, list(args), env={**self.env, **env}, input=input, catch_exceptions=False
        )

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self(*args, input=input)
        assert result.exit_code == 0, result.output
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        """The command's stdout with `-o json`, which must be JSON and nothing else."""
        return json.loads(self.ok(*args, "-o", "json", input=input).stdout)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "home" / "vps" / "config.toml"


@pytest.fixture
def cli(config_file: Path) -> Cli:
    """No credentials at all: only the temporary profiles file."""
    return Cli({**_CLEARED, "VPS_CONFIG": str(config_file)})


@pytest.fixture
def user_cli(cli: Cli, vps_account: EmulatorAccount) -> Cli:
    """Credentials of a fresh account, given through the environment."""
    return Cli({**cli.env, "VPS_API_URL": vps_account.url, "VPS_TOKEN": vps_account.token})


@pytest.fixture
def api(vps_account: EmulatorAccount) -> Iterator[httpx.Client]:
    """The same account over plain HTTP: the reference the CLI's output is checked against."""
    with httpx.Client(
        base_url=f"{vps_account.url}/api/v1",
        headers={"Authorization": f"Bearer {vps_account.token}"},
        timeout=30,
    ) as client:
        yield client


def wait_for_status(
    api: httpx.Client, server_id: int, status: str, timeout: float = 20
) -> dict[str, Any]:
    """Poll the API until the server has `status` (a deadline, never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        server = api.get(f"/servers/{server_id}/").json()
        if server.get("status") == status:
            return dict(server)
        assert time.monotonic() < deadline, f"server {server_id} stuck in {server}"
        time.sleep(0.05)


def create_server(api: httpx.Client, name: str, *, active: bool = True) -> dict[str, Any]:
    answer = api.post(
        "/servers/",
        json={"name": name, "plan_id": 3, "os_id": 3, "location": "us-east"},
    )
    assert answer.status_code == 201, answer.text
    created = dict(answer.json())
    return wait_for_status(api, created["id"], "active") if active else created


def create_command(name: str, *, plan: str, system: str, location: str) -> list[str]:
    """The arguments of `vps servers create` with its required options (`system`: --os)."""
    return [
        "servers",
        "create",
        "--name",
        name,
        "--plan",
        plan,
        "--os",
        system,
        "--location",
        location,
    ]


def without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """`data` without fields that change by themselves (usage samples, timestamps)."""
    return {key: value for key, value in data.items() if key not in keys}


def table_rows(text: str) -> list[list[str]]:
    """The cells of each body row of a Rich table (not the header, not the box lines)."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in text.splitlines()
        if line.strip().startswith("│")
    ]
