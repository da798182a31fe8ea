"""Idempotency keys through HTTP: one server and one charge whatever the retries, replays byte
for byte, another request under the same key refused, per-account scope, expiry and reaping."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.factories import CREATE_BODY, ED25519_KEY, Factory, Tenant, unique_name
from vps.db.engine import Database
from vps.db.models import Account, CreditTransaction, IdempotencyKey, Server
from vps.db.types import utcnow
from vps.worker.engine import Worker

SERVERS = "/api/v1/servers/"


def key_header(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def servers_of(database: Database, tenant: Tenant) -> list[int]:
    async with database.read() as session:
        rows = await session.execute(
            select(Server.id)
            .join(Account, Account.id == Server.account_id)
            .where(Account.name == tenant.name)
        )
        return [row[0] for row in rows]


async def charges_of(database: Database, tenant: Tenant) -> int:
    async with database.read() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(CreditTransaction)
            .join(Account, Account.id == CreditTransaction.account_id)
            .where(Account.name == tenant.name, CreditTransaction.kind == "charge")
        )
        return int(count or 0)


async def test_fifty_concurrent_creates_with_one_key_make_one_server_and_one_charge(
    factory: Factory, database: Database
) -> None:
    tenant = await factory.tenant()
    key = str(uuid.uuid4())
    body = {**CREATE_BODY, "name": unique_name("idem")}

    responses = await asyncio.gather(
        *(tenant.post(SERVERS, json=body, headers=key_header(key)) for _ in range(50))
    )

    statuses = sorted({r.status_code for r in responses})
    assert set(statuses) <= {201, 409}, [r.text for r in responses if r.status_code >= 400]
    firsts = [
        r for r in responses if r.status_code == 201 and "idempotency-replay" not in r.headers
    ]
    assert len(firsts) == 1
    first = firsts[0]
    for response in responses:
        if response.status_code == 201:
            # Every 201 is the same answer, byte for byte; only the first did the work.
            assert response.content == first.content
        else:
            assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert await servers_of(database, tenant) == [first.json()["id"]]
    assert await charges_of(database, tenant) == 1


async def test_a_replay_after_completion_is_identical_and_marked(
    factory: Factory, database: Database
) -> None:
    tenant = await factory.tenant()
    key = str(uuid.uuid4())
    body = {**CREATE_BODY, "name": unique_name("idem")}
    first = await tenant.post(SERVERS, json=body, headers=key_header(key))
    assert first.status_code == 201
    assert "idempotency-replay" not in first.headers
    server_id = first.json()["id"]
    await tenant.wait_for_status(server_id, "active")

    # The same request, with another key order and spacing: the same request.
    reordered = (
        f'{{"location": "{body["location"]}", "os_id": {body["os_id"]},\n'
        f' "plan_id": {body["plan_id"]}, "name": "{body["name"]}"}}'
    )
    again = await tenant.post(
        SERVERS,
        content=reordered,
        headers={**key_header(key), "Content-Type": "application/json"},
    )

    assert again.status_code == 201
    assert again.headers["idempotency-replay"] == "true"
    assert again.content == first.content  # the first answer, not the server as it is now
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["etag"] == first.headers["etag"]
    assert await servers_of(database, tenant) == [server_id]
    assert await charges_of(database, tenant) == 1


async def test_the_same_key_with_another_request_is_refused_and_changes_nothing(
    factory: Factory, database: Database
) -> None:
    tenant = await factory.tenant()
    key = str(uuid.uuid4())
    first = await tenant.post(SERVERS, json={**CREATE_BODY, "name": "one"}, headers=key_header(key))
    assert first.status_code == 201
    balance = (await tenant.get("/api/v1/account/")).json()["balance"]

    other = await tenant.post(SERVERS, json={**CREATE_BODY, "name": "two"}, headers=key_header(key))
    elsewhere = await tenant.post(f"{SERVERS}{first.json()['id']}/reboot/", headers=key_header(key))

    for response in (other, elsewhere):
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "idempotency_key_reused"
        assert key in error["message"]
    assert await servers_of(database, tenant) == [first.json()["id"]]
    assert (await tenant.get("/api/v1/account/")).json()["balance"] == balance


async def test_keys_are_scoped_per_account(factory: Factory, database: Database) -> None:
    alice, bob = await factory.tenant(), await factory.tenant()
    key = str(uuid.uuid4())
    body = {**CREATE_BODY, "name": "same"}

    first = await alice.post(SERVERS, json=body, headers=key_header(key))
    second = await bob.post(SERVERS, json=body, headers=key_header(key))

    assert first.status_code == second.status_code == 201
    assert "idempotency-replay" not in second.headers
    assert first.json()["id"] != second.json()["id"]
    assert await servers_of(database, alice) == [first.json()["id"]]
    assert await servers_of(database, bob) == [second.json()["id"]]


async def test_refusals_are_not_remembered(factory: Factory, database: Database) -> None:
    """A 402 changed nothing: once topped up, the same key does the work."""
    tenant = await factory.tenant(credits="0.01")
    key = str(uuid.uuid4())
    body = {**CREATE_BODY, "name": unique_name("poor")}

    refused = await tenant.post(SERVERS, json=body, headers=key_header(key))
    assert refused.status_code == 402
    invalid = await tenant.post(SERVERS, json={**body, "plan_id": "one"}, headers=key_header(key))
    assert invalid.status_code == 400
    async with database.write() as session:
        await session.execute(
            update(Account).where(Account.name == tenant.name).values(balance_cents=100_000)
        )

    accepted = await tenant.post(SERVERS, json=body, headers=key_header(key))

    assert accepted.status_code == 201
    assert "idempotency-replay" not in accepted.headers
    assert len(await servers_of(database, tenant)) == 1


async def test_power_actions_replay_and_do_the_work_once(factory: Factory) -> None:
    tenant = await factory.tenant()
    server = await tenant.active_server()
    key = str(uuid.uuid4())
    path = f"{SERVERS}{server['id']}/reboot/"

    first = await tenant.post(path, headers=key_header(key))
    again = await tenant.post(path, headers=key_header(key))

    assert first.status_code == 200
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["idempotency-replay"] == "true"
    actions = (await tenant.get(f"{SERVERS}{server['id']}/actions/")).json()["results"]
    assert [a["kind"] for a in actions].count("reboot") == 1


async def test_ssh_key_creation_accepts_a_key(factory: Factory) -> None:
    tenant = await factory.tenant()
    key = str(uuid.uuid4())
    body = {"name": "laptop", "public_key": ED25519_KEY}

    first = await tenant.post("/api/v1/ssh-keys/", json=body, headers=key_header(key))
    again = await tenant.post("/api/v1/ssh-keys/", json=body, headers=key_header(key))

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert (await tenant.get("/api/v1/ssh-keys/")).json()["count"] == 1


@pytest.mark.parametrize("bad", ["", "has space", "a" * 256, "tab\there", "é"])
async def test_a_malformed_key_is_a_400_naming_the_header(
    factory: Factory, database: Database, bad: str
) -> None:
    tenant = await factory.tenant()
    response = await tenant.post(
        SERVERS,
        json={**CREATE_BODY, "name": "x"},
        headers={"Idempotency-Key": bad.encode("utf-8")},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["fields"][0]["field"] == "Idempotency-Key"
    assert await servers_of(database, tenant) == []


async def test_expired_keys_do_the_work_again_and_are_reaped(
    factory: Factory, database: Database, worker: Worker
) -> None:
    tenant = await factory.tenant()
    key = str(uuid.uuid4())
    body = {**CREATE_BODY, "name": unique_name("old")}
    first = await tenant.post(SERVERS, json=body, headers=key_header(key))
    assert first.status_code == 201
    async with database.write() as session:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == key)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )

    second = await tenant.post(SERVERS, json=body, headers=key_header(key))

    assert second.status_code == 201
    assert "idempotency-replay" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    # The new outcome replaced the expired one; expire it too and let the worker reap it.
    async with database.write() as session:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == key)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert await worker.reap_idempotency_keys() >= 1
    async with database.read() as session:
        left = await session.scalar(
            select(func.count()).select_from(IdempotencyKey).where(IdempotencyKey.key == key)
        )
    assert left == 0
