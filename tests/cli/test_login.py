"""`vps login`, `vps logout`, `vps profiles`, and which profile and token a command uses."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path
from typing import Any

from tests.cli.conftest import Cli, table_rows
from vps.testing import Emulator, EmulatorAccount


def _profiles(config_file: Path) -> dict[str, Any]:
    return dict(tomllib.loads(config_file.read_text())["profiles"])


def test_login_checks_the_token_and_saves_it_privately(
    cli: Cli, config_file: Path, vps_account: EmulatorAccount
) -> None:
    result = cli.ok("login", "--api-url", vps_account.url, "--token", vps_account.token)
    assert f"logged in to account {vps_account.name}" in result.stderr
    assert result.stdout == ""
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert _profiles(config_file) == {
        "default": {"api_url": vps_account.url, "token": vps_account.token}
    }
    # The saved profile is enough for the next command.
    account = cli.json("account")
    assert account["name"] == vps_account.name


def test_login_prompts_for_the_token_without_echoing_it(
    cli: Cli, config_file: Path, vps_account: EmulatorAccount
) -> None:
    result = cli.ok(
        "login",
        "--profile",
        "prompted",
        "--api-url",
        vps_account.url,
        input=vps_account.token + "\n",
    )
    assert vps_account.token not in result.output
    assert _profiles(config_file)["prompted"]["token"] == vps_account.token


def test_login_with_a_bad_token_saves_nothing(
    cli: Cli, config_file: Path, vps_account: EmulatorAccount
) -> None:
    result = cli("login", "--api-url", vps_account.url, "--token", "vps_wrong")
    assert result.exit_code == 1
    assert "not logged in" in result.stderr
    assert "request id" in result.stderr
    assert "Traceback" not in result.output
    assert not config_file.exists()


def test_profiles_logout_and_resolution_order(
    cli: Cli, config_file: Path, vps_emulator: Emulator
) -> None:
    first = vps_emulator.create_account(credits="1.00")
    second = vps_emulator.create_account(credits="2.00")
    cli.ok("login", "--profile", "first", "--api-url", first.url, "--token", first.token)
    cli.ok("login", "--profile", "second", "--api-url", second.url, "--token", second.token)

    listed = cli.json("profiles")
    assert listed == [
        {"name": "first", "api_url": first.url, "active": False, "has_token": True},
        {"name": "second", "api_url": second.url, "active": True, "has_token": True},
    ]
    table = cli.ok("profiles").stdout
    assert first.token not in table and second.token not in table
    assert [row[:2] for row in table_rows(table)] == [["", "first"], ["*", "second"]]

    # The active profile (the last login), then VPS_PROFILE, then --profile.
    assert cli.json("account")["name"] == second.name
    assert first.name in cli("account", "-o", "json", VPS_PROFILE="first").stdout
    chosen = cli("account", "-o", "json", "--profile", "second", VPS_PROFILE="first")
    assert second.name in chosen.stdout
    # VPS_TOKEN beats the profile's token; --token beats VPS_TOKEN.
    assert first.name in cli("account", "-o", "json", VPS_TOKEN=first.token).stdout
    flagged = cli("account", "-o", "json", "--token", second.token, VPS_TOKEN=first.token)
    assert second.name in flagged.stdout
    # A profile that does not exist is named in the error.
    missing = cli("account", "--profile", "nope")
    assert missing.exit_code == 1
    assert "no profile named 'nope'" in missing.stderr

    cli.ok("logout", "--profile", "second")
    assert set(_profiles(config_file)) == {"first"}
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    # No active profile any more: `default` is used, and it has no token.
    anonymous = cli("account")
    assert anonymous.exit_code == 1
    assert "vps login" in anonymous.stderr and "VPS_TOKEN" in anonymous.stderr
