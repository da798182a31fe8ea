"""Credits through HTTP: the create charge, 402, a race for the last credits, and refunds of
failed builds (exactly once), checked against the ledger in the database."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.factories import Factory, Tenant, eventually, unique_name
from vps.db.engine import Database
from vps.db.models import Account, Action, CreditTransaction, IpAllocation, Server
from vps.drivers.base import MachineSpec, PermanentDriverError, RetriableDriverError
from vps.drivers.simulator import SimulatorDriver
from vps.worker.engine import Worker

LOCATION = "us-east"
CENT = Decimal("0.01")


def money(value: Decimal) -> str:
    return f"{value.quantize(CENT)}"


async def plan_prices(tenant: Tenant, plan_id: int) -> tuple[Decimal, Decimal]:
    response = await tenant.get("/api/v1/plans/")
    assert response.status_code == 200
    (plan,) = [p for p in response.json() if p["id"] == plan_id]
    return Decimal(plan["monthly_price"]), Decimal(plan["backups_monthly_price"])


async def account(tenant: Tenant) -> dict[str, Any]:
    response = await tenant.get("/api/v1/account/")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def balance(tenant: Tenant) -> Decimal:
    return Decimal((await account(tenant))["balance"])


async def ledger(database: Database, account_id: int) -> list[CreditTransaction]:
    async with database.read() as session:
        rows = await session.scalars(
            select(CreditTransaction)
            .where(CreditTransaction.account_id == account_id)
            .order_by(CreditTransaction.id)
        )
        return list(rows)


async def stored_balance_cents(database: Database, account_id: int) -> int:
    async with database.read() as session:
        cents = await session.scalar(select(Account.balance_cents).where(Account.id == account_id))
    assert cents is not None
    return cents


async def assert_ledger_matches_balance(database: Database, account_id: int) -> None:
    entries = await ledger(database, account_id)
    stored = await stored_balance_cents(database, account_id)
    assert sum(e.amount_cents for e in entries) == stored
    assert stored >= 0
    # Every entry's running balance follows from the one before it.
    running = 0
    for entry in entries:
        running += entry.amount_cents
        assert entry.balance_after_cents == running, entry.id


async def count_rows(database: Database, model: Any, account_id: int) -> int:
    async with database.read() as session:
        total = await session.scalar(
            select(func.count()).select_from(model).where(model.account_id == account_id)
        )
    return int(total or 0)


async def db_status(database: Database, server_id: int) -> str:
    async with database.read() as session:
        status = await session.scalar(select(Server.status).where(Server.id == server_id))
    assert status is not None
    return status


async def delete_all(tenant: Tenant, server_ids: list[int]) -> None:
    for server_id in server_ids:
        await tenant.delete(f"/api/v1/servers/{server_id}/")


# The charge -----------------------------------------------------------------------------------


@pytest.mark.parametrize("backups", [False, True], ids=["plain", "backups"])
@pytest.mark.parametrize("plan_id", [1, 2, 3])
async def test_create_charges_the_plan_price(factory: Factory, plan_id: int, backups: bool) -> None:
    tenant = await factory.tenant("1000.00")
    monthly, backups_price = await plan_prices(tenant, plan_id)
    price = monthly + (backups_price if backups else Decimal(0))
    assert monthly > 0 and backups_price > 0
    before = await account(tenant)
    assert Decimal(before["balance"]) == Decimal("1000.00")

    created = await tenant.create_server(
        plan_id=plan_id, location=LOCATION, backups_enabled=backups
    )
    try:
        after = await account(tenant)
        assert Decimal(after["balance"]) == Decimal("1000.00") - price
        assert after["balance"] == money(Decimal("1000.00") - price)
        newest = after["recent_transactions"][0]
        assert newest["kind"] == "charge"
        assert newest["amount"] == f"-{money(price)}"
        assert newest["balance_after"] == after["balance"]
        assert newest["server_id"] == created["id"]
        charges = [e for e in after["recent_transactions"] if e["kind"] == "charge"]
        assert len(charges) == 1
        await assert_ledger_matches_balance(factory.database, after["id"])
    finally:
        await delete_all(tenant, [created["id"]])


async def test_the_server_running_costs_nothing_more_than_the_create(factory: Factory) -> None:
    tenant = await factory.tenant("100.00")
    monthly, _ = await plan_prices(tenant, 1)
    server = await tenant.active_server(location=LOCATION)
    try:
        sid = server["id"]
        for action, settles in (("stop", "stopped"), ("start", "active"), ("reboot", "active")):
            assert (await tenant.post(f"/api/v1/servers/{sid}/{action}/")).status_code == 200
            await tenant.wait_for_status(sid, settles)
        assert await balance(tenant) == Decimal("100.00") - monthly
    finally:
        await delete_all(tenant, [server["id"]])


# 402 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backups", [False, True], ids=["plain", "backups"])
async def test_insufficient_credits_answers_402_and_changes_nothing(
    factory: Factory, backups: bool
) -> None:
    tenant = await factory.tenant("10.00")
    monthly, backups_price = await plan_prices(tenant, 1)
    price = monthly + (backups_price if backups else Decimal(0))
    assert price > Decimal("10.00")
    account_id = (await account(tenant))["id"]

    response = await tenant.post(
        "/api/v1/servers/",
        json={
            "name": "too-expensive",
            "plan_id": 1,
            "os_id": 5,
            "location": LOCATION,
            "backups_enabled": backups,
        },
    )
    assert response.status_code == 402, response.text
    error = response.json()["error"]
    assert error["code"] == "insufficient_credits"
    assert error["required"] == money(price)
    assert error["available"] == "10.00"
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]

    assert (await tenant.get("/api/v1/servers/")).json()["count"] == 0
    summary = await account(tenant)
    assert summary["balance"] == "10.00"
    assert [e["kind"] for e in summary["recent_transactions"]] == ["topup"]
    assert await count_rows(factory.database, Server, account_id) == 0
    assert await count_rows(factory.database, Action, account_id) == 0
    assert [e.kind for e in await ledger(factory.database, account_id)] == ["topup"]
    await assert_ledger_matches_balance(factory.database, account_id)


async def test_exact_funds_are_enough_and_one_cent_less_is_not(factory: Factory) -> None:
    probe = await factory.tenant()
    monthly, _ = await plan_prices(probe, 3)

    short = await factory.tenant(money(monthly - CENT))
    refused = await short.post(
        "/api/v1/servers/", json={"name": "s1", "plan_id": 3, "os_id": 5, "location": LOCATION}
    )
    assert refused.status_code == 402
    assert refused.json()["error"]["required"] == money(monthly)
    assert refused.json()["error"]["available"] == money(monthly - CENT)

    exact = await factory.tenant(money(monthly))
    created = await exact.create_server(name="s1", plan_id=3, location=LOCATION)
    try:
        assert (await account(exact))["balance"] == "0.00"
        again = await exact.post(
            "/api/v1/servers/",
            json={"name": "s2", "plan_id": 3, "os_id": 5, "location": LOCATION},
        )
        assert again.status_code == 402
        assert again.json()["error"]["available"] == "0.00"
        assert (await exact.get("/api/v1/servers/")).json()["count"] == 1
    finally:
        await delete_all(exact, [created["id"]])


async def test_race_for_the_last_credits(factory: Factory) -> None:
    probe = await factory.tenant()
    price, _ = await plan_prices(probe, 3)
    affordable = 5
    remainder = price - CENT  # less than one more server
    tenant = await factory.tenant(money(price * affordable + remainder))
    account_id = (await account(tenant))["id"]
    body = {"plan_id": 3, "os_id": 5, "location": LOCATION}

    responses = await asyncio.gather(
        *(tenant.post("/api/v1/servers/", json={**body, "name": f"race-{i}"}) for i in range(20))
    )
    created = [r.json()["id"] for r in responses if r.status_code == 201]
    try:
        codes = [r.status_code for r in responses]
        assert codes.count(201) == affordable, codes
        assert codes.count(402) == 20 - affordable, codes
        for response in responses:
            if response.status_code == 402:
                error = response.json()["error"]
                assert error["code"] == "insufficient_credits"
                assert error["required"] == money(price)
                assert Decimal(0) <= Decimal(error["available"]) < price

        assert await balance(tenant) == remainder
        assert await stored_balance_cents(factory.database, account_id) == int(remainder * 100)
        await assert_ledger_matches_balance(factory.database, account_id)
        entries = await ledger(factory.database, account_id)
        assert [e.kind for e in entries] == ["topup"] + ["charge"] * affordable
        assert sorted(e.server_id or 0 for e in entries if e.kind == "charge") == sorted(created)
        assert await count_rows(factory.database, Server, account_id) == affordable
        listing = (await tenant.get("/api/v1/servers/")).json()
        assert sorted(s["id"] for s in listing["results"]) == sorted(created)
    finally:
        await delete_all(tenant, created)


# Refunds of failed builds ---------------------------------------------------------------------


def fail_creates_named(
    monkeypatch: pytest.MonkeyPatch, driver: SimulatorDriver, name: str, error: Exception
) -> list[MachineSpec]:
    """Make the session driver's create fail with `error` for servers named `name` only (other
    tests' servers keep building); returns the list of failed calls."""
    calls: list[MachineSpec] = []
    original = driver.create

    async def create(spec: MachineSpec) -> None:
        if spec.name == name:
            calls.append(spec)
            raise error
        await original(spec)

    monkeypatch.setattr(driver, "create", create)
    return calls


