"""The resources the spec implies: plans, operating systems, locations, SSH keys, the account
and its credits."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import struct
from decimal import Decimal

import pytest

from tests.factories import Factory, Tenant

DECIMAL = re.compile(r"-?\d+\.\d\d")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
KEYS = "/api/v1/ssh-keys/"


def make_key(comment: str = "test@example") -> tuple[str, str]:
    """A fresh Ed25519 public key line and its OpenSSH SHA256 fingerprint."""
    kind = b"ssh-ed25519"
    blob = struct.pack(">I", len(kind)) + kind + struct.pack(">I", 32) + os.urandom(32)
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    return f"ssh-ed25519 {base64.b64encode(blob).decode('ascii')} {comment}", f"SHA256:{digest}"


async def balance(tenant: Tenant) -> str:
    response = await tenant.get("/api/v1/account/")
    assert response.status_code == 200
    value: str = response.json()["balance"]
    return value


async def plan_price(tenant: Tenant, plan_id: int) -> tuple[Decimal, Decimal]:
    plans = (await tenant.get("/api/v1/plans/")).json()
    plan = next(p for p in plans if p["id"] == plan_id)
    return Decimal(plan["monthly_price"]), Decimal(plan["backups_monthly_price"])


# Catalog ----------------------------------------------------------------------------------


async def test_plans_match_the_spec(factory: Factory) -> None:
    tenant = await factory.tenant()
    response = await tenant.get("/api/v1/plans/")
    assert response.status_code == 200
    plans = {p["id"]: p for p in response.json()}
    spec = {
        1: ("Standard VPS", 2, 4096, 80, 2048),
        2: ("Performance VPS", 4, 8192, 160, 4096),
    }
    for plan_id, (name, vcpus, memory, storage, bandwidth) in spec.items():
        plan = plans[plan_id]
        assert (plan["name"], plan["vcpus"], plan["memory"], plan["storage"]) == (
            name,
            vcpus,
            memory,
            storage,
        )
        assert plan["bandwidth"] == bandwidth
    for plan in plans.values():
        assert isinstance(plan["monthly_price"], str)
        assert DECIMAL.fullmatch(plan["monthly_price"]), plan
        assert Decimal(plan["monthly_price"]) > 0
        assert DECIMAL.fullmatch(plan["backups_monthly_price"]), plan


async def test_plans_are_ordered_and_unique(factory: Factory) -> None:
    tenant = await factory.tenant()
    ids = [p["id"] for p in (await tenant.get("/api/v1/plans/")).json()]
    assert ids == sorted(set(ids))


async def test_operating_systems_include_the_spec_ones(factory: Factory) -> None:
    tenant = await factory.tenant()
    response = await tenant.get("/api/v1/operating-systems/")
    assert response.status_code == 200
    systems = response.json()
    assert {"id": 5, "name": "Ubuntu 22.04 LTS"} in systems
    assert {"id": 3, "name": "Debian 12"} in systems
    for system in systems:
        assert set(system) == {"id", "name"}


async def test_locations_include_the_spec_ones(factory: Factory) -> None:
    tenant = await factory.tenant()
    response = await tenant.get("/api/v1/locations/")
    assert response.status_code == 200
    codes = [loc["code"] for loc in response.json()]
    assert {"us-west", "us-east"} <= set(codes)
    assert len(codes) == len(set(codes))
    for location in response.json():
        assert location["name"]


async def test_every_catalog_entry_can_be_used_to_create_a_server(factory: Factory) -> None:
    tenant = await factory.tenant(credits="10000.00")
    plans = (await tenant.get("/api/v1/plans/")).json()
    systems = (await tenant.get("/api/v1/operating-systems/")).json()
    locations = (await tenant.get("/api/v1/locations/")).json()
    for plan in plans:
        created = await tenant.create_server(name=f"plan-{plan['id']}", plan_id=plan["id"])
        assert created["plan"]["id"] == plan["id"]
        assert created["plan"]["name"] == plan["name"]
    for system in systems:
        created = await tenant.create_server(name=f"os-{system['id']}", os_id=system["id"])
        assert created["os"] == system
    for location in locations:
        created = await tenant.create_server(name="loc", location=location["code"])
        assert created["location"] == location["code"]


# SSH keys ---------------------------------------------------------------------------------


async def test_ssh_key_create_get_list_delete(factory: Factory) -> None:
    tenant = await factory.tenant()
    public_key, fingerprint = make_key("me@laptop")
    created = await tenant.post(KEYS, json={"name": "laptop", "public_key": public_key})
    assert created.status_code == 201, created.text
    key = created.json()
    assert set(key) == {"id", "name", "public_key", "fingerprint", "created_at"}
    assert key["name"] == "laptop"
    assert key["public_key"] == public_key
    assert key["fingerprint"].startswith("SHA256:")
    assert key["fingerprint"] == fingerprint
    assert TIMESTAMP.fullmatch(key["created_at"])

    got = await tenant.get(f"{KEYS}{key['id']}/")
    assert got.status_code == 200
    assert got.json() == key

    listing = await tenant.get(KEYS)
    assert listing.status_code == 200
    assert listing.json() == {"count": 1, "next": None, "previous": None, "results": [key]}

    deleted = await tenant.delete(f"{KEYS}{key['id']}/")
    assert deleted.status_code == 204
    assert deleted.content == b""
    gone = await tenant.get(f"{KEYS}{key['id']}/")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "not_found"
    assert (await tenant.delete(f"{KEYS}{key['id']}/")).status_code == 404
    assert (await tenant.get(KEYS)).json()["count"] == 0


async def test_ssh_key_name_is_trimmed_and_key_normalised(factory: Factory) -> None:
    tenant = await factory.tenant()
    public_key, fingerprint = make_key("me@laptop")
    kind, data, comment = public_key.split(" ")
    created = await tenant.post(
        KEYS, json={"name": "  laptop  ", "public_key": f"  {kind}   {data}   {comment}\n"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "laptop"
    assert created.json()["public_key"] == public_key
    assert created.json()["fingerprint"] == fingerprint


async def test_ssh_key_list_is_paginated(factory: Factory) -> None:
    tenant = await factory.tenant()
    ids = []
    for n in range(3):
        response = await tenant.post(KEYS, json={"name": f"k{n}", "public_key": make_key()[0]})
        assert response.status_code == 201
        ids.append(response.json()["id"])
    first = await tenant.get(KEYS, params={"page_size": 2})
    assert first.status_code == 200
    page = first.json()
    assert set(page) == {"count", "next", "previous", "results"}
    assert page["count"] == 3
    assert page["previous"] is None
    assert [k["id"] for k in page["results"]] == ids[:2]
    assert page["next"] is not None
    second = (await tenant.get(page["next"])).json()
    assert second["count"] == 3
    assert [k["id"] for k in second["results"]] == ids[2:]
    assert second["next"] is None
    assert second["previous"] is not None
    back = (await tenant.get(second["previous"])).json()
    assert [k["id"] for k in back["results"]] == ids[:2]


@pytest.mark.parametrize(
    "public_key",
    ["not a key", "ssh-ed25519 AAAA", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 x", "ssh-dss AAAAB3Nz x"],
)
async def test_an_invalid_ssh_key_is_a_400_on_public_key(factory: Factory, public_key: str) -> None:
    tenant = await factory.tenant()
    response = await tenant.post(KEYS, json={"name": "bad", "public_key": public_key})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_parameters"
    assert [f["field"] for f in error["fields"]] == ["public_key"]
    assert (await tenant.get(KEYS)).json()["count"] == 0


async def test_a_duplicate_ssh_key_is_a_409_conflict(factory: Factory) -> None:
    tenant = await factory.tenant()
    public_key, fingerprint = make_key("first")
    first = await tenant.post(KEYS, json={"name": "one", "public_key": public_key})
    assert first.status_code == 201
    # The same key material with another comment and name is still the same key.
    kind, data, _ = public_key.split(" ")
    again = await tenant.post(KEYS, json={"name": "two", "public_key": f"{kind} {data} second"})
    assert again.status_code == 409, again.text
    error = again.json()["error"]
    assert error["code"] == "conflict"
    assert error["message"]
    assert error["request_id"] == again.headers["x-request-id"]
    listing = (await tenant.get(KEYS)).json()
    assert listing["count"] == 1
    assert listing["results"][0]["fingerprint"] == fingerprint
    assert listing["results"][0]["name"] == "one"
    # Once deleted, the key may be added again.
    assert (await tenant.delete(f"{KEYS}{first.json()['id']}/")).status_code == 204
    assert (
        await tenant.post(KEYS, json={"name": "3", "public_key": public_key})
    ).status_code == 201


async def test_a_server_can_be_created_with_an_ssh_key(factory: Factory) -> None:
    tenant = await factory.tenant()
    key = await tenant.post(KEYS, json={"name": "deploy", "public_key": make_key()[0]})
    assert key.status_code == 201
    created = await tenant.post(
        "/api/v1/servers/",
        json={
            "name": "with-key",
            "plan_id": 1,
            "os_id": 5,
            "location": "us-west",
            "ssh_key_id": key.json()["id"],
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "with-key"
    server = await tenant.wait_for_status(created.json()["id"], "active")
    assert server["ip_address"]


async def test_deleting_a_key_in_use_leaves_the_server_alone(factory: Factory) -> None:
    tenant = await factory.tenant()
    key = (await tenant.post(KEYS, json={"name": "deploy", "public_key": make_key()[0]})).json()
    server = await tenant.active_server(ssh_key_id=key["id"])
    deleted = await tenant.delete(f"{KEYS}{key['id']}/")
    assert deleted.status_code == 204, deleted.text
    assert (await tenant.get(f"{KEYS}{key['id']}/")).status_code == 404
    after = await tenant.get(f"/api/v1/servers/{server['id']}/")
    assert after.status_code == 200
    assert after.json()["status"] == "active"
    assert (await tenant.post(f"/api/v1/servers/{server['id']}/reboot/")).status_code == 200
    await tenant.wait_for_status(server["id"], "active")


# Account and credits ----------------------------------------------------------------------


async def test_account_shows_its_balance_as_a_decimal_string(factory: Factory) -> None:
    tenant = await factory.tenant(credits="123.45")
    response = await tenant.get("/api/v1/account/")
    assert response.status_code == 200
    account = response.json()
    assert set(account) >= {"id", "name", "balance", "recent_transactions"}
    assert account["name"] == tenant.name
    assert account["balance"] == "123.45"
    [topup] = account["recent_transactions"]
    assert topup["kind"] == "topup"
    assert topup["amount"] == "123.45"
    assert topup["balance_after"] == "123.45"


@pytest.mark.parametrize("backups", [False, True])
async def test_creating_a_server_charges_its_first_month(factory: Factory, backups: bool) -> None:
    tenant = await factory.tenant(credits="1000.00")
    monthly, backups_monthly = await plan_price(tenant, 2)
    price = monthly + (backups_monthly if backups else Decimal(0))
    server = await tenant.create_server(plan_id=2, os_id=3, backups_enabled=backups)

    account = (await tenant.get("/api/v1/account/")).json()
    expected_balance = Decimal("1000.00") - price
    assert account["balance"] == f"{expected_balance:.2f}"
    newest = account["recent_transactions"][0]
    assert newest["kind"] == "charge"
    assert newest["server_id"] == server["id"]
    assert DECIMAL.fullmatch(newest["amount"])
    assert Decimal(newest["amount"]) == -price
    assert newest["balance_after"] == f"{expected_balance:.2f}"
    assert newest["description"]
    assert TIMESTAMP.fullmatch(newest["created_at"])
    assert [e["kind"] for e in account["recent_transactions"]] == ["charge", "topup"]


async def test_insufficient_credits_is_a_402_and_creates_nothing(factory: Factory) -> None:
    tenant = await factory.tenant(credits="10.00")
    monthly, _ = await plan_price(tenant, 1)
    assert monthly > Decimal("10.00")
    response = await tenant.post(
        "/api/v1/servers/", json={"name": "poor", "plan_id": 1, "os_id": 5, "location": "us-west"}
    )
    assert response.status_code == 402, response.text
    error = response.json()["error"]
    assert error["code"] == "insufficient_credits"
    assert error["required"] == f"{monthly:.2f}"
    assert error["available"] == "10.00"
    assert error["request_id"] == response.headers["x-request-id"]
    assert (await tenant.get("/api/v1/servers/")).json()["count"] == 0
    assert await balance(tenant) == "10.00"
    ledger = (await tenant.get("/api/v1/account/")).json()["recent_transactions"]
    assert [e["kind"] for e in ledger] == ["topup"]


async def test_the_balance_can_be_spent_to_exactly_zero(factory: Factory) -> None:
    probe = await factory.tenant()
    monthly, _ = await plan_price(probe, 1)
    tenant = await factory.tenant(credits=f"{monthly:.2f}")
    await tenant.create_server()
    assert await balance(tenant) == "0.00"
    response = await tenant.post(
        "/api/v1/servers/", json={"name": "more", "plan_id": 1, "os_id": 5, "location": "us-west"}
    )
    assert response.status_code == 402
    assert response.json()["error"]["available"] == "0.00"
    assert (await tenant.get("/api/v1/servers/")).json()["count"] == 1
