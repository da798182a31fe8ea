"""Who may call what: 401 on every endpoint for every kind of bad token, read-only tokens that
can read but not write, and accounts that cannot see or touch each other's resources."""

from __future__ import annotations

import base64
import os
import random
import struct
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.factories import CREATE_BODY, Factory, Tenant
from vps.db.engine import Database
from vps.db.repositories.accounts import TokenRepository
from vps.db.types import utcnow
from vps.domain import tokens
from vps.services.auth import revoke_token

SERVERS = "/api/v1/servers/"
CHALLENGE = 'Bearer realm="vps"'
VALID_CREATE = CREATE_BODY
VALID_PUT: dict[str, Any] = {
    "name": "renamed",
    "hostname": "renamed.example.com",
    "backups_enabled": True,
}
# Stable fields of a server (the worker does not touch them once it is active).
SNAPSHOT = (
    "id",
    "name",
    "hostname",
    "status",
    "ip_address",
    "ipv6_address",
    "location",
    "plan",
    "os",
    "backups_enabled",
    "created_at",
    "updated_at",
)


def make_ed25519_key(comment: str = "test@example") -> str:
    kind = b"ssh-ed25519"
    blob = struct.pack(">I", len(kind)) + kind + struct.pack(">I", 32) + os.urandom(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode('ascii')} {comment}"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # with {server} and {key} placeholders
    body: dict[str, Any] | None = None

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    def url(self, server_id: int, key_id: int) -> str:
        return self.path.format(server=server_id, key=key_id)

    def json(self) -> dict[str, Any] | None:
        if self.path == "/api/v1/ssh-keys/" and self.method == "POST":
            return {"name": "laptop", "public_key": make_ed25519_key()}
        return self.body

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


SERVER_ENDPOINTS = [
    Endpoint("GET", SERVERS),
    Endpoint("POST", SERVERS, VALID_CREATE),
    Endpoint("GET", SERVERS + "{server}/"),
    Endpoint("PUT", SERVERS + "{server}/", VALID_PUT),
    Endpoint("PATCH", SERVERS + "{server}/", {"name": "patched"}),
    Endpoint("DELETE", SERVERS + "{server}/"),
    Endpoint("POST", SERVERS + "{server}/start/"),
    Endpoint("POST", SERVERS + "{server}/stop/"),
    Endpoint("POST", SERVERS + "{server}/reboot/"),
]
OTHER_ENDPOINTS = [
    Endpoint("GET", "/api/v1/plans/"),
    Endpoint("GET", "/api/v1/operating-systems/"),
    Endpoint("GET", "/api/v1/locations/"),
    Endpoint("GET", "/api/v1/ssh-keys/"),
    Endpoint("POST", "/api/v1/ssh-keys/"),
    Endpoint("GET", "/api/v1/ssh-keys/{key}/"),
    Endpoint("DELETE", "/api/v1/ssh-keys/{key}/"),
    Endpoint("GET", "/api/v1/account/"),
]
ALL_ENDPOINTS = SERVER_ENDPOINTS + OTHER_ENDPOINTS
READS = [e for e in ALL_ENDPOINTS if not e.writes]
WRITES = [e for e in ALL_ENDPOINTS if e.writes]
# Endpoints that take the id of a server or an SSH key.
OWNED = [e for e in ALL_ENDPOINTS if "{server}" in e.path or "{key}" in e.path]


async def snapshot(tenant: Tenant, server_id: int) -> dict[str, Any]:
    response = await tenant.get(f"{SERVERS}{server_id}/")
    assert response.status_code == 200, response.text
    body = response.json()
    return {key: body[key] for key in SNAPSHOT}


@dataclass
class World:
    """One account with an active server and an SSH key, and everything it owns."""

    owner: Tenant
    server_id: int
    key_id: int

    async def state(self) -> dict[str, Any]:
        servers = (await self.owner.get(SERVERS)).json()
        keys = (await self.owner.get("/api/v1/ssh-keys/")).json()
        account = (await self.owner.get("/api/v1/account/")).json()
        return {
            "servers": [s["id"] for s in servers["results"]],
            "server": await snapshot(self.owner, self.server_id),
            "keys": [k["id"] for k in keys["results"]],
            "balance": account["balance"],
            "ledger": [entry["id"] for entry in account["recent_transactions"]],
        }