async def assert_refunded_once(
    factory: Factory, tenant: Tenant, server_id: int, price: Decimal, initial: Decimal
) -> None:
    summary = await account(tenant)
    assert Decimal(summary["balance"]) == initial
    refunds = [e for e in summary["recent_transactions"] if e["kind"] == "refund"]
    assert len(refunds) == 1, summary["recent_transactions"]
    assert refunds[0]["amount"] == money(price)
    assert refunds[0]["server_id"] == server_id
    assert refunds[0]["balance_after"] == money(initial)
    entries = await ledger(factory.database, summary["id"])
    assert [e.kind for e in entries] == ["topup", "charge", "refund"]
    assert entries[2].reference is not None
    await assert_ledger_matches_balance(factory.database, summary["id"])


async def assert_no_addresses(factory: Factory, server_id: int) -> None:
    async with factory.database.read() as session:
        held = await session.scalar(
            select(func.count())
            .select_from(IpAllocation)
            .where(IpAllocation.server_id == server_id)
        )
        row = (
            await session.execute(
                select(Server.ipv4_address, Server.ipv6_address).where(Server.id == server_id)
            )
        ).one()
    assert held == 0
    assert tuple(row) == (None, None)


async def delete_and_wait(factory: Factory, tenant: Tenant, server_id: int) -> None:
    assert (await tenant.delete(f"/api/v1/servers/{server_id}/")).status_code == 204

    async def gone() -> bool:
        return await db_status(factory.database, server_id) == "deleted"

    await eventually(gone, f"server {server_id} is deleted")


