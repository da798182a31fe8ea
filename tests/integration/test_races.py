"""Races through the in-process API, at a larger scale than the other tests: 200 creates for
the last credits of an account, and 20 reboots of one server that must reach the driver once."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.factories import Factory, Tenant, eventually, unique_name
from vps.db.engine import Database
from vps.db.models import Account, CreditTransaction, Server
from vps.drivers.simulator import SimulatorDriver

LOCATION = "us-east"
CENT = Decimal("0.01")
PLAN_ID = 3
CREATES = 200
AFFORDABLE = 37


def money(value: Decimal) -> str:
    return f"{value.quantize(CENT)}"


async def plan_price(tenant: Tenant, plan_id: int) -> Decimal:
    response = await tenant.get("/api/v1/plans/")
    assert response.status_code == 200, response.text
    (plan,) = [p for p in response.json() if p["id"] == plan_id]
    price = Decimal(plan["monthly_price"])
    assert price > CENT
    return price


async def account_id_of(tenant: Tenant) -> int:
    response = await tenant.get("/api/v1/account/")
    assert response.status_code == 200, response.text
    return int(response.json()["id"])


async def ledger_amounts(database: Database, account_id: int) -> list[tuple[str, int, int]]:
    async with database.read() as session:
        rows = await session.execute(
            select(
                CreditTransaction.kind,
                CreditTransaction.amount_cents,
                CreditTransaction.balance_after_cents,
            )
            .where(CreditTransaction.account_id == account_id)
            .order_by(CreditTransaction.id)
        )
        return [(kind, amount, after) for kind, amount, after in rows.all()]


async def stored_balance_cents(database: Database, account_id: int) -> int:
    async with database.read() as session:
        cents = await session.scalar(select(Account.balance_cents).where(Account.id == account_id))
    assert cents is not None
    return int(cents)


async def delete_and_wait(database: Database, tenant: Tenant, server_ids: list[int]) -> None:
    """Delete the servers and wait until the worker destroyed them (their addresses return to
    the pool before the next round)."""
    for server_id in server_ids:
        await tenant.delete(f"/api/v1/servers/{server_id}/")
    if not server_ids:
        return

    async def all_deleted() -> bool:
        async with database.read() as session:
            left = await session.scalar(
                select(func.count())
                .select_from(Server)
                .where(Server.id.in_(server_ids), Server.status != "deleted")
            )
        return left == 0

    await eventually(all_deleted, f"{len(server_ids)} servers to be deleted", 60.0)


@pytest.mark.parametrize("round_", [1, 2, 3])
async def test_two_hundred_creates_for_thirty_seven_servers_worth_of_credits(
    factory: Factory, round_: int
) -> None:
    probe = await factory.tenant()
    price = await plan_price(probe, PLAN_ID)
    remainder = price - CENT  # not enough for one more server
    initial = price * AFFORDABLE + remainder
    tenant = await factory.tenant(money(initial))
    account_id = await account_id_of(tenant)
    body: dict[str, Any] = {"plan_id": PLAN_ID, "os_id": 5, "location": LOCATION}

    responses = await asyncio.gather(
        *(
            tenant.post("/api/v1/servers/", json={**body, "name": f"r{round_}-race-{i}"})
            for i in range(CREATES)
        )
    )
    created = [int(r.json()["id"]) for r in responses if r.status_code == 201]
    try:
        codes = Counter(r.status_code for r in responses)
        assert codes == {201: AFFORDABLE, 402: CREATES - AFFORDABLE}, codes
        for response in responses:
            if response.status_code == 402:
                error = response.json()["error"]
                assert error["code"] == "insufficient_credits"
                assert error["required"] == money(price)
                assert Decimal(0) <= Decimal(error["available"]) < price

        summary = (await tenant.get("/api/v1/account/")).json()
        assert Decimal(summary["balance"]) == remainder
        assert summary["balance"] == money(remainder)
        stored = await stored_balance_cents(factory.database, account_id)
        assert stored == int(remainder * 100)

        entries = await ledger_amounts(factory.database, account_id)
        assert sum(amount for _, amount, _ in entries) == stored
        assert [kind for kind, _, _ in entries] == ["topup"] + ["charge"] * AFFORDABLE
        assert all(amount == -int(price * 100) for kind, amount, _ in entries if kind == "charge")
        running = 0
        for _, amount, after in entries:
            running += amount
            assert after == running
            assert after >= 0  # never negative, at any point of the ledger

        async with factory.database.read() as session:
            servers = await session.scalar(
                select(func.count()).select_from(Server).where(Server.account_id == account_id)
            )
        assert servers == AFFORDABLE
        listing = (await tenant.get("/api/v1/servers/", params={"page_size": 100})).json()
        assert listing["count"] == AFFORDABLE
    finally:
        await delete_and_wait(factory.database, tenant, created)


async def test_twenty_concurrent_reboots_reach_the_driver_once(
    factory: Factory, driver: SimulatorDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await factory.tenant()
    server = await tenant.active_server(name=unique_name("reboot"), location=LOCATION)
    sid = int(server["id"])
    calls: Counter[int] = Counter()
    gate = asyncio.Event()
    original = driver.reboot

    async def counted_reboot(server_id: int) -> None:
        calls[server_id] += 1
        if server_id == sid:
            await gate.wait()
        await original(server_id)

    monkeypatch.setattr(driver, "reboot", counted_reboot)
    try:
        responses = await asyncio.gather(
            *(tenant.post(f"/api/v1/servers/{sid}/reboot/") for _ in range(20))
        )
        codes = Counter(r.status_code for r in responses)
        assert codes == {200: 1, 400: 19}, codes
        for response in responses:
            if response.status_code == 400:
                error = response.json()["error"]
                assert error["code"] == "invalid_state"
                assert error["current_status"] == "rebooting"
        assert (await tenant.get(f"/api/v1/servers/{sid}/")).json()["status"] == "rebooting"
        gate.set()
        await tenant.wait_for_status(sid, "active")
        assert calls[sid] == 1, calls
    finally:
        gate.set()
        await delete_and_wait(factory.database, tenant, [sid])
