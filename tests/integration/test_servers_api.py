"""The nine endpoints of the spec, through HTTP, with the spec's bodies and status codes."""

from __future__ import annotations

import re

from tests.factories import Factory

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
SPEC_SERVER_FIELDS = {
    "id",
    "name",
    "hostname",
    "status",
    "ip_address",
    "location",
    "plan",
    "os",
    "created_at",
    "updated_at",
}
SPEC_DETAIL_FIELDS = SPEC_SERVER_FIELDS | {"ipv6_address", "backups_enabled", "resource_usage"}


async def test_create_answers_201_with_the_spec_body(factory: Factory) -> None:
    tenant = await factory.tenant()
    response = await tenant.post(
        "/api/v1/servers/",
        json={
            "name": "web-server-02",
            "plan_id": 1,
            "os_id": 5,
            "location": "us-west",
            "hostname": "web02.example.com",
            "backups_enabled": True,
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert SPEC_DETAIL_FIELDS | {"message"} <= body.keys()
    assert body["name"] == "web-server-02"
    assert body["hostname"] == "web02.example.com"
    assert body["status"] == "provisioning"
    assert body["ip_address"] is None
    assert body["location"] == "us-west"
    assert body["plan"] == {
        "id": 1,
        "name": "Standard VPS",
        "vcpus": 2,
        "memory": 4096,
        "storage": 80,
        "bandwidth": 2048,
    }
    assert body["os"] == {"id": 5, "name": "Ubuntu 22.04 LTS"}
    assert body["backups_enabled"] is True
    assert TIMESTAMP.fullmatch(body["created_at"]) and TIMESTAMP.fullmatch(body["updated_at"])
    assert body["message"] == "Server is being provisioned. This may take 2-5 minutes."
    assert body["action"]["kind"] == "create" and body["action"]["status"] == "running"


async def test_server_becomes_active_with_addresses_and_usage(factory: Factory) -> None:
    tenant = await factory.tenant()
    created = await tenant.create_server(plan_id=2, os_id=3, location="us-east")
    server = await tenant.wait_for_status(created["id"], "active")
    assert server.keys() >= SPEC_DETAIL_FIELDS
    assert server["ip_address"].startswith("198.51.100.")
    assert server["ipv6_address"].startswith("2001:db8:")
    usage = server["resource_usage"]
    assert set(usage) == {"cpu_percent", "memory_used", "disk_used", "bandwidth_used"}
    assert 0 < usage["cpu_percent"] <= 100
    assert 0 < usage["memory_used"] <= 8192
    assert 0 < usage["disk_used"] <= 160
    assert 0 <= usage["bandwidth_used"] <= 4096


async def test_get_list_and_filters(factory: Factory) -> None:
    tenant = await factory.tenant()
    west = await tenant.active_server(name="west-1")
    east = await tenant.active_server(name="east-1", location="us-east")
    stopped = await tenant.active_server(name="west-2")
    assert (await tenant.post(f"/api/v1/servers/{stopped['id']}/stop/")).status_code == 200
    await tenant.wait_for_status(stopped["id"], "stopped")

    listing = (await tenant.get("/api/v1/servers/")).json()
    assert listing["count"] == 3
    assert [s["id"] for s in listing["results"]] == sorted([west["id"], east["id"], stopped["id"]])
    assert listing["results"][0].keys() >= SPEC_SERVER_FIELDS

    by_location = (await tenant.get("/api/v1/servers/", params={"location": "us-east"})).json()
    assert [s["id"] for s in by_location["results"]] == [east["id"]]
    by_status = (await tenant.get("/api/v1/servers/", params={"status": "stopped"})).json()
    assert [s["id"] for s in by_status["results"]] == [stopped["id"]]
    both = await tenant.get("/api/v1/servers/", params={"status": "active", "location": "us-west"})
    assert [s["id"] for s in both.json()["results"]] == [west["id"]]

    detail = await tenant.get(f"/api/v1/servers/{west['id']}/")
    assert detail.status_code == 200 and detail.json()["name"] == "west-1"


async def test_pagination_keeps_count_and_links(factory: Factory) -> None:
    tenant = await factory.tenant()
    ids = [(await tenant.create_server(name=f"s-{i}"))["id"] for i in range(5)]
    first = (await tenant.get("/api/v1/servers/", params={"page_size": 2})).json()
    assert first["count"] == 5 and first["previous"] is None
    assert [s["id"] for s in first["results"]] == ids[:2]
    seen = [s["id"] for s in first["results"]]
    next_url = first["next"]
    while next_url:
        page = (await tenant.get(next_url)).json()
        assert page["count"] == 5 and page["previous"] is not None
        seen += [s["id"] for s in page["results"]]
        next_url = page["next"]
    assert seen == ids
    beyond = (await tenant.get("/api/v1/servers/", params={"page": 9, "page_size": 2})).json()
    assert beyond["count"] == 5 and beyond["results"] == []


async def test_put_replaces_and_patch_updates(factory: Factory) -> None:
    tenant = await factory.tenant()
    server = await tenant.active_server()
    put = await tenant.put(
        f"/api/v1/servers/{server['id']}/",
        json={
            "name": "web-server-updated",
            "hostname": "web-updated.example.com",
            "backups_enabled": True,
        },
    )
    assert put.status_code == 200
    assert put.json()["name"] == "web-server-updated"
    assert put.json()["hostname"] == "web-updated.example.com"
    assert put.json()["backups_enabled"] is True
    patch = await tenant.patch(f"/api/v1/servers/{server['id']}/", json={"name": "new-server-name"})
    assert patch.status_code == 200
    assert patch.json()["name"] == "new-server-name"
    assert patch.json()["hostname"] == "web-updated.example.com"
    again = (await tenant.get(f"/api/v1/servers/{server['id']}/")).json()
    assert again["name"] == "new-server-name" and again["backups_enabled"] is True


async def test_power_actions_answer_the_spec_body_and_complete(factory: Factory) -> None:
    tenant = await factory.tenant()
    server = await tenant.active_server(name="web-server-01")
    sid = server["id"]
    for path, message, transitional, final in (
        ("stop", "Server is stopping", "stopping", "stopped"),
        ("start", "Server is starting", "starting", "active"),
        ("reboot", "Server is rebooting", "rebooting", "active"),
    ):
        response = await tenant.post(f"/api/v1/servers/{sid}/{path}/")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "success"
        assert body["message"] == message
        assert body["server"] == {"id": sid, "name": "web-server-01", "status": transitional}
        await tenant.wait_for_status(sid, final)
        actions_done = body["action"]
        assert actions_done["kind"] == path


async def test_stopped_server_reports_no_cpu(factory: Factory) -> None:
    tenant = await factory.tenant()
    server = await tenant.active_server()
    await tenant.post(f"/api/v1/servers/{server['id']}/stop/")
    stopped = await tenant.wait_for_status(server["id"], "stopped")
    assert stopped["resource_usage"]["cpu_percent"] == 0
    assert stopped["resource_usage"]["memory_used"] == 0


async def test_delete_answers_204_then_404(factory: Factory) -> None:
    tenant = await factory.tenant()
    server = await tenant.active_server()
    response = await tenant.delete(f"/api/v1/servers/{server['id']}/")
    assert response.status_code == 204 and response.content == b""
    assert (await tenant.get(f"/api/v1/servers/{server['id']}/")).status_code == 404
    assert (await tenant.delete(f"/api/v1/servers/{server['id']}/")).status_code == 404
    assert (await tenant.get("/api/v1/servers/")).json()["count"] == 0


async def test_paths_without_trailing_slash_are_served(factory: Factory) -> None:
    tenant = await factory.tenant()
    created = await tenant.post(
        "/api/v1/servers", json={"name": "noslash", "plan_id": 1, "os_id": 5, "location": "us-west"}
    )
    assert created.status_code == 201
    sid = created.json()["id"]
    assert (await tenant.get("/api/v1/servers")).json()["count"] == 1
    assert (await tenant.get(f"/api/v1/servers/{sid}")).status_code == 200
    await tenant.wait_for_status(sid, "active")
    assert (await tenant.post(f"/api/v1/servers/{sid}/stop")).status_code == 200
    assert (await tenant.patch(f"/api/v1/servers/{sid}", json={"name": "x1"})).status_code == 200
    assert (await tenant.delete(f"/api/v1/servers/{sid}")).status_code == 204


async def test_responses_carry_a_request_id(factory: Factory) -> None:
    tenant = await factory.tenant()
    response = await tenant.get("/api/v1/servers/", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    missing = await tenant.get("/api/v1/servers/999999/")
    assert missing.json()["error"]["request_id"] == missing.headers["x-request-id"]