async def make_world(factory: Factory) -> World:
    owner = await factory.tenant()
    server = await owner.active_server(name="mine", hostname="mine.example.com")
    key = await owner.post(
        "/api/v1/ssh-keys/", json={"name": "mine", "public_key": make_ed25519_key()}
    )
    assert key.status_code == 201, key.text
    return World(owner, server["id"], key.json()["id"])


# 401 --------------------------------------------------------------------------------------

AUTH_FAILURES = [
    "missing",
    "basic-scheme",
    "token-scheme",
    "no-scheme",
    "empty-bearer",
    "malformed",
    "bad-checksum",
    "unknown",
    "revoked",
    "expired",
]


@pytest.fixture(scope="module")
async def world_401(client: httpx.AsyncClient, database: Database) -> World:
    return await make_world(Factory(client, database))


@pytest.fixture(scope="module")
async def bad_credentials(
    client: httpx.AsyncClient, database: Database, world_401: World
) -> dict[str, dict[str, str]]:
    """Authorization headers that must all be refused (keyed by AUTH_FAILURES)."""
    factory = Factory(client, database)
    valid = world_401.owner.token
    revoked = await factory.token_for(world_401.owner)
    async with factory.database.write() as session:
        record = await TokenRepository(session).by_hash(tokens.hash_token(revoked.token))
        assert record is not None
        await revoke_token(session, record.id, utcnow())
    expired = await factory.token_for(world_401.owner, expires_in=timedelta(seconds=-1))
    last = valid[-1]
    tampered = valid[:-1] + ("A" if last != "A" else "B")
    headers = {
        "missing": {},
        "basic-scheme": {"Authorization": "Basic dXNlcjpwYXNzd29yZA=="},
        "token-scheme": {"Authorization": f"Token {valid}"},
        "no-scheme": {"Authorization": valid},
        "empty-bearer": {"Authorization": "Bearer "},
        "malformed": {"Authorization": "Bearer not-a-token"},
        "bad-checksum": {"Authorization": f"Bearer {tampered}"},
        "unknown": {"Authorization": f"Bearer {tokens.generate_token()}"},
        "revoked": {"Authorization": f"Bearer {revoked.token}"},
        "expired": {"Authorization": f"Bearer {expired.token}"},
    }
    assert set(headers) == set(AUTH_FAILURES)
    return headers


async def test_the_bad_tokens_are_bad_only_for_the_reason_named(
    world_401: World, bad_credentials: dict[str, dict[str, str]]
) -> None:
    """The unknown token is well formed; the tampered one differs only in its checksum."""
    unknown = bad_credentials["unknown"]["Authorization"].removeprefix("Bearer ")
    assert tokens.is_well_formed(unknown)
    tampered = bad_credentials["bad-checksum"]["Authorization"].removeprefix("Bearer ")
    assert not tokens.is_well_formed(tampered)
    assert tampered[:-1] == world_401.owner.token[:-1]
    # The owner's own token works on the very endpoints the bad ones are refused on.
    assert (await world_401.owner.get(f"{SERVERS}{world_401.server_id}/")).status_code == 200


@pytest.mark.parametrize("failure", AUTH_FAILURES)
@pytest.mark.parametrize("endpoint", ALL_ENDPOINTS, ids=str)
async def test_bad_credentials_are_refused_with_401_everywhere(
    client: httpx.AsyncClient,
    world_401: World,
    bad_credentials: dict[str, dict[str, str]],
    endpoint: Endpoint,
    failure: str,
) -> None:
    before = await world_401.state() if endpoint.writes else None
    response = await client.request(
        endpoint.method,
        endpoint.url(world_401.server_id, world_401.key_id),
        json=endpoint.json(),
        headers=bad_credentials[failure],
    )
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == CHALLENGE
    error = response.json()["error"]
    assert error["code"] == "unauthenticated"
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    if before is not None:
        assert await world_401.state() == before


async def test_the_bearer_scheme_is_case_insensitive(factory: Factory) -> None:
    tenant = await factory.tenant()
    response = await factory.http.get(
        "/api/v1/account/", headers={"Authorization": f"bearer {tenant.token}"}
    )
    assert response.status_code == 200
    assert response.json()["name"] == tenant.name


async def test_a_token_that_expires_later_still_works(factory: Factory) -> None:
    tenant = await factory.tenant()
    later = await factory.token_for(tenant, expires_in=timedelta(hours=1))
    assert (await later.get("/api/v1/account/")).status_code == 200


