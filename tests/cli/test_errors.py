"""Failures are one line on stderr, with what to do next and the request id; exit code 1."""

from __future__ import annotations

import re
import socket

import httpx
import pytest

from tests.cli.conftest import Cli, create_command
from vps.testing import Emulator, EmulatorAccount

REQUEST_ID = re.compile(r"\(request id [^)\s]+\)")


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


@pytest.mark.parametrize(
    ("balance", "plan", "expected"),
    [
        (
            "10.00",
            "Standard VPS",
            [
                "costs 24.00 and the balance is 10.00",
                "14.00 more credits are needed",
                "top up",
                "vps credits add {account} 14.00",
            ],
        ),
        ("0.00", "3", ["6.00 more credits are needed"]),
    ],
    ids=["some-credits", "no-credits"],
)
def test_402_says_how_many_credits_are_missing(
    user_cli: Cli,
    vps_account: EmulatorAccount,
    vps_emulator: Emulator,
    balance: str,
    plan: str,
    expected: list[str],
) -> None:
    vps_emulator.set_credits(vps_account.name, balance)
    result = user_cli(*create_command("pricey", plan=plan, system="3", location="us-west"))
    assert result.exit_code == 1
    line = _one_line(result.stderr)
    for fragment in expected:
        assert fragment.format(account=vps_account.name) in line
    assert REQUEST_ID.search(line)
    assert result.stdout == ""


def test_401_says_how_to_log_in(cli: Cli, vps_account: EmulatorAccount) -> None:
    result = cli("servers", "list", "--api-url", vps_account.url, "--token", "vps_not_a_token")
    assert result.exit_code == 1
    line = _one_line(result.stderr)
    assert line.startswith("error: not authenticated")
    assert "vps login" in line and "VPS_TOKEN" in line
    assert REQUEST_ID.search(line)


def test_connection_refused_names_the_url_and_suggests_serving(cli: Cli) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = cli("plans", "--api-url", url, "--token", "vps_anything")
    assert result.exit_code == 1
    line = _one_line(result.stderr)
    assert f"cannot reach the API at {url}" in line
    assert "vps serve" in line


def test_404_names_the_id(user_cli: Cli) -> None:
    result = user_cli("servers", "get", "987654")
    assert result.exit_code == 1
    line = _one_line(result.stderr)
    assert "server 987654" in line and "not found" in line
    assert REQUEST_ID.search(line)


def test_400_names_the_field(user_cli: Cli, api: httpx.Client) -> None:
    result = user_cli(*create_command("not valid!", plan="3", system="3", location="us-west"))
    assert result.exit_code == 1
    line = _one_line(result.stderr)
    assert "invalid request: name:" in line
    assert REQUEST_ID.search(line)
    bad_location = user_cli(*create_command("ok", plan="3", system="3", location="mars"))
    assert "location" in _one_line(bad_location.stderr)
    assert api.get("/servers/").json()["count"] == 0