@pytest.mark.parametrize("backups", [False, True], ids=["plain", "backups"])
async def test_permanent_failure_ends_in_error_with_one_refund(
    factory: Factory,
    driver: SimulatorDriver,
    monkeypatch: pytest.MonkeyPatch,
    backups: bool,
) -> None:
    name = unique_name("doomed")
    calls = fail_creates_named(monkeypatch, driver, name, PermanentDriverError("no such image"))
    tenant = await factory.tenant("100.00")
    monthly, backups_price = await plan_prices(tenant, 1)
    price = monthly + (backups_price if backups else Decimal(0))

    created = await tenant.create_server(name=name, location=LOCATION, backups_enabled=backups)
    sid = created["id"]
    assert await balance(tenant) == Decimal("100.00") - price
    server = await tenant.wait_for_status(sid, "error")

    assert server["error"] == {"code": "driver_permanent", "message": "no such image"}
    assert server["ip_address"] is None
    assert server["ipv6_address"] is None
    assert len(calls) == 1
    assert sid not in driver.machines
    await assert_no_addresses(factory, sid)
    await assert_refunded_once(factory, tenant, sid, price, Decimal("100.00"))
    listed = (await tenant.get("/api/v1/servers/", params={"status": "error"})).json()
    assert [s["id"] for s in listed["results"]] == [sid]
    assert listed["results"][0]["error"]["code"] == "driver_permanent"

    # Deleting the failed server refunds nothing more.
    await delete_and_wait(factory, tenant, sid)
    await assert_refunded_once(factory, tenant, sid, price, Decimal("100.00"))


