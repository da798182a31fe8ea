"""The operator CLI (names and arguments are a contract other tooling relies on), checked
against the API it administers."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from typer.testing import CliRunner, Result

from vps.cli.main import app
from vps.config import Settings

runner = CliRunner()


async def vps(settings: Settings, *args: str) -> Result:
    env = {"VPS_DATABASE_URL": settings.database_url or "", "VPS_DATA_DIR": str(settings.data_dir)}
    return await asyncio.to_thread(runner.invoke, app, list(args), env=env)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_accounts_credits_and_tokens(settings: Settings, client: httpx.AsyncClient) -> None:
    name = unique("cli")
    created = await vps(settings, "accounts", "create", name, "--credits", "30")
    assert created.exit_code == 0, created.output
    assert "30.00" in created.output
    duplicate = await vps(settings, "accounts", "create", name, "--credits", "1")
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output

    token_run = await vps(settings, "tokens", "create", name)
    assert token_run.exit_code == 0
    token = token_run.stdout.strip().splitlines()[-1]
    assert token.startswith("vps_")
    account = await client.get("/api/v1/account/", headers=bearer(token))
    assert account.json()["balance"] == "30.00"

    added = await vps(settings, "credits", "add", name, "12.50")
    assert added.exit_code == 0 and "42.50" in added.output
    assert (await client.get("/api/v1/account/", headers=bearer(token))).json()[
        "balance"
    ] == "42.50"
    for bad in ("-5", "abc", "1.234", "0"):
        result = await vps(settings, "credits", "add", name, bad)
        assert result.exit_code != 0, bad
    assert (await vps(settings, "credits", "add", unique("nobody"), "5")).exit_code != 0


async def test_read_only_and_revoked_tokens(settings: Settings, client: httpx.AsyncClient) -> None:
    name = unique("ro")
    assert (await vps(settings, "accounts", "create", name, "--credits", "100")).exit_code == 0
    read_only = (await vps(settings, "tokens", "create", name, "--read-only")).stdout.split()[-1]
    assert (await client.get("/api/v1/servers/", headers=bearer(read_only))).status_code == 200
    write = await client.post(
        "/api/v1/servers/",
        headers=bearer(read_only),
        json={"name": "nope", "plan_id": 1, "os_id": 5, "location": "us-west"},
    )
    assert write.status_code == 403
    assert write.json()["error"]["code"] == "forbidden"

    listing = await vps(settings, "tokens", "list", name)
    token_id = listing.stdout.split()[0]
    assert "read-only" in listing.stdout and read_only not in listing.stdout
    assert (await vps(settings, "tokens", "revoke", token_id)).exit_code == 0
    revoked = await client.get("/api/v1/servers/", headers=bearer(read_only))
    assert revoked.status_code == 401
    assert revoked.headers["www-authenticate"].startswith("Bearer")


async def test_catalog_add_retire_restore(settings: Settings, client: httpx.AsyncClient) -> None:
    name = unique("cat")
    assert (await vps(settings, "accounts", "create", name, "--credits", "500")).exit_code == 0
    token = (await vps(settings, "tokens", "create", name)).stdout.split()[-1]
    code = unique("eu")
    added = await vps(
        settings,
        "catalog",
        "add-location",
        code,
        "--name",
        "EU Test",
        "--ipv4",
        "192.0.2.0/28",
        "--ipv6",
        "2001:db8:ff::/64",
    )
    assert added.exit_code == 0, added.output
    locations = (await client.get("/api/v1/locations/", headers=bearer(token))).json()
    assert code in {loc["code"] for loc in locations}

    plan = await vps(
        settings,
        "catalog",
        "add-plan",
        "Tiny",
        "--vcpus",
        "1",
        "--memory-mb",
        "512",
        "--storage-gb",
        "10",
        "--bandwidth-gb",
        "500",
        "--monthly-price",
        "3",
    )
    assert plan.exit_code == 0, plan.output
    plan_id = int(plan.stdout.split()[-1])
    server = await client.post(
        "/api/v1/servers/",
        headers=bearer(token),
        json={"name": "tiny-1", "plan_id": plan_id, "os_id": 3, "location": code},
    )
    assert server.status_code == 201, server.text

    assert (await vps(settings, "catalog", "retire", "plan", str(plan_id))).exit_code == 0
    refused = await client.post(
        "/api/v1/servers/",
        headers=bearer(token),
        json={"name": "tiny-2", "plan_id": plan_id, "os_id": 3, "location": code},
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["fields"][0]["field"] == "plan_id"
    # The existing server keeps its plan.
    kept = await client.get(f"/api/v1/servers/{server.json()['id']}/", headers=bearer(token))
    assert kept.json()["plan"]["id"] == plan_id
    assert (await vps(settings, "catalog", "restore", "plan", str(plan_id))).exit_code == 0
    assert (await vps(settings, "catalog", "retire", "location", code)).exit_code == 0
    listing = await vps(settings, "catalog", "list")
    assert f"{code}" in listing.stdout and "(retired)" in listing.stdout
    bad = await vps(
        settings,
        "catalog",
        "add-location",
        unique("x"),
        "--name",
        "X",
        "--ipv4",
        "2001:db8::/64",
        "--ipv6",
        "2001:db8::/64",
    )
    assert bad.exit_code != 0
