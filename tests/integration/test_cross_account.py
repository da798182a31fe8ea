"""Another account's ids name nothing: every operation whose path takes an id, called by
account B with account A's ids, answers as if the id did not exist and changes nothing.

The operations are read from the OpenAPI document, so a new endpoint is covered (or fails
loudly for want of a sample) without anyone remembering to add it here. Each one is called
with a read-write and with a read-only token of B, with a body that is valid for it (the
owner's own call with the same body must succeed, which proves it), and then A's view of
everything it owns is compared with the one before, once the worker has settled.
"""

from __future__ import annotations

import base64
import os
import re
import struct
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import Factory, Tenant, eventually
from vps.api.app import create_app
from vps.config import Settings
from vps.db.engine import Database

OPENAPI = "/api/v1/openapi.json"
SERVERS = "/api/v1/servers/"
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
# In range for an id column, and far beyond any id a test run makes.
MISSING_ID = 2_000_000_000
# Operations about what every account shares (other tests may change the catalog meanwhile).
SHARED_TAGS = {"catalog"}
# The account's record of its own requests: another account's attempts add to the caller's,
# never to the owner's.
AUDIT_LOG = "/api/v1/account/audit-log/"
# Statuses the worker still has to move on: a view is compared only once none is left.
TRANSITIONAL = {"provisioning", "starting", "stopping", "rebooting"}


def make_public_key() -> str:
    """A fresh Ed25519 public key line (a new fingerprint every time)."""
    kind = b"ssh-ed25519"
    blob = struct.pack(">I", len(kind)) + kind + struct.pack(">I", 32) + os.urandom(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode('ascii')} cross@example"


# Samples --------------------------------------------------------------------------------
#
# Every parameter and body schema of an id-taking operation must be known here; an unknown
# one fails its test, so that a new endpoint is never called with guesses (or not at all).

# Request bodies by the name of their schema, valid for the owner in the resource's status.
BODY_SAMPLES: dict[str, Callable[[], dict[str, Any]]] = {
    "ReplaceServerIn": lambda: {
        "name": "replaced-01",
        "hostname": "replaced.example.com",
        "backups_enabled": True,
    },
    "PatchServerIn": lambda: {"name": "patched-01", "backups_enabled": True},
}
# Query parameters, all optional so far: a value each, so that they are exercised too.
QUERY_SAMPLES: dict[str, Any] = {"page": 1, "page_size": 10, "wait": 1, "wait_for": "active"}
# Header parameters, made afresh for each request: `*` matches any current version, and an
# idempotency key must not be shared by two different requests.
HEADER_SAMPLES: dict[str, Callable[[], str]] = {
    "If-Match": lambda: "*",
    "Idempotency-Key": lambda: f"cross-account-{uuid.uuid4().hex}",
    "Last-Event-ID": lambda: "0",
}


@dataclass
class Owned:
    """Account A and one resource of each kind an id can name."""

    owner: Tenant
    active_id: int
    stopped_id: int
    action_id: int
    key_id: int

    @property
    def server_ids(self) -> list[int]:
        return [self.active_id, self.stopped_id]


# Path parameter name -> the id of A's resource to call the operation with. A server is
# stopped for `start` and active otherwise, so that the owner's own call can succeed.
ID_FACTORIES: dict[str, Callable[[Owned, str], int]] = {
    "server_id": lambda owned, path: (
        owned.stopped_id if path.endswith("/start/") else owned.active_id
    ),
    "action_id": lambda owned, _path: owned.action_id,
    "key_id": lambda owned, _path: owned.key_id,
}


# The operations -------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    path: str

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


def id_operations(document: dict[str, Any]) -> list[Operation]:
    """Every operation whose path has a parameter (every one of them names a resource)."""
    return sorted(
        (
            Operation(method, path)
            for path, item in document["paths"].items()
            for method in item
            if method in HTTP_METHODS and "{" in path
        ),
        key=str,
    )