async def test_revoking_one_token_leaves_the_others_working(factory: Factory) -> None:
    tenant = await factory.tenant()
    other = await factory.token_for(tenant)
    assert (await other.get(SERVERS)).status_code == 200
    async with factory.database.write() as session:
        record = await TokenRepository(session).by_hash(tokens.hash_token(other.token))
        assert record is not None
        await revoke_token(session, record.id, utcnow())
    refused = await other.get(SERVERS)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == CHALLENGE
    assert (await tenant.get(SERVERS)).status_code == 200


# Read-only tokens -------------------------------------------------------------------------


@dataclass
class ReadOnlyWorld:
    world: World
    reader: Tenant
    stopped_id: int


@pytest.fixture(scope="module")
async def read_only_world(client: httpx.AsyncClient, database: Database) -> ReadOnlyWorld:
    factory = Factory(client, database)
    world = await make_world(factory)
    stopped = await world.owner.active_server(name="stopped")
    await factory.force_status(stopped["id"], "stopped")
    reader = await factory.token_for(world.owner, read_only=True)
    return ReadOnlyWorld(world, reader, stopped["id"])


@pytest.mark.parametrize("endpoint", READS, ids=str)
async def test_a_read_only_token_can_read_everything(
    read_only_world: ReadOnlyWorld, endpoint: Endpoint
) -> None:
    world = read_only_world.world
    reader = read_only_world.reader
    url = endpoint.url(world.server_id, world.key_id)
    response = await reader.get(url)
    assert response.status_code == 200, response.text
    assert response.json()


async def test_a_read_only_token_sees_the_accounts_resources(
    read_only_world: ReadOnlyWorld,
) -> None:
    world, reader = read_only_world.world, read_only_world.reader
    servers = (await reader.get(SERVERS)).json()
    assert sorted(s["id"] for s in servers["results"]) == sorted(
        [world.server_id, read_only_world.stopped_id]
    )
    assert (await reader.get(f"{SERVERS}{world.server_id}/")).json()["name"] == "mine"
    keys = (await reader.get("/api/v1/ssh-keys/")).json()
    assert [k["id"] for k in keys["results"]] == [world.key_id]
    assert (await reader.get("/api/v1/account/")).json()["name"] == world.owner.name


@pytest.mark.parametrize("endpoint", WRITES, ids=str)
async def test_a_read_only_token_cannot_write(
    read_only_world: ReadOnlyWorld, endpoint: Endpoint
) -> None:
    world = read_only_world.world
    # start needs a stopped server to be possible at all; the others a running one.
    server_id = read_only_world.stopped_id if endpoint.path.endswith("start/") else world.server_id
    before = await world.state()
    stopped_before = await snapshot(world.owner, read_only_world.stopped_id)
    response = await read_only_world.reader.request(
        endpoint.method, endpoint.url(server_id, world.key_id), json=endpoint.json()
    )
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "forbidden"
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    assert await world.state() == before
    assert await snapshot(world.owner, read_only_world.stopped_id) == stopped_before


async def test_a_read_only_token_is_refused_before_the_body_is_judged(
    read_only_world: ReadOnlyWorld,
) -> None:
    """Even an invalid create is a 403, not a 400 that would invite a retry."""
    response = await read_only_world.reader.post(SERVERS, json={"name": 5})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


# Tenant isolation -------------------------------------------------------------------------


def _comparable(response: httpx.Response, resource_id: int) -> dict[str, Any]:
    """A 404's status, header names and body, with the id and request id blanked out."""
    body = response.json()
    error = dict(body["error"])
    error["request_id"] = "-"
    error["message"] = error["message"].replace(str(resource_id), "N")
    return {
        "status": response.status_code,
        "headers": sorted(
            name for name in response.headers if name not in ("content-length", "x-request-id")
        ),
        "content_type": response.headers["content-type"],
        "body": {**body, "error": error},
    }


