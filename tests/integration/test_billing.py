"""Billing periods through HTTP and the worker: renewals charged once per period (twice run,
two workers at once, a late worker), suspension when the credits run out (machine off, power
actions refused), top-ups that resume, and pro-rata refunds on delete.

Each test has its own database (a fresh SQLite file, or a fresh PostgreSQL database), an API
and a worker that share one injected clock, so a month passes in a line; the worker is driven
step by step (`run_until_idle` for lifecycle work, `billing_step` for a billing sweep). At the
end of every test the ledger is checked against every balance and every server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from tests.conftest import FAST, new_database_url
from tests.factories import HOLD_OWNER, Factory, Tenant, eventually
from vps.api.app import create_app
from vps.cli.main import app as cli_app
from vps.config import Settings
from vps.db import migrate
from vps.db.engine import Database
from vps.db.models import Account, CreditTransaction, Server
from vps.db.types import utcnow
from vps.domain.billing import PAYMENT_REQUIRED, BillingTerms
from vps.domain.money import parse_amount
from vps.drivers.base import MachineSpec, PermanentDriverError, RetriableDriverError
from vps.drivers.simulator import SimulatorDriver
from vps.runtime import worker_config
from vps.services import accounts, billing, renewals, servers
from vps.services.lifecycle import RetryPolicy
from vps.services.principal import Principal
from vps.services.servers import ServerDraft
from vps.worker.engine import Worker, WorkerConfig

MONTH = timedelta(days=30)
HOUR = timedelta(hours=1)
LOCATION = "us-east"
# Catalog prices, in cents (migration 0001): plan 1 is 24.00 (+4.80 backups), plan 3 is 6.00.
STANDARD, STANDARD_BACKUPS, STARTER = 2400, 480, 600


class Clock:
    """One clock for the API and the worker, moved by the test."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Harness:
    settings: Settings
    database: Database
    driver: SimulatorDriver
    clock: Clock
    worker: Worker
    factory: Factory

    def new_worker(self) -> Worker:
        return Worker(self.database, self.driver, self.worker.config, clock=self.clock)

    async def settle(self) -> None:
        """Let the worker finish every transition (builds, starts, power-offs)."""
        await self.worker.run_until_idle()

    async def sweep(self) -> None:
        """One billing sweep, and the work it leaves (power-offs, starts)."""
        await self.worker.billing_step()
        await self.settle()

    async def active_server(self, tenant: Tenant, **overrides: Any) -> dict[str, Any]:
        created = await tenant.create_server(location=LOCATION, **overrides)
        await self.settle()
        return await tenant.wait_for_status(created["id"], "active")

    async def hold(self, server_id: int, status: str) -> None:
        """Put a server in `status` and keep every worker off it, whatever the clock says."""
        async with self.database.write() as session:
            await session.execute(
                update(Server)
                .where(Server.id == server_id)
                .values(
                    status=status,
                    lease_owner=HOLD_OWNER,
                    lease_expires_at=self.clock.now + timedelta(days=3650),
                )
            )

    async def row(self, server_id: int) -> Server:
        async with self.database.read() as session:
            server = await session.get(Server, server_id)
        assert server is not None
        return server

    async def account_id(self, tenant: Tenant) -> int:
        response = await tenant.get("/api/v1/account/")
        assert response.status_code == 200
        account_id: int = response.json()["id"]
        return account_id

    async def balance(self, tenant: Tenant) -> int:
        async with self.database.read() as session:
            cents = await session.scalar(
                select(Account.balance_cents).where(Account.name == tenant.name)
            )
        assert cents is not None
        return cents

    async def ledger(self, tenant: Tenant) -> list[CreditTransaction]:
        account_id = await self.account_id(tenant)
        async with self.database.read() as session:
            rows = await session.scalars(
                select(CreditTransaction)
                .where(CreditTransaction.account_id == account_id)
                .order_by(CreditTransaction.id)
            )
            return list(rows)

    async def references(self, tenant: Tenant) -> list[str | None]:
        return [entry.reference for entry in await self.ledger(tenant)]

    async def top_up(self, tenant: Tenant, amount: str) -> accounts.CreditsAdded:
        """What `vps credits add` does, on the test's clock."""
        async with self.database.write() as session:
            return await accounts.add_credits(
                session, tenant.name, parse_amount(amount), self.clock(), self.worker.config.billing
            )

    async def assert_invariants(self) -> None:
        """For every account: balance == sum of its ledger, never negative, each entry's
        running balance right; for every server: exactly one charge for each of its periods
        so far, and at most one refund of each kind."""
        async with self.database.read() as session:
            entries = list(
                await session.scalars(select(CreditTransaction).order_by(CreditTransaction.id))
            )
            balances = dict(
                (await session.execute(select(Account.id, Account.balance_cents))).all()
            )
            periods = dict((await session.execute(select(Server.id, Server.billing_period))).all())
        for account_id, balance in balances.items():
            mine = [e for e in entries if e.account_id == account_id]
            assert balance >= 0
            assert sum(e.amount_cents for e in mine) == balance, account_id
            running = 0
            for entry in mine:
                running += entry.amount_cents
                assert entry.balance_after_cents == running, entry.id
        for server_id, period in periods.items():
            charges = sorted(
                e.reference or ""
                for e in entries
                if e.server_id == server_id and e.kind == "charge"
            )
            expected = sorted(billing.period_reference(server_id, n) for n in range(1, period + 1))
            assert charges == expected, server_id
            refunds = [
                e.reference for e in entries if e.server_id == server_id and e.kind == "refund"
            ]
            assert len(refunds) == len(set(refunds)) <= 2, server_id