def _collected_document() -> dict[str, Any]:
    """The OpenAPI document, built while tests are collected (before any fixture exists) to
    parametrize them; the tests check it against the one the running app serves."""
    with tempfile.TemporaryDirectory() as directory:
        # Never connected: the document is built from the routes alone.
        settings = Settings(demo=False, database_url=f"sqlite:///{Path(directory) / 'unused.db'}")
        database = Database(settings.resolved_database_url)
        document: dict[str, Any] = create_app(settings, database).openapi()
    return document


OPERATIONS = id_operations(_collected_document())


def operation_in(document: dict[str, Any], operation: Operation) -> dict[str, Any]:
    found: dict[str, Any] = document["paths"][operation.path][operation.method]
    return found


def is_stream(spec: dict[str, Any]) -> bool:
    """An event stream never ends by itself: it cannot be read whole in-process."""
    return "text/event-stream" in spec.get("responses", {}).get("200", {}).get("content", {})


def schema_name(schema: dict[str, Any]) -> str:
    reference = schema.get("$ref", "")
    if not reference:
        pytest.fail(f"request body schema without a name: {schema}")
    return str(reference.rsplit("/", 1)[-1])


@dataclass(frozen=True)
class Call:
    url: str
    params: dict[str, Any]
    headers: dict[str, Callable[[], str]]
    body: dict[str, Any] | None


def build_call(document: dict[str, Any], operation: Operation, ids: Callable[[str], int]) -> Call:
    """The request for `operation`, with `ids(name)` for each path parameter; fails when a
    parameter or the body has no sample."""
    spec = operation_in(document, operation)
    url = operation.path
    params: dict[str, Any] = {}
    headers: dict[str, Callable[[], str]] = {}
    for parameter in spec.get("parameters", []):
        name, where = parameter["name"], parameter["in"]
        if where == "path":
            if name not in ID_FACTORIES:
                pytest.fail(f"{operation}: no resource factory for path parameter {name!r}")
            url = url.replace(f"{{{name}}}", str(ids(name)))
        elif where == "query":
            if name not in QUERY_SAMPLES:
                pytest.fail(f"{operation}: no sample for query parameter {name!r}")
            params[name] = QUERY_SAMPLES[name]
        elif where == "header":
            if name not in HEADER_SAMPLES:
                pytest.fail(f"{operation}: no sample for header parameter {name!r}")
            headers[name] = HEADER_SAMPLES[name]
        else:
            pytest.fail(f"{operation}: no sample for {where} parameter {name!r}")
    assert "{" not in url, f"{operation}: a path parameter is not declared: {url}"
    body = None
    if "requestBody" in spec:
        content = spec["requestBody"].get("content", {})
        if "application/json" not in content:
            pytest.fail(f"{operation}: no sample for a body of type {sorted(content)}")
        name = schema_name(content["application/json"]["schema"])
        if name not in BODY_SAMPLES:
            pytest.fail(f"{operation}: no sample body for schema {name!r}")
        body = BODY_SAMPLES[name]()
    return Call(url, params, headers, body)


# Fixtures and views ---------------------------------------------------------------------


@pytest.fixture(scope="module")
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get(OPENAPI)
    assert response.status_code == 200, response.text
    served: dict[str, Any] = response.json()
    return served


async def own_resources(factory: Factory) -> Owned:
    owner = await factory.tenant()
    active = await owner.active_server(name="owned-active")
    stopped = await owner.active_server(name="owned-stopped")
    response = await owner.post(f"{SERVERS}{stopped['id']}/stop/")
    assert response.status_code == 200, response.text
    await owner.wait_for_status(stopped["id"], "stopped")
    actions = await owner.get(f"{SERVERS}{active['id']}/actions/")
    assert actions.status_code == 200, actions.text
    key = await owner.post(
        "/api/v1/ssh-keys/", json={"name": "owned-key", "public_key": make_public_key()}
    )
    assert key.status_code == 201, key.text
    return Owned(
        owner=owner,
        active_id=active["id"],
        stopped_id=stopped["id"],
        action_id=actions.json()["results"][0]["id"],
        key_id=key.json()["id"],
    )