async def test_retriable_failure_gives_up_after_max_attempts_with_one_refund(
    factory: Factory, driver: SimulatorDriver, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique_name("flaky")
    calls = fail_creates_named(monkeypatch, driver, name, RetriableDriverError("hypervisor busy"))
    tenant = await factory.tenant("100.00")
    monthly, _ = await plan_prices(tenant, 1)

    created = await tenant.create_server(name=name, location=LOCATION)
    sid = created["id"]
    server = await tenant.wait_for_status(sid, "error")

    max_attempts = worker.config.retry.max_attempts
    assert max_attempts == 3
    assert len(calls) == max_attempts
    assert server["error"]["code"] == "driver_retriable"
    assert "gave up after retries" in server["error"]["message"]
    assert "hypervisor busy" in server["error"]["message"]
    assert server["ip_address"] is None
    assert sid not in driver.machines
    await assert_no_addresses(factory, sid)
    await assert_refunded_once(factory, tenant, sid, monthly, Decimal("100.00"))

    await delete_and_wait(factory, tenant, sid)
    assert len(calls) == max_attempts
    await assert_refunded_once(factory, tenant, sid, monthly, Decimal("100.00"))


async def test_a_retriable_failure_that_recovers_charges_once_and_refunds_nothing(
    factory: Factory, driver: SimulatorDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique_name("wobbly")
    failures: list[MachineSpec] = []
    original = driver.create

    async def create(spec: MachineSpec) -> None:
        if spec.name == name and not failures:
            failures.append(spec)
            raise RetriableDriverError("connection reset")
        await original(spec)

    monkeypatch.setattr(driver, "create", create)
    tenant = await factory.tenant("100.00")
    monthly, _ = await plan_prices(tenant, 1)
    created = await tenant.create_server(name=name, location=LOCATION)
    try:
        server = await tenant.wait_for_status(created["id"], "active")
        assert len(failures) == 1
        assert server["error"] is None
        assert server["ip_address"] is not None
        summary = await account(tenant)
        assert Decimal(summary["balance"]) == Decimal("100.00") - monthly
        assert [e["kind"] for e in summary["recent_transactions"]] == ["charge", "topup"]
        await assert_ledger_matches_balance(factory.database, summary["id"])
    finally:
        await delete_all(tenant, [created["id"]])


async def test_a_failed_build_processed_twice_is_refunded_once(
    factory: Factory, driver: SimulatorDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As if a second worker also saw the server provisioning and failed it again: the refund's
    unique reference keeps it to one."""
    name = unique_name("twice")
    calls = fail_creates_named(monkeypatch, driver, name, PermanentDriverError("bad image"))
    tenant = await factory.tenant("100.00")
    monthly, _ = await plan_prices(tenant, 1)
    created = await tenant.create_server(name=name, location=LOCATION)
    sid = created["id"]
    await tenant.wait_for_status(sid, "error")
    await assert_refunded_once(factory, tenant, sid, monthly, Decimal("100.00"))

    await factory.force_status(sid, "provisioning")
    await factory.release_hold(sid)

    async def failed_again() -> bool:
        return len(calls) == 2 and await db_status(factory.database, sid) == "error"

    await eventually(failed_again, f"server {sid} failed a second time")
    await assert_refunded_once(factory, tenant, sid, monthly, Decimal("100.00"))
    await assert_no_addresses(factory, sid)
    await delete_and_wait(factory, tenant, sid)