@pytest.mark.parametrize("endpoint", OWNED, ids=str)
async def test_another_accounts_ids_look_exactly_like_unknown_ids(
    factory: Factory, endpoint: Endpoint
) -> None:
    world = await make_world(factory)
    intruder = await factory.tenant()
    await intruder.create_server(name="intruder")
    before = await world.state()

    theirs = await intruder.request(
        endpoint.method, endpoint.url(world.server_id, world.key_id), json=endpoint.json()
    )
    unknown_id = random.randint(1_000_000_000, 2_000_000_000)
    unknown = await intruder.request(
        endpoint.method, endpoint.url(unknown_id, unknown_id), json=endpoint.json()
    )
    assert theirs.status_code == 404, theirs.text
    assert theirs.json()["error"]["code"] == "not_found"
    resource_id = world.key_id if "{key}" in endpoint.path else world.server_id
    assert _comparable(theirs, resource_id) == _comparable(unknown, unknown_id)
    assert "mine" not in theirs.text
    assert await world.state() == before
    # The intruder's own things are untouched too.
    intruder_servers = (await intruder.get(SERVERS)).json()
    assert [s["name"] for s in intruder_servers["results"]] == ["intruder"]


async def test_an_owners_server_is_unchanged_after_every_attempt_of_another_account(
    factory: Factory,
) -> None:
    world = await make_world(factory)
    intruder = await factory.tenant()
    before = await world.state()
    for endpoint in OWNED:
        response = await intruder.request(
            endpoint.method, endpoint.url(world.server_id, world.key_id), json=endpoint.json()
        )
        assert response.status_code == 404, (str(endpoint), response.text)
    after = await world.state()
    assert after == before
    assert after["server"]["status"] == "active"
    assert after["server"]["name"] == "mine"
    # And the owner can still use all of it.
    stop = await world.owner.post(f"{SERVERS}{world.server_id}/stop/")
    assert stop.status_code == 200
    await world.owner.wait_for_status(world.server_id, "stopped")
    key = await world.owner.get(f"/api/v1/ssh-keys/{world.key_id}/")
    assert key.status_code == 200


async def test_each_list_holds_exactly_its_own_servers(factory: Factory) -> None:
    tenants = [await factory.tenant() for _ in range(3)]
    owned: dict[str, list[int]] = {}
    for index, tenant in enumerate(tenants):
        ids = []
        for n in range(3):
            location = "us-east" if n == 0 else "us-west"
            created = await tenant.create_server(name=f"t{index}-s{n}", location=location)
            ids.append(created["id"])
        owned[tenant.name] = ids
    for tenant in tenants:
        mine = owned[tenant.name]
        listing = (await tenant.get(SERVERS)).json()
        assert listing["count"] == 3
        assert [s["id"] for s in listing["results"]] == mine
        paged: list[int] = []
        for page in (1, 2):
            response = await tenant.get(SERVERS, params={"page": page, "page_size": 2})
            assert response.json()["count"] == 3
            paged += [s["id"] for s in response.json()["results"]]
        assert paged == mine
        east = (await tenant.get(SERVERS, params={"location": "us-east"})).json()
        assert [s["id"] for s in east["results"]] == mine[:1]
        west = (await tenant.get(SERVERS, params={"location": "us-west"})).json()
        assert [s["id"] for s in west["results"]] == mine[1:]
        for other in tenants:
            if other is not tenant:
                for server_id in owned[other.name]:
                    response = await tenant.get(f"{SERVERS}{server_id}/")
                    assert response.status_code == 404


async def test_each_account_sees_only_its_own_ssh_keys_and_account(factory: Factory) -> None:
    first, second = await factory.tenant(), await factory.tenant()
    shared_key = make_ed25519_key()
    ids = {}
    for tenant in (first, second):
        # The same public key may belong to two accounts.
        response = await tenant.post(
            "/api/v1/ssh-keys/", json={"name": tenant.name, "public_key": shared_key}
        )
        assert response.status_code == 201, response.text
        ids[tenant.name] = response.json()["id"]
    for tenant, other in ((first, second), (second, first)):
        keys = (await tenant.get("/api/v1/ssh-keys/")).json()
        assert keys["count"] == 1
        assert [k["id"] for k in keys["results"]] == [ids[tenant.name]]
        assert keys["results"][0]["name"] == tenant.name
        account = (await tenant.get("/api/v1/account/")).json()
        assert account["name"] == tenant.name
        assert (await tenant.get(f"/api/v1/ssh-keys/{ids[other.name]}/")).status_code == 404
    # One account deleting its copy leaves the other's.
    assert (await first.delete(f"/api/v1/ssh-keys/{ids[first.name]}/")).status_code == 204
    assert (await second.get(f"/api/v1/ssh-keys/{ids[second.name]}/")).status_code == 200