def _without_usage(value: Any) -> Any:
    """`value` without resource usage, which the worker samples as time goes by."""
    if isinstance(value, dict):
        return {k: _without_usage(v) for k, v in value.items() if k != "resource_usage"}
    if isinstance(value, list):
        return [_without_usage(item) for item in value]
    return value


async def _json(tenant: Tenant, path: str, **params: Any) -> Any:
    response = await tenant.get(path, params=params)
    assert response.status_code == 200, f"{path}: {response.text}"
    return response.json()


async def read_everything(
    tenant: Tenant, document: dict[str, Any], ids: dict[str, list[int]]
) -> dict[str, Any]:
    """The answer to every GET of the document about the account: those without parameters
    in the path, and those with, for each of `ids[name]` (skipped when `ids` has no such
    name). New reads of the API (an audit log, say) are compared without anyone adding them
    here."""
    view: dict[str, Any] = {}
    for path, item in sorted(document["paths"].items()):
        spec = item.get("get")
        if spec is None or SHARED_TAGS & set(spec.get("tags", [])) or is_stream(spec):
            continue
        parameters = spec.get("parameters", [])
        names = [p["name"] for p in parameters if p["in"] == "path"]
        query = {"page_size": 100} if any(p["name"] == "page_size" for p in parameters) else {}
        urls = [path]
        for name in names:
            urls = [
                url.replace(f"{{{name}}}", str(value))
                for url in urls
                for value in ids.get(name, [])
            ]
        for url in urls:
            view[url] = _without_usage(await _json(tenant, url, **query))
    return view


async def settled_view(owned: Owned, document: dict[str, Any]) -> dict[str, Any]:
    """Everything A can see, once no work is in flight."""
    owner = owned.owner

    async def quiet() -> bool:
        servers = (await _json(owner, SERVERS, page_size=100))["results"]
        if any(s["status"] in TRANSITIONAL for s in servers):
            return False
        for server_id in owned.server_ids:
            actions = (await _json(owner, f"{SERVERS}{server_id}/actions/", page_size=100))[
                "results"
            ]
            if any(a["status"] == "running" for a in actions):
                return False
        return True

    await eventually(quiet, "account A's servers and actions settle")
    ids = {
        "server_id": owned.server_ids,
        "action_id": [owned.action_id],
        "key_id": [owned.key_id],
    }
    return await read_everything(owner, document, ids)


def normalised_event(event: dict[str, Any], ids: list[int]) -> dict[str, Any]:
    """An audit event without what differs between any two requests, ids masked."""
    masked = {k: v for k, v in event.items() if k not in {"id", "request_id", "created_at"}}
    masked["target"] = {**event["target"], "id": "<id>" if event["target"]["id"] in ids else None}
    path = event["path"]
    for value in ids:
        path = re.sub(rf"\b{value}\b", "<id>", path)
    masked["path"] = path
    return masked


def normalised_error(response: httpx.Response, ids: list[int]) -> dict[str, Any]:
    """The error body with its request id dropped and the ids asked for masked, so that an
    answer about A's resource can be compared with one about no resource at all."""
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}, body
    error = dict(body["error"])
    assert isinstance(error.pop("request_id"), str)
    message = error["message"]
    for value in ids:
        message = re.sub(rf"\b{value}\b", "<id>", message)
    error["message"] = message
    return error


# Headers that differ between any two answers, whatever they are about.
_PER_RESPONSE_HEADERS = {"content-length", "date", "x-request-id", "server"}


def revealing_headers(response: httpx.Response) -> dict[str, str]:
    """The headers that could tell an answer about A's resource from one about nothing (an
    `ETag`, a `Location`, an action id...)."""
    return {
        name.lower(): value
        for name, value in response.headers.items()
        if name.lower() not in _PER_RESPONSE_HEADERS
    }


async def send(tenant: Tenant, operation: Operation, call: Call) -> httpx.Response:
    headers = {name: make() for name, make in call.headers.items()}
    return await tenant.request(
        operation.method.upper(), call.url, params=call.params, headers=headers, json=call.body
    )


