"""The audit log through HTTP: every mutation, who asked, the result; per account."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.routing import APIRoute

from tests.factories import CREATE_BODY, ED25519_KEY, Factory, Tenant
from vps.api.audit import AUDITED
from vps.api.routes import ROUTERS
from vps.db.engine import Database
from vps.drivers.simulator import SimulatorDriver
from vps.worker.engine import Worker, WorkerConfig

AUDIT = "/api/v1/account/audit-log/"


async def events(tenant: Tenant) -> list[dict[str, Any]]:
    response = await tenant.get(AUDIT, params={"page_size": 100})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def test_every_mutating_route_has_an_audit_meaning() -> None:
    mutating = {
        route.name
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and (route.methods or set()) - {"GET", "HEAD"}
    }
    assert mutating == set(AUDITED)


async def test_mutations_are_logged_with_token_target_and_result(factory: Factory) -> None:
    tenant = await factory.tenant()
    server = await tenant.active_server()
    sid = server["id"]
    request_id = uuid.uuid4().hex
    assert (
        await tenant.patch(
            f"/api/v1/servers/{sid}/", json={"name": "x"}, headers={"X-Request-ID": request_id}
        )
    ).status_code == 200
    assert (await tenant.post(f"/api/v1/servers/{sid}/start/")).status_code == 400
    key = await tenant.post("/api/v1/ssh-keys/", json={"name": "k", "public_key": ED25519_KEY})
    assert key.status_code == 201
    assert (await tenant.delete(f"/api/v1/ssh-keys/{key.json()['id']}/")).status_code == 204
    assert (await tenant.delete(f"/api/v1/servers/{sid}/")).status_code == 204

    logged = await events(tenant)

    assert [(e["action"], e["target"]["id"], e["status_code"], e["result"]) for e in logged] == [
        ("server.delete", sid, 204, "succeeded"),
        ("ssh_key.delete", key.json()["id"], 204, "succeeded"),
        ("ssh_key.create", key.json()["id"], 201, "succeeded"),
        ("server.start", sid, 400, "refused"),
        ("server.update", sid, 200, "succeeded"),
        ("server.create", sid, 201, "succeeded"),
    ]
    assert logged[3]["error_code"] == "invalid_state"
    assert logged[4]["request_id"] == request_id
    assert logged[4]["path"] == f"/api/v1/servers/{sid}/"
    assert len({e["token_id"] for e in logged}) == 1
    assert all(e["created_at"].endswith("Z") for e in logged)


async def test_refusals_are_logged_but_unauthenticated_and_invalid_requests_are_not(
    factory: Factory,
) -> None:
    tenant = await factory.tenant(credits="0.01")
    reader = await factory.token_for(tenant, read_only=True)

    assert (await tenant.post("/api/v1/servers/", json=CREATE_BODY)).status_code == 402
    assert (await reader.post("/api/v1/servers/", json=CREATE_BODY)).status_code == 403
    assert (await tenant.post("/api/v1/servers/", json={"name": 1})).status_code == 400
    assert (await tenant.delete("/api/v1/servers/2147483647/")).status_code == 404

    logged = await events(tenant)
    assert [(e["action"], e["status_code"], e["error_code"]) for e in logged] == [
        ("server.delete", 404, "not_found"),
        ("server.create", 403, "forbidden"),
        ("server.create", 402, "insufficient_credits"),
    ]
    assert logged[1]["token_id"] != logged[2]["token_id"]
    # Read-only tokens may read the log.
    assert (await reader.get(AUDIT)).status_code == 200


async def test_the_log_is_per_account(factory: Factory) -> None:
    alice, bob = await factory.tenant(), await factory.tenant()
    await alice.create_server()
    assert await events(bob) == []
    assert len(await events(alice)) == 1


async def test_the_worker_deletes_audit_events_past_their_retention(
    factory: Factory, database: Database
) -> None:
    tenant = await factory.tenant()
    key = await tenant.post("/api/v1/ssh-keys/", json={"name": "kept", "public_key": ED25519_KEY})
    assert key.status_code == 201, key.text
    assert len(await events(tenant)) == 1

    keeping = Worker(database, SimulatorDriver(), WorkerConfig(audit_retention_seconds=3600))
    assert await keeping.prune_audit_log() == 0
    assert len(await events(tenant)) == 1
    forgetting = Worker(database, SimulatorDriver(), WorkerConfig(audit_retention_seconds=0))
    assert await forgetting.prune_audit_log() >= 1
    assert await events(tenant) == []
