"""Actions (`/servers/{id}/actions/`, `/actions/{id}/`) and the credits ledger
(`/account/transactions/`) through HTTP: what a server's life records, following an action to
its end, paging, tenant isolation, read-only tokens and refunds."""

from __future__ import annotations

import random
import re
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.factories import Factory, Tenant, eventually, unique_name
from vps.db.models import Action
from vps.drivers.base import MachineSpec, PermanentDriverError
from vps.drivers.simulator import SimulatorDriver

SERVERS = "/api/v1/servers/"
ACTIONS = "/api/v1/actions/"
TRANSACTIONS = "/api/v1/account/transactions/"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
MONEY = re.compile(r"-?\d+\.\d\d")
ACTION_FIELDS = {
    "id",
    "kind",
    "status",
    "server_id",
    "started_at",
    "finished_at",
    "error",
    "progress",
}
LEDGER_FIELDS = {
    "id",
    "kind",
    "amount",
    "balance_after",
    "server_id",
    "description",
    "created_at",
}


def actions_url(server_id: int) -> str:
    return f"{SERVERS}{server_id}/actions/"


async def json_of(tenant: Tenant, url: str, **params: Any) -> dict[str, Any]:
    response = await tenant.get(url, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def power(tenant: Tenant, server_id: int, operation: str, settles: str) -> dict[str, Any]:
    """Run a power action to its end; returns the action the POST answered with."""
    response = await tenant.post(f"{SERVERS}{server_id}/{operation}/")
    assert response.status_code == 200, response.text
    await tenant.wait_for_status(server_id, settles)
    action: dict[str, Any] = response.json()["action"]
    return action


async def wait_for_action(tenant: Tenant, action_id: int, status: str) -> dict[str, Any]:
    last: dict[str, Any] = {}

    async def reached() -> bool:
        nonlocal last
        response = await tenant.get(f"{ACTIONS}{action_id}/")
        assert response.status_code == 200, response.text
        last = response.json()
        return bool(last["status"] == status)

    await eventually(reached, f"action {action_id} is {status}")
    return last


async def all_pages(tenant: Tenant, url: str, page_size: int) -> list[dict[str, Any]]:
    """Follow `next` from the first page; checks `count` and `previous` on every page."""
    first = await json_of(tenant, url, page_size=page_size)
    assert first["previous"] is None
    count, seen = first["count"], list(first["results"])
    following = first["next"]
    while following:
        page = (await tenant.get(following)).json()
        assert page["count"] == count
        assert page["previous"] is not None
        assert 1 <= len(page["results"]) <= page_size
        seen += page["results"]
        following = page["next"]
    assert len(seen) == count
    return seen


def assert_finished(action: dict[str, Any], status: str) -> None:
    assert action["status"] == status
    assert TIMESTAMP.fullmatch(action["finished_at"])
    assert action["finished_at"] >= action["started_at"]
    assert action["progress"] == 100


def comparable(response: httpx.Response, resource_id: int) -> dict[str, Any]:
    """A 404's status and body, with the id and the request id blanked out."""
    body = response.json()
    error = dict(body["error"])
    error["request_id"] = "-"
    error["message"] = error["message"].replace(str(resource_id), "N")
    return {"status": response.status_code, "body": {**body, "error": error}}


def fail_creates_named(
    monkeypatch: pytest.MonkeyPatch, driver: SimulatorDriver, name: str, error: Exception
) -> None:
    """The session driver's create fails with `error` for servers named `name` only, so other
    tests' servers keep building."""
    original = driver.create

    async def create(spec: MachineSpec) -> None:
        if spec.name == name:
            raise error
        await original(spec)

    monkeypatch.setattr(driver, "create", create)


async def plan_price(tenant: Tenant, plan_id: int, *, backups: bool = False) -> Decimal:
    plans = (await tenant.get("/api/v1/plans/")).json()
    (plan,) = [p for p in plans if p["id"] == plan_id]
    extra = Decimal(plan["backups_monthly_price"]) if backups else Decimal(0)
    return Decimal(plan["monthly_price"]) + extra


async def delete_action_id(factory: Factory, server_id: int) -> int:
    """The id of a server's delete action, read from the database: DELETE answers 204 without
    a body, and the server's action list is gone (404) once it is deleted."""
    async with factory.database.read() as session:
        action_id = await session.scalar(
            select(Action.id).where(Action.server_id == server_id, Action.kind == "delete")
        )
    assert action_id is not None
    return action_id


# A server's life as its actions -------------------------------------------------------------


async def test_a_servers_life_is_recorded_as_its_actions(factory: Factory) -> None:
    tenant = await factory.tenant()
    created = await tenant.create_server(name="lived")
    sid = created["id"]
    await tenant.wait_for_status(sid, "active")
    answered = [created["action"]]
    for operation, settles in (("stop", "stopped"), ("start", "active"), ("reboot", "active")):
        answered.append(await power(tenant, sid, operation, settles))

    listing = await json_of(tenant, actions_url(sid))
    assert listing["count"] == 4
    assert listing["next"] is None and listing["previous"] is None
    results = listing["results"]
    assert [a["kind"] for a in results] == ["create", "stop", "start", "reboot"]
    assert [a["id"] for a in results] == [a["id"] for a in answered]
    assert [a["id"] for a in results] == sorted(a["id"] for a in results)
    for action in results:
        assert set(action) == ACTION_FIELDS
        assert action["server_id"] == sid
        assert action["error"] is None
        assert TIMESTAMP.fullmatch(action["started_at"])
        assert_finished(action, "succeeded")

    # Deleting: the server and its list are gone at once; the delete itself can be followed.
    response = await tenant.delete(f"{SERVERS}{sid}/")
    assert response.status_code == 204
    assert (await tenant.get(actions_url(sid))).status_code == 404
    # Deleting refunds the unused hours of the period, newest first.
    ledger = await json_of(tenant, TRANSACTIONS)
    assert ledger["count"] == 3
    assert ledger["results"][0]["kind"] == "refund"
    assert ledger["results"][0]["server_id"] == sid
    delete_id = await delete_action_id(factory, sid)
    assert delete_id > results[-1]["id"]
    deleted = await wait_for_action(tenant, delete_id, "succeeded")
    assert deleted["kind"] == "delete" and deleted["server_id"] == sid
    assert_finished(deleted, "succeeded")
    # What happened before stays readable by its owner.
    for action in results:
        assert await json_of(tenant, f"{ACTIONS}{action['id']}/") == action


async def test_an_actions_detail_matches_its_list_entry(factory: Factory) -> None:
    tenant = await factory.tenant()
    server = await tenant.active_server()
    await power(tenant, server["id"], "stop", "stopped")
    listing = await json_of(tenant, actions_url(server["id"]))
    assert listing["count"] == 2
    for entry in listing["results"]:
        assert await json_of(tenant, f"{ACTIONS}{entry['id']}/") == entry
        # Without the trailing slash too, as everywhere in the API.
        assert await json_of(tenant, f"{ACTIONS}{entry['id']}") == entry


async def test_the_action_of_a_create_can_be_followed_to_its_end(factory: Factory) -> None:
    tenant = await factory.tenant()
    created = await tenant.create_server()
    action = created["action"]
    assert set(action) == ACTION_FIELDS
    assert action["status"] == "running"
    assert action["progress"] == 0 and action["finished_at"] is None
    assert action["server_id"] == created["id"] and action["kind"] == "create"

    done = await wait_for_action(tenant, action["id"], "succeeded")
    assert_finished(done, "succeeded")
    assert done["started_at"] == action["started_at"]
    assert done["error"] is None
    # The action finishes in the same transaction as the server becomes active.
    assert (await json_of(tenant, f"{SERVERS}{created['id']}/"))["status"] == "active"


async def test_a_power_action_reads_running_until_the_worker_finishes_it(
    factory: Factory,
) -> None:
    tenant = await factory.tenant()
    server = await tenant.active_server()
    sid = server["id"]
    # Held: no worker takes the server until released, so "running" is observable.
    await factory.force_status(sid, "active")
    response = await tenant.post(f"{SERVERS}{sid}/stop/")
    assert response.status_code == 200, response.text
    answered = response.json()["action"]
    assert answered["kind"] == "stop" and answered["progress"] == 0

    running = await json_of(tenant, f"{ACTIONS}{answered['id']}/")
    assert running == answered
    assert running["status"] == "running" and running["finished_at"] is None
    listing = await json_of(tenant, actions_url(sid))
    assert listing["results"][-1] == running

    await factory.release_hold(sid)
    await tenant.wait_for_status(sid, "stopped")
    finished = await json_of(tenant, f"{ACTIONS}{answered['id']}/")
    assert_finished(finished, "succeeded")
    assert finished["error"] is None


async def test_a_failed_build_is_a_failed_create_action_and_a_refund(
    factory: Factory, driver: SimulatorDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique_name("doomed")
    fail_creates_named(monkeypatch, driver, name, PermanentDriverError("no such image"))
    tenant = await factory.tenant("100.00")
    price = await plan_price(tenant, 1)
    created = await tenant.create_server(name=name)
    sid = created["id"]
    await tenant.wait_for_status(sid, "error")

    failed = await json_of(tenant, f"{ACTIONS}{created['action']['id']}/")
    assert_finished(failed, "failed")
    assert failed["error"] == {"code": "driver_permanent", "message": "no such image"}
    assert (await json_of(tenant, actions_url(sid)))["results"] == [failed]

    ledger = await json_of(tenant, TRANSACTIONS)
    assert ledger["count"] == 3
    refund, charge, topup = ledger["results"]
    assert [refund["kind"], charge["kind"], topup["kind"]] == ["refund", "charge", "topup"]
    assert refund["amount"] == f"{price:.2f}" and charge["amount"] == f"-{price:.2f}"
    assert refund["server_id"] == charge["server_id"] == sid
    assert refund["balance_after"] == topup["balance_after"] == "100.00"
    assert charge["balance_after"] == f"{Decimal('100.00') - price:.2f}"
    assert refund["id"] > charge["id"] > topup["id"]


# Paging ---------------------------------------------------------------------------------------


async def test_actions_are_paged_with_count_and_links(factory: Factory) -> None:
    tenant = await factory.tenant()
    server = await tenant.active_server()
    sid = server["id"]
    for operation, settles in (
        ("stop", "stopped"),
        ("start", "active"),
        ("reboot", "active"),
        ("stop", "stopped"),
    ):
        await power(tenant, sid, operation, settles)
    everything = (await json_of(tenant, actions_url(sid)))["results"]
    assert [a["kind"] for a in everything] == ["create", "stop", "start", "reboot", "stop"]

    assert await all_pages(tenant, actions_url(sid), page_size=2) == everything
    first = await json_of(tenant, actions_url(sid), page_size=2)
    assert first["next"].startswith("http://testserver/api/v1/servers/")
    assert "page=2" in first["next"] and "page_size=2" in first["next"]
    last = await json_of(tenant, actions_url(sid), page=3, page_size=2)
    assert last["next"] is None and "page=2" in last["previous"]
    assert last["results"] == everything[4:]
    beyond = await json_of(tenant, actions_url(sid), page=9, page_size=2)
    assert beyond["count"] == 5 and beyond["results"] == []


async def test_transactions_are_paged_newest_first(factory: Factory) -> None:
    tenant = await factory.tenant()
    ids = [(await tenant.create_server(name=f"s-{i}"))["id"] for i in range(4)]
    everything = (await json_of(tenant, TRANSACTIONS))["results"]
    assert [e["kind"] for e in everything] == ["charge"] * 4 + ["topup"]
    assert [e["server_id"] for e in everything] == [*reversed(ids), None]
    assert await all_pages(tenant, TRANSACTIONS, page_size=2) == everything
    second = await json_of(tenant, TRANSACTIONS, page=2, page_size=2)
    assert second["results"] == everything[2:4]
    assert "page=3" in second["next"] and "page=1" in second["previous"]


async def test_bad_paging_is_a_400(factory: Factory) -> None:
    tenant = await factory.tenant()
    server = await tenant.create_server()
    for params in ({"page": 0}, {"page_size": 0}, {"page_size": 101}, {"page": "x"}):
        for url in (actions_url(server["id"]), TRANSACTIONS):
            response = await tenant.get(url, params=params)
            assert response.status_code == 400, (url, params, response.text)
            error = response.json()["error"]
            assert error["code"] == "invalid_parameters"
            assert {f["field"] for f in error["fields"]} == set(params)


# The ledger -----------------------------------------------------------------------------------


async def test_the_ledger_holds_the_top_up_and_each_charge(factory: Factory) -> None:
    tenant = await factory.tenant("500.00")
    bought = [(1, False), (2, True), (3, False)]
    servers = []
    for plan_id, backups in bought:
        created = await tenant.create_server(plan_id=plan_id, backups_enabled=backups)
        servers.append((created["id"], await plan_price(tenant, plan_id, backups=backups)))

    ledger = await json_of(tenant, TRANSACTIONS)
    results = ledger["results"]
    assert ledger["count"] == len(results) == 4
    assert ledger["next"] is None and ledger["previous"] is None
    assert [e["id"] for e in results] == sorted((e["id"] for e in results), reverse=True)
    for entry in results:
        assert set(entry) == LEDGER_FIELDS
        assert isinstance(entry["amount"], str) and MONEY.fullmatch(entry["amount"])
        assert isinstance(entry["balance_after"], str) and MONEY.fullmatch(entry["balance_after"])
        assert TIMESTAMP.fullmatch(entry["created_at"])
        assert entry["description"]

    *charges, topup = results
    assert topup["kind"] == "topup" and topup["amount"] == "500.00"
    assert topup["server_id"] is None and topup["balance_after"] == "500.00"
    balance = Decimal("500.00")
    for entry, (server_id, price) in zip(reversed(charges), servers, strict=True):
        balance -= price
        assert entry["kind"] == "charge"
        assert entry["server_id"] == server_id
        assert entry["amount"] == f"-{price:.2f}"
        assert entry["balance_after"] == f"{balance:.2f}"

    account = await json_of(tenant, "/api/v1/account/")
    assert account["balance"] == results[0]["balance_after"]
    assert account["recent_transactions"] == results


# Who may read what ----------------------------------------------------------------------------


async def test_another_accounts_server_and_actions_look_unknown(factory: Factory) -> None:
    owner = await factory.tenant()
    server = await owner.active_server(name="mine")
    sid = server["id"]
    action_id = (await json_of(owner, actions_url(sid)))["results"][0]["id"]
    intruder = await factory.tenant()
    await intruder.create_server(name="intruder")
    unknown = random.randint(1_000_000_000, 2_000_000_000)

    for url, resource_id, unknown_url in (
        (actions_url(sid), sid, actions_url(unknown)),
        (f"{ACTIONS}{action_id}/", action_id, f"{ACTIONS}{unknown}/"),
    ):
        theirs = await intruder.get(url)
        assert theirs.status_code == 404, theirs.text
        assert theirs.json()["error"]["code"] == "not_found"
        assert "mine" not in theirs.text
        assert comparable(theirs, resource_id) == comparable(
            await intruder.get(unknown_url), unknown
        )
        assert (await owner.get(url)).status_code == 200

    # Each ledger holds its own account's entries only.
    mine = await json_of(owner, TRANSACTIONS)
    their_ledger = await json_of(intruder, TRANSACTIONS)
    assert {e["server_id"] for e in mine["results"]} == {None, sid}
    assert sid not in {e["server_id"] for e in their_ledger["results"]}
    assert not {e["id"] for e in mine["results"]} & {e["id"] for e in their_ledger["results"]}

    # Once deleted, the list is gone for the owner too (as the server is), but the actions
    # stay the owner's only.
    assert (await owner.delete(f"{SERVERS}{sid}/")).status_code == 204
    gone = await owner.get(actions_url(sid))
    assert comparable(gone, sid) == comparable(await owner.get(actions_url(unknown)), unknown)
    assert (await owner.get(f"{ACTIONS}{action_id}/")).status_code == 200
    assert (await intruder.get(f"{ACTIONS}{action_id}/")).status_code == 404


async def test_ids_out_of_range_are_404_like_unknown_ones(factory: Factory) -> None:
    tenant = await factory.tenant()
    for bad in (0, -1, 2**63, 10**30):
        for url in (actions_url(bad), f"{ACTIONS}{bad}/"):
            response = await tenant.get(url)
            assert response.status_code == 404, (url, response.text)
            assert response.json()["error"]["code"] == "not_found"


async def test_a_read_only_token_reads_actions_and_transactions(factory: Factory) -> None:
    owner = await factory.tenant()
    server = await owner.active_server()
    reader = await factory.token_for(owner, read_only=True)
    listing = await json_of(owner, actions_url(server["id"]))
    assert await json_of(reader, actions_url(server["id"])) == listing
    action_url = f"{ACTIONS}{listing['results'][0]['id']}/"
    assert await json_of(reader, action_url) == await json_of(owner, action_url)
    assert await json_of(reader, TRANSACTIONS) == await json_of(owner, TRANSACTIONS)


async def test_no_token_is_a_401_on_every_new_endpoint(factory: Factory) -> None:
    owner = await factory.tenant()
    server = await owner.create_server()
    for url in (actions_url(server["id"]), f"{ACTIONS}{server['action']['id']}/", TRANSACTIONS):
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            response = await factory.http.get(url, headers=headers)
            assert response.status_code == 401, (url, response.text)
            assert response.json()["error"]["code"] == "unauthenticated"
            assert response.headers["www-authenticate"] == 'Bearer realm="vps"'


@pytest.mark.parametrize(
    "path",
    [f"{ACTIONS}1/", f"{SERVERS}1/actions/", TRANSACTIONS],
)
async def test_the_new_endpoints_are_read_only(factory: Factory, path: str) -> None:
    tenant = await factory.tenant()
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = await tenant.request(method, path)
        assert response.status_code == 405, (method, response.text)
        assert response.json()["error"]["code"] == "method_not_allowed"
        assert response.headers["allow"] == "GET"


async def test_delete_points_at_its_action(factory: Factory) -> None:
    tenant = await factory.tenant()
    server = await tenant.active_server()
    response = await tenant.delete(f"/api/v1/servers/{server['id']}/")
    assert response.status_code == 204
    location = response.headers["location"]
    assert location == f"/api/v1/actions/{response.headers['x-action-id']}/"
    action = (await tenant.get(location)).json()
    assert action["kind"] == "delete" and action["server_id"] == server["id"]

    async def finished() -> bool:
        body: dict[str, Any] = (await tenant.get(location)).json()
        return bool(body["status"] == "succeeded")

    await eventually(finished, "the delete to finish")