@pytest.fixture
def billing_database_url(tmp_path: Path) -> Iterator[str]:
    with new_database_url(tmp_path) as url:
        yield url


@pytest.fixture
async def harness(billing_database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    settings = Settings(
        database_url=billing_database_url,
        data_dir=tmp_path,
        demo=False,
        sim_provision_seconds=FAST.provision_seconds,
        sim_action_seconds=FAST.action_seconds,
        sim_delete_seconds=FAST.delete_seconds,
    )
    database = Database(settings.resolved_database_url)
    await migrate.upgrade(database)
    driver = SimulatorDriver(FAST)
    clock = Clock()
    config = WorkerConfig(
        concurrency=32,
        poll_seconds=0.05,
        lease_seconds=3.0,
        usage_sample_seconds=0.5,
        billing=BillingTerms(MONTH),
        retry=RetryPolicy(max_attempts=3, base_seconds=0.05, max_seconds=0.2),
    )
    worker = Worker(database, driver, config, clock=clock)
    app = create_app(settings, database)
    app.state.vps.clock = clock
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Harness(settings, database, driver, clock, worker, Factory(http, database))
    finally:
        await database.dispose()


async def status_of(tenant: Tenant, server_id: int) -> str:
    response = await tenant.get(f"/api/v1/servers/{server_id}/")
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


# The first period -----------------------------------------------------------------------------


async def test_create_pays_for_one_period_from_now(harness: Harness) -> None:
    tenant = await harness.factory.tenant("100.00")
    server = await harness.active_server(tenant, backups_enabled=True)
    row = await harness.row(server["id"])
    assert row.paid_from == harness.clock.now
    assert row.paid_until == harness.clock.now + MONTH
    assert row.billing_period == 1
    assert await harness.balance(tenant) == 10000 - STANDARD - STANDARD_BACKUPS
    assert await harness.references(tenant) == [None, f"server:{server['id']}:create"]

    # Nothing is due before the period ends, however often the worker looks.
    harness.clock.advance(MONTH - timedelta(seconds=1))
    await harness.sweep()
    await harness.sweep()
    assert (await harness.row(server["id"])).billing_period == 1
    assert await harness.balance(tenant) == 10000 - STANDARD - STANDARD_BACKUPS
    await harness.assert_invariants()


async def test_a_period_lasts_what_the_setting_says(harness: Harness) -> None:
    """The services take the period as a value (here a compressed one of 90 seconds)."""
    terms = BillingTerms.from_seconds(90)
    tenant = await harness.factory.tenant("100.00")
    account_id = await harness.account_id(tenant)
    principal = Principal(account_id=account_id, token_id=0, read_only=False)
    draft = ServerDraft(name="short", plan_id=3, os_id=5, location=LOCATION)
    now = harness.clock.now
    async with harness.database.write() as session:
        created = await servers.create_server(session, principal, draft, now, terms)
    server_id = created.server.id
    assert (await harness.row(server_id)).paid_until == now + timedelta(seconds=90)
    await harness.settle()

    async with harness.database.write() as session:
        assert await renewals.renew(session, server_id, now, terms) is renewals.Renewal.SKIPPED
    async with harness.database.write() as session:
        outcome = await renewals.renew(session, server_id, now + timedelta(seconds=90), terms)
    assert outcome is renewals.Renewal.RENEWED
    row = await harness.row(server_id)
    assert (row.paid_from, row.paid_until) == (
        now + timedelta(seconds=90),
        now + timedelta(seconds=180),
    )
    assert await harness.balance(tenant) == 10000 - 2 * STARTER
    await harness.assert_invariants()


def test_the_worker_gets_its_period_from_the_settings(tmp_path: Path) -> None:
    config = worker_config(Settings(data_dir=tmp_path, billing_period_seconds=120))
    assert config.billing.period == timedelta(seconds=120)
    assert config.billing_sweep_seconds == 12
    default = worker_config(Settings(data_dir=tmp_path))
    assert default.billing.period == MONTH
    assert default.billing_sweep_seconds == 60


# Renewals -------------------------------------------------------------------------------------


async def test_renewal_charges_each_period_once_however_often_the_step_runs(
    harness: Harness,
) -> None:
    tenant = await harness.factory.tenant("100.00")
    server = await harness.active_server(tenant)
    sid, start = server["id"], harness.clock.now

    harness.clock.advance(MONTH)
    for _ in range(3):
        await harness.sweep()
    row = await harness.row(sid)
    assert (row.paid_from, row.paid_until, row.billing_period) == (
        start + MONTH,
        start + 2 * MONTH,
        2,
    )
    assert await harness.balance(tenant) == 10000 - 2 * STANDARD
    assert await status_of(tenant, sid) == "active"
    assert harness.driver.machines[sid].running is True

    harness.clock.advance(MONTH)
    await harness.sweep()
    await harness.sweep()
    assert (await harness.row(sid)).billing_period == 3
    assert await harness.balance(tenant) == 10000 - 3 * STANDARD
    assert await harness.references(tenant) == [
        None,
        f"server:{sid}:create",
        f"server:{sid}:period:2",
        f"server:{sid}:period:3",
    ]
    newest = (await tenant.get("/api/v1/account/")).json()["recent_transactions"][0]
    assert newest["kind"] == "charge"
    assert newest["amount"] == "-24.00"
    assert newest["server_id"] == sid
    assert "Period 3" in newest["description"]
    await harness.assert_invariants()


async def test_two_workers_renewing_at_once_charge_each_period_once(harness: Harness) -> None:
    tenant = await harness.factory.tenant("500.00")
    ids = []
    for i in range(6):
        ids.append((await harness.active_server(tenant, name=f"s{i}", plan_id=3))["id"])
    other = harness.new_worker()

    harness.clock.advance(MONTH)
    await asyncio.gather(harness.worker.billing_step(), other.billing_step())
    await harness.settle()
    for sid in ids:
        assert (await harness.row(sid)).billing_period == 2
    assert await harness.balance(tenant) == 50000 - 2 * 6 * STARTER

    # Many renewals of one server, each in its own transaction, all at once: one wins.
    harness.clock.advance(MONTH)
    terms = harness.worker.config.billing

    async def renew(server_id: int) -> renewals.Renewal:
        async with harness.database.write() as session:
            return await renewals.renew(session, server_id, harness.clock.now, terms)

    outcomes = await asyncio.gather(*(renew(ids[0]) for _ in range(8)))
    assert outcomes.count(renewals.Renewal.RENEWED) == 1, outcomes
    assert outcomes.count(renewals.Renewal.SKIPPED) == 7, outcomes
    await asyncio.gather(harness.worker.billing_step(), other.billing_step())
    await harness.settle()
    for sid in ids:
        assert (await harness.row(sid)).billing_period == 3
    assert await harness.balance(tenant) == 50000 - 3 * 6 * STARTER
    await harness.assert_invariants()


async def test_a_late_worker_charges_every_missed_period_back_to_back(harness: Harness) -> None:
    tenant = await harness.factory.tenant("100.00")
    server = await harness.active_server(tenant, plan_id=3)
    sid, start = server["id"], harness.clock.now

    harness.clock.advance(3 * MONTH + HOUR)
    await harness.sweep()
    row = await harness.row(sid)
    # No gap and no overlap: the server had four periods, it paid for four.
    assert (row.paid_from, row.paid_until, row.billing_period) == (
        start + 3 * MONTH,
        start + 4 * MONTH,
        4,
    )
    assert await harness.balance(tenant) == 10000 - 4 * STARTER
    await harness.assert_invariants()


async def test_which_servers_are_renewed(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped and busy servers are renewed; one still being built, or failed, is not."""
    tenant = await harness.factory.tenant("100.00")
    stopped = await harness.active_server(tenant, name="stopped", plan_id=3)
    assert (await tenant.post(f"/api/v1/servers/{stopped['id']}/stop/")).status_code == 200
    await harness.settle()
    rebooting = await harness.active_server(tenant, name="rebooting", plan_id=3)
    await harness.hold(rebooting["id"], "rebooting")
    building = await harness.active_server(tenant, name="building", plan_id=3)
    await harness.hold(building["id"], "provisioning")

    async def no_build(spec: MachineSpec) -> None:
        raise PermanentDriverError("no such image")

    monkeypatch.setattr(harness.driver, "create", no_build)
    failed = await tenant.create_server(name="failed", plan_id=3, location=LOCATION)
    await harness.settle()
    assert await status_of(tenant, failed["id"]) == "error"
    balance = await harness.balance(tenant)

    harness.clock.advance(MONTH)
    await harness.sweep()
    periods = {
        name: (await harness.row(server["id"])).billing_period
        for name, server in (
            ("stopped", stopped),
            ("rebooting", rebooting),
            ("building", building),
            ("failed", failed),
        )
    }
    assert periods == {"stopped": 2, "rebooting": 2, "building": 1, "failed": 1}
    assert await status_of(tenant, stopped["id"]) == "stopped"
    assert await harness.balance(tenant) == balance - 2 * STARTER
    await harness.assert_invariants()


async def test_a_busy_server_that_cannot_pay_is_suspended_once_it_settles(
    harness: Harness,
) -> None:
    tenant = await harness.factory.tenant("6.00")
    server = await harness.active_server(tenant, plan_id=3)
    sid = server["id"]
    await harness.hold(sid, "rebooting")
    harness.clock.advance(MONTH)
    await harness.sweep()
    assert await status_of(tenant, sid) == "rebooting"

    async with harness.database.write() as session:
        await session.execute(
            update(Server)
            .where(Server.id == sid)
            .values(status="active", lease_owner=None, lease_expires_at=None)
        )
    await harness.sweep()
    assert await status_of(tenant, sid) == "suspended"
    assert harness.driver.machines[sid].running is False
    assert await harness.balance(tenant) == 0
    await harness.assert_invariants()


# Suspension -----------------------------------------------------------------------------------


async def test_a_server_the_credits_do_not_cover_is_suspended_and_powered_off(
    harness: Harness,
) -> None:
    tenant = await harness.factory.tenant("34.00")
    server = await harness.active_server(tenant)
    sid = server["id"]
    assert harness.driver.machines[sid].running is True
    assert await harness.balance(tenant) == 1000

    harness.clock.advance(MONTH)
    await harness.sweep()
    body = (await tenant.get(f"/api/v1/servers/{sid}/")).json()
    assert body["status"] == "suspended"
    assert body["error"]["code"] == PAYMENT_REQUIRED
    assert "24.00" in body["error"]["message"] and "10.00" in body["error"]["message"]
    assert body["ip_address"] is not None
    assert harness.driver.machines[sid].running is False
    row = await harness.row(sid)
    assert (row.billing_period, row.power_off_pending) == (1, False)
    assert await harness.balance(tenant) == 1000
    assert f"server:{sid}:period:2" not in await harness.references(tenant)

    # Kept and listed with its status; every power action is refused with a way out.
    listed = (await tenant.get("/api/v1/servers/", params={"status": "suspended"})).json()
    assert [s["id"] for s in listed["results"]] == [sid]
    for action in ("start", "stop", "reboot"):
        response = await tenant.post(f"/api/v1/servers/{sid}/{action}/")
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_state"
        assert "suspended" in error["message"]
        assert "top up" in error["message"].lower()

    # Later sweeps neither charge nor touch it: it stays suspended and off.
    harness.clock.advance(MONTH)
    await harness.sweep()
    assert await status_of(tenant, sid) == "suspended"
    assert harness.driver.machines[sid].running is False
    assert await harness.balance(tenant) == 1000
    await harness.assert_invariants()


async def test_a_suspended_machine_is_powered_off_even_if_the_first_stop_fails(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Level-based: the pending power-off survives a failed stop, and the next sweep does it."""
    tenant = await harness.factory.tenant("24.00")
    server = await harness.active_server(tenant)
    sid = server["id"]
    original = harness.driver.stop
    calls: list[int] = []

    async def flaky_stop(server_id: int) -> None:
        calls.append(server_id)
        if len(calls) == 1:
            raise RetriableDriverError("hypervisor busy")
        await original(server_id)

    monkeypatch.setattr(harness.driver, "stop", flaky_stop)
    harness.clock.advance(MONTH)
    await harness.sweep()
    assert await status_of(tenant, sid) == "suspended"
    assert harness.driver.machines[sid].running is True
    assert (await harness.row(sid)).power_off_pending is True

    harness.clock.advance(timedelta(minutes=1))
    await harness.sweep()
    assert calls == [sid, sid]
    assert harness.driver.machines[sid].running is False
    assert (await harness.row(sid)).power_off_pending is False
    await harness.assert_invariants()


async def test_a_stopped_server_is_suspended_too(harness: Harness) -> None:
    tenant = await harness.factory.tenant("24.00")
    server = await harness.active_server(tenant)
    sid = server["id"]
    assert (await tenant.post(f"/api/v1/servers/{sid}/stop/")).status_code == 200
    await harness.settle()
    harness.clock.advance(MONTH)
    await harness.sweep()
    assert await status_of(tenant, sid) == "suspended"
    assert harness.driver.machines[sid].running is False
    start = await tenant.post(f"/api/v1/servers/{sid}/start/")
    assert start.status_code == 400
    assert "top up" in start.json()["error"]["message"].lower()
    await harness.assert_invariants()


# Top-ups --------------------------------------------------------------------------------------


async def test_a_top_up_renews_and_resumes_a_suspended_server(harness: Harness) -> None:
    tenant = await harness.factory.tenant("30.00")
    server = await harness.active_server(tenant)
    sid = server["id"]
    harness.clock.advance(MONTH)
    await harness.sweep()
    assert await status_of(tenant, sid) == "suspended"

    # Suspended for ten days: that time is not billed; the new period starts at the top-up.
    harness.clock.advance(timedelta(days=10))
    too_little = await harness.top_up(tenant, "10.00")
    assert too_little.resumed_server_ids == []
    assert too_little.balance_cents == 1600
    assert await status_of(tenant, sid) == "suspended"

    added = await harness.top_up(tenant, "10.00")
    assert added.resumed_server_ids == [sid]
    assert added.balance_cents == 2600 - STANDARD
    assert await status_of(tenant, sid) == "starting"
    await harness.settle()
    body = await tenant.wait_for_status(sid, "active")
    assert body["error"] is None
    assert harness.driver.machines[sid].running is True
    row = await harness.row(sid)
    assert (row.paid_from, row.paid_until, row.billing_period) == (
        harness.clock.now,
        harness.clock.now + MONTH,
        2,
    )
    assert (await harness.ledger(tenant))[-1].reference == f"server:{sid}:period:2"

    # Power actions work again; another top-up charges nothing more.
    assert (await tenant.post(f"/api/v1/servers/{sid}/reboot/")).status_code == 200
    await harness.settle()
    again = await harness.top_up(tenant, "1.00")
    assert again.resumed_server_ids == []
    assert again.balance_cents == 2600 - STANDARD + 100
    await harness.sweep()
    assert (await harness.row(sid)).billing_period == 2
    await harness.assert_invariants()


async def test_a_top_up_resumes_the_oldest_servers_it_can_pay_for(harness: Harness) -> None:
    tenant = await harness.factory.tenant(f"{(STANDARD + 2 * STARTER) / 100:.2f}")
    oldest = await harness.active_server(tenant, name="oldest")
    middle = await harness.active_server(tenant, name="middle", plan_id=3)
    newest = await harness.active_server(tenant, name="newest", plan_id=3)
    assert await harness.balance(tenant) == 0
    harness.clock.advance(MONTH)
    await harness.sweep()
    ids = [oldest["id"], middle["id"], newest["id"]]
    assert [await status_of(tenant, sid) for sid in ids] == ["suspended"] * 3

    # 29.99 pays for the oldest (24.00); the 5.99 left pays for neither 6.00 one. (Newest
    # first would have resumed both small ones and left 17.99.)
    added = await harness.top_up(tenant, "29.99")
    assert added.resumed_server_ids == [oldest["id"]]
    assert added.balance_cents == 599
    assert await status_of(tenant, middle["id"]) == "suspended"
    # 6.01 more makes 12.00: both small ones, oldest first.
    added = await harness.top_up(tenant, "6.01")
    assert added.resumed_server_ids == [middle["id"], newest["id"]]
    assert added.balance_cents == 0
    await harness.settle()
    assert [await status_of(tenant, sid) for sid in ids] == ["active"] * 3
    assert all(harness.driver.machines[sid].running for sid in ids)
    await harness.assert_invariants()


async def test_a_too_dear_server_is_passed_over_for_a_cheaper_one(harness: Harness) -> None:
    tenant = await harness.factory.tenant("30.00")
    dear = await harness.active_server(tenant, name="dear")
    cheap = await harness.active_server(tenant, name="cheap", plan_id=3)
    harness.clock.advance(MONTH)
    await harness.sweep()
    assert await status_of(tenant, dear["id"]) == "suspended"
    assert await status_of(tenant, cheap["id"]) == "suspended"

    added = await harness.top_up(tenant, "10.00")
    assert added.resumed_server_ids == [cheap["id"]]
    assert await status_of(tenant, dear["id"]) == "suspended"
    await harness.assert_invariants()


async def test_the_worker_resumes_a_server_once_its_account_can_pay_again(
    harness: Harness,
) -> None:
    """Credits that arrive other than by a top-up (here the refund of a deleted server) are
    picked up by the next sweep."""
    tenant = await harness.factory.tenant(f"{(STARTER + STANDARD) / 100:.2f}")
    keep = await harness.active_server(tenant, name="keep", plan_id=3)
    harness.clock.advance(timedelta(days=15))
    drop = await harness.active_server(tenant, name="drop")
    harness.clock.advance(timedelta(days=15))
    await harness.sweep()
    assert await status_of(tenant, keep["id"]) == "suspended"
    assert await status_of(tenant, drop["id"]) == "active"

    # Deleting the younger one refunds its 15 unused days, 12.00: enough for 6.00.
    assert (await tenant.delete(f"/api/v1/servers/{drop['id']}/")).status_code == 204
    assert await harness.balance(tenant) == STANDARD // 2
    assert await status_of(tenant, keep["id"]) == "suspended"
    await harness.sweep()
    await tenant.wait_for_status(keep["id"], "active")
    assert harness.driver.machines[keep["id"]].running is True
    assert await harness.balance(tenant) == STANDARD // 2 - STARTER
    await harness.assert_invariants()


async def test_a_top_up_racing_two_sweeps_resumes_each_server_once(harness: Harness) -> None:
    tenant = await harness.factory.tenant(f"{(STANDARD + STARTER) / 100:.2f}")
    ids = [
        (await harness.active_server(tenant, name="dear"))["id"],
        (await harness.active_server(tenant, name="cheap", plan_id=3))["id"],
    ]
    harness.clock.advance(MONTH)
    await harness.sweep()
    assert [await status_of(tenant, sid) for sid in ids] == ["suspended"] * 2
    other = harness.new_worker()

    # On PostgreSQL the three really run at once: whoever resumes a server, it is resumed
    # and charged once, and none of them deadlocks (all take the account before the servers).
    await asyncio.gather(
        harness.top_up(tenant, "30.00"), harness.worker.billing_step(), other.billing_step()
    )
    await harness.sweep()
    assert [(await harness.row(sid)).billing_period for sid in ids] == [2, 2]
    assert [await status_of(tenant, sid) for sid in ids] == ["active"] * 2
    assert await harness.balance(tenant) == 0
    await harness.assert_invariants()


async def test_vps_credits_add_reports_the_servers_it_resumed(harness: Harness) -> None:
    tenant = await harness.factory.tenant("24.00")
    server = await harness.active_server(tenant)
    harness.clock.advance(MONTH)
    await harness.sweep()
    assert await status_of(tenant, server["id"]) == "suspended"

    env = {
        "VPS_DATABASE_URL": harness.settings.database_url or "",
        "VPS_DATA_DIR": str(harness.settings.data_dir),
    }
    result = await asyncio.to_thread(
        CliRunner().invoke, cli_app, ["credits", "add", tenant.name, "30"], env=env
    )
    assert result.exit_code == 0, result.output
    assert f"added 30.00 credits to {tenant.name}; balance 6.00" in result.output
    assert f"renewed and resumed suspended servers: {server['id']}" in result.output
    assert await status_of(tenant, server["id"]) == "starting"
    await harness.settle()
    await tenant.wait_for_status(server["id"], "active")
    await harness.assert_invariants()


# Refunds on delete ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "backups", "refund"),
    [
        (timedelta(0), False, STANDARD),
        (timedelta(seconds=1), False, 2396),  # 719 of 720 hours of 24.00, rounded down
        (HOUR, False, 2396),
        (timedelta(hours=100, minutes=30), True, 2476),  # 619/720 of 28.80, exactly
        (MONTH - timedelta(minutes=30), False, 0),
    ],
    ids=["at-once", "one-second", "one-hour", "backups-100.5-hours", "last-half-hour"],
)
async def test_delete_refunds_the_unused_hours_of_the_period(
    harness: Harness, after: timedelta, backups: bool, refund: int
) -> None:
    tenant = await harness.factory.tenant("100.00")
    server = await harness.active_server(tenant, backups_enabled=backups)
    sid = server["id"]
    price = STANDARD + (STANDARD_BACKUPS if backups else 0)
    assert await harness.balance(tenant) == 10000 - price

    harness.clock.advance(after)
    assert (await tenant.delete(f"/api/v1/servers/{sid}/")).status_code == 204
    assert await harness.balance(tenant) == 10000 - price + refund
    entries = await harness.ledger(tenant)
    if refund:
        assert entries[-1].kind == "refund"
        assert entries[-1].amount_cents == refund
        assert entries[-1].reference == f"server:{sid}:delete-refund"
        assert entries[-1].server_id == sid
    else:
        assert [e.kind for e in entries] == ["topup", "charge"]

    # Gone for good: a second delete is a 404 and refunds nothing.
    assert (await tenant.delete(f"/api/v1/servers/{sid}/")).status_code == 404
    await harness.settle()
    assert sid not in harness.driver.machines
    assert await harness.balance(tenant) == 10000 - price + refund
    await harness.assert_invariants()


async def test_delete_refunds_the_current_period_not_the_first(harness: Harness) -> None:
    tenant = await harness.factory.tenant("100.00")
    server = await harness.active_server(tenant, plan_id=3)
    sid = server["id"]
    harness.clock.advance(MONTH)
    await harness.sweep()
    assert (await harness.row(sid)).billing_period == 2
    # Turning backups on changes the price of later periods, not of the one paid for.
    patched = await tenant.patch(f"/api/v1/servers/{sid}/", json={"backups_enabled": True})
    assert patched.status_code == 200

    harness.clock.advance(timedelta(days=15))
    assert (await tenant.delete(f"/api/v1/servers/{sid}/")).status_code == 204
    assert await harness.balance(tenant) == 10000 - 2 * STARTER + STARTER // 2
    await harness.assert_invariants()


async def test_a_failed_or_suspended_server_gets_no_delete_refund(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await harness.factory.tenant("30.00")
    suspended = await harness.active_server(tenant)
    harness.clock.advance(MONTH)
    await harness.sweep()
    assert await status_of(tenant, suspended["id"]) == "suspended"

    async def no_build(spec: MachineSpec) -> None:
        raise PermanentDriverError("no such image")

    monkeypatch.setattr(harness.driver, "create", no_build)
    failed = await tenant.create_server(name="failed", plan_id=3, location=LOCATION)
    await harness.settle()
    assert await status_of(tenant, failed["id"]) == "error"
    balance = await harness.balance(tenant)
    assert balance == 3000 - STANDARD  # the failed build was refunded in full, once

    for sid in (suspended["id"], failed["id"]):
        assert (await tenant.delete(f"/api/v1/servers/{sid}/")).status_code == 204
    await harness.settle()
    assert await harness.balance(tenant) == balance
    assert not [r for r in await harness.references(tenant) if r and "delete-refund" in r]
    await harness.assert_invariants()


async def test_a_delete_racing_a_renewal_refunds_the_period_that_was_current(
    harness: Harness,
) -> None:
    """Whichever commits first, the account ends up paying for the hours the server had."""
    tenant = await harness.factory.tenant("100.00")
    server = await harness.active_server(tenant)
    sid = server["id"]
    harness.clock.advance(MONTH)

    async def delete() -> int:
        return (await tenant.delete(f"/api/v1/servers/{sid}/")).status_code

    codes = await asyncio.gather(delete(), harness.worker.billing_step())
    assert codes[0] == 204
    entries = await harness.ledger(tenant)
    renewed = f"server:{sid}:period:2" in [e.reference for e in entries]
    # Renewed first: period 2 was charged and its whole 720 hours come back. Deleted first:
    # period 1 is over (nothing back) and period 2 is never charged.
    assert await harness.balance(tenant) == 10000 - STANDARD
    assert [e.kind for e in entries] == (
        ["topup", "charge", "charge", "refund"] if renewed else ["topup", "charge"]
    )
    await harness.assert_invariants()


# The worker's own loop, with a compressed period ----------------------------------------------


async def test_the_running_worker_renews_and_suspends_on_a_period_of_a_second(
    harness: Harness,
) -> None:
    """No injected clock here: real time, a one-second period, the worker's `run` loop."""
    terms = BillingTerms.from_seconds(1)
    config = WorkerConfig(
        concurrency=8,
        poll_seconds=0.05,
        lease_seconds=3.0,
        usage_sample_seconds=0.5,
        billing=terms,
        billing_sweep_seconds=0.1,
        retry=harness.worker.config.retry,
    )
    worker = Worker(harness.database, harness.driver, config)
    tenant = await harness.factory.tenant(f"{2 * STARTER / 100:.2f}")
    account_id = await harness.account_id(tenant)
    principal = Principal(account_id=account_id, token_id=0, read_only=False)
    draft = ServerDraft(name="fast", plan_id=3, os_id=5, location=LOCATION)
    async with harness.database.write() as session:
        created = await servers.create_server(session, principal, draft, utcnow(), terms)
    sid = created.server.id

    task = asyncio.create_task(worker.run())
    try:

        async def suspended_and_off() -> bool:
            machine = harness.driver.machines.get(sid)
            return (
                await status_of(tenant, sid) == "suspended"
                and machine is not None
                and not machine.running
            )

        await eventually(suspended_and_off, "the server is suspended and its machine off")
    finally:
        worker.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    row = await harness.row(sid)
    assert row.billing_period == 2
    assert await harness.balance(tenant) == 0
    assert await harness.references(tenant) == [
        None,
        f"server:{sid}:create",
        f"server:{sid}:period:2",
    ]
    await harness.assert_invariants()
