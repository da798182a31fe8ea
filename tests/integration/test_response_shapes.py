"""Server bodies are built as plain data for speed (see docs/performance.md); the schemas in
`vps.api.schemas` document them. Every body must be exactly what its schema says: the same
fields, no more, of the same types, with the spec's timestamp format."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from tests.factories import Factory
from vps.api.schemas import PowerActionOut, ServerCreated, ServerList, ServerOut

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def assert_matches(model: type[BaseModel], body: dict[str, Any]) -> None:
    """The body round-trips through its schema unchanged (no missing, extra or mistyped
    field)."""
    assert model.model_validate(body).model_dump(mode="json") == body


def without_usage(body: dict[str, Any]) -> dict[str, Any]:
    """A server body without what a worker's usage sample may change between two reads."""
    return {k: v for k, v in body.items() if k != "resource_usage"}


def assert_server_body(body: dict[str, Any]) -> None:
    assert_matches(ServerOut, {k: v for k, v in body.items() if k in ServerOut.model_fields})
    assert TIMESTAMP.fullmatch(body["created_at"]), body["created_at"]
    assert TIMESTAMP.fullmatch(body["updated_at"]), body["updated_at"]


async def test_every_server_body_matches_its_schema(factory: Factory) -> None:
    tenant = await factory.tenant()
    created = await tenant.create_server(hostname="shape.example.com")
    assert_matches(ServerCreated, created)
    assert_server_body(created)
    assert created["status"] == "provisioning"
    assert created["ip_address"] is None

    active = await tenant.wait_for_status(created["id"], "active")
    assert_matches(ServerOut, active)
    assert_server_body(active)
    assert active["ip_address"] and active["ipv6_address"]
    assert active["resource_usage"]["memory_used"] > 0

    listed = (await tenant.get("/api/v1/servers/")).json()
    assert_matches(ServerList, listed)
    assert [without_usage(row) for row in listed["results"]] == [without_usage(active)]

    patched = await tenant.patch(f"/api/v1/servers/{created['id']}/", json={"name": "renamed"})
    assert patched.status_code == 200
    assert_matches(ServerOut, patched.json())
    assert patched.json()["name"] == "renamed"

    rebooted = await tenant.post(f"/api/v1/servers/{created['id']}/reboot/")
    assert rebooted.status_code == 200
    assert_matches(PowerActionOut, rebooted.json())


async def test_list_and_get_agree_field_for_field(factory: Factory) -> None:
    """The page's rows and the single GET come from different statements: same bodies."""
    tenant = await factory.tenant()
    ids = [(await tenant.create_server(name=f"agree-{i}"))["id"] for i in range(3)]
    for server_id in ids:
        await tenant.wait_for_status(server_id, "active")
    page = (await tenant.get("/api/v1/servers/", params={"page_size": 2})).json()
    assert page["count"] == 3
    assert page["next"] is not None
    second = (await tenant.get(page["next"])).json()
    rows = page["results"] + second["results"]
    assert [row["id"] for row in rows] == ids
    for row in rows:
        single = (await tenant.get(f"/api/v1/servers/{row['id']}/")).json()
        assert without_usage(single) == without_usage(row)
        assert single["resource_usage"].keys() == row["resource_usage"].keys()