# Tests ----------------------------------------------------------------------------------


def test_operations_were_found() -> None:
    # The spec's four id-taking server paths at least, and the collection of them worked.
    paths = {operation.path for operation in OPERATIONS}
    assert {
        "/api/v1/servers/{server_id}/",
        "/api/v1/servers/{server_id}/start/",
        "/api/v1/servers/{server_id}/stop/",
        "/api/v1/servers/{server_id}/reboot/",
    } <= paths


async def test_the_served_document_has_the_collected_operations(document: dict[str, Any]) -> None:
    assert id_operations(document) == OPERATIONS


async def test_every_id_parameter_has_a_resource_factory(document: dict[str, Any]) -> None:
    names = {
        parameter["name"]
        for item in document["paths"].values()
        for method, spec in item.items()
        if method in HTTP_METHODS
        for parameter in spec.get("parameters", [])
        if parameter["in"] == "path"
    }
    assert names, "no path parameters found"
    assert names <= set(ID_FACTORIES), (
        f"no resource factory for {sorted(names - set(ID_FACTORIES))}"
    )


@pytest.mark.parametrize("token", ["read-write", "read-only"])
@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
async def test_another_accounts_id_is_not_found_and_changes_nothing(
    factory: Factory, document: dict[str, Any], operation: Operation, token: str
) -> None:
    owned = await own_resources(factory)
    outsider = await factory.tenant()
    caller = (
        outsider if token == "read-write" else await factory.token_for(outsider, read_only=True)
    )
    try:
        call = build_call(
            document, operation, lambda name: ID_FACTORIES[name](owned, operation.path)
        )
        missing = build_call(document, operation, lambda _name: MISSING_ID)
        before = await settled_view(owned, document)
        outsider_before = await read_everything(outsider, document, {})

        response = await send(caller, operation, call)
        # The same request about ids that exist nowhere: the answer must not tell them apart.
        baseline = await send(caller, operation, missing)

        writes = operation.method != "get"
        if token == "read-only" and writes:
            # A read-only token is refused any write before anything is looked up, whoever
            # owns the id: that reveals nothing either.
            expected_status, expected_code = 403, "forbidden"
        else:
            expected_status, expected_code = 404, "not_found"
        assert response.status_code == expected_status, response.text
        assert response.json()["error"]["code"] == expected_code, response.text
        assert baseline.status_code == expected_status, baseline.text
        owned_ids = [ID_FACTORIES[name](owned, operation.path) for name in ID_FACTORIES]
        assert normalised_error(response, owned_ids) == normalised_error(baseline, [MISSING_ID])
        assert response.headers["content-type"].startswith("application/json")
        assert revealing_headers(response) == revealing_headers(baseline)

        assert await settled_view(owned, document) == before
        outsider_after = await read_everything(outsider, document, {})
        # B's own audit log records B's two attempts (if the API has one): they must read
        # alike, whether the id was A's or nobody's.
        record_before = outsider_before.pop(AUDIT_LOG, None)
        record_after = outsider_after.pop(AUDIT_LOG, None)
        assert outsider_after == outsider_before
        if record_before is not None and record_after is not None:
            added = record_after["results"][: record_after["count"] - record_before["count"]]
            assert len(added) in (0, 2), added
            if added:
                baseline_event, event = added  # newest first
                assert event["result"] == "refused", event
                assert normalised_event(event, owned_ids) == normalised_event(
                    baseline_event, [MISSING_ID]
                )

        # The owner's own call, with the same ids and body, is accepted: the refusals above
        # were about the account, not about a request that could not have worked anyway.
        # (An event stream's acceptance is shown over a real connection in test_events.py.)
        if not is_stream(operation_in(document, operation)):
            owned_response = await send(owned.owner, operation, call)
            assert 200 <= owned_response.status_code < 300, owned_response.text
    finally:
        for server_id in owned.server_ids:
            await owned.owner.delete(f"{SERVERS}{server_id}/")
