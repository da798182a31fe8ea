"""Optimistic concurrency through HTTP: ETag on GET, If-Match on PUT, PATCH and DELETE."""

from __future__ import annotations

import pytest

from tests.factories import Factory

SERVERS = "/api/v1/servers/"
PUT_BODY = {"name": "renamed", "hostname": "renamed.example.com", "backups_enabled": False}


async def test_get_gives_an_etag_that_a_change_moves(factory: Factory) -> None:
    tenant = await factory.tenant()
    server = await tenant.active_server()
    path = f"{SERVERS}{server['id']}/"

    first = await tenant.get(path)
    same = await tenant.get(path)
    patched = await tenant.patch(
        path, json={"name": "other"}, headers={"If-Match": first.headers["etag"]}
    )
    after = await tenant.get(path)

    assert first.headers["etag"].startswith('"') and first.headers["etag"].endswith('"')
    assert same.headers["etag"] == first.headers["etag"]
    assert patched.status_code == 200, patched.text
    assert patched.headers["etag"] != first.headers["etag"]
    assert after.headers["etag"] == patched.headers["etag"]
    assert after.json()["name"] == "other"


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_an_invalid_body_is_400_even_with_a_stale_if_match(
    factory: Factory, method: str
) -> None:
    """The request is wrong whatever the version: it is answered as such (found by the
    fuzzer: a bad hostname with a made-up tag got 412)."""
    tenant = await factory.tenant()
    server = await tenant.active_server(name="original")
    path = f"{SERVERS}{server['id']}/"
    body = {**PUT_BODY, "hostname": "bad host*"}
    response = await tenant.request(method, path, json=body, headers={"If-Match": '"999"'})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["fields"][0]["field"] == "hostname"


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_a_stale_if_match_is_412_and_changes_nothing(factory: Factory, method: str) -> None:
    tenant = await factory.tenant()
    server = await tenant.active_server(name="original")
    path = f"{SERVERS}{server['id']}/"
    stale = (await tenant.get(path)).headers["etag"]
    assert (await tenant.patch(path, json={"backups_enabled": True})).status_code == 200
    current = (await tenant.get(path)).headers["etag"]

    response = await tenant.request(method, path, json=PUT_BODY, headers={"If-Match": stale})

    assert response.status_code == 412, response.text
    assert response.json()["error"]["code"] == "precondition_failed"
    assert response.headers["etag"] == current
    after = await tenant.get(path)
    assert after.json()["name"] == "original"
    assert after.headers["etag"] == current


@pytest.mark.parametrize(
    ("if_match", "status"),
    [
        ("*", 200),
        ('"0", CURRENT', 200),
        ("W/CURRENT", 412),  # If-Match compares strongly: a weak tag never matches
        ('"not-ours"', 412),
        ("unquoted", 400),
        ('"1", bad', 400),
    ],
)
async def test_if_match_forms(factory: Factory, if_match: str, status: int) -> None:
    tenant = await factory.tenant()
    server = await tenant.active_server()
    path = f"{SERVERS}{server['id']}/"
    current = (await tenant.get(path)).headers["etag"]

    response = await tenant.patch(
        path, json={"name": "changed"}, headers={"If-Match": if_match.replace("CURRENT", current)}
    )

    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["error"]["fields"][0]["field"] == "If-Match"


async def test_without_if_match_the_last_write_wins_as_the_spec_says(factory: Factory) -> None:
    tenant = await factory.tenant()
    server = await tenant.active_server()
    path = f"{SERVERS}{server['id']}/"

    assert (await tenant.patch(path, json={"name": "a"})).status_code == 200
    assert (await tenant.put(path, json=PUT_BODY)).status_code == 200
    assert (await tenant.get(path)).json()["name"] == PUT_BODY["name"]


async def test_delete_honours_if_match(factory: Factory) -> None:
    tenant = await factory.tenant()
    server = await tenant.active_server()
    path = f"{SERVERS}{server['id']}/"
    stale = (await tenant.get(path)).headers["etag"]
    assert (await tenant.patch(path, json={"name": "moved-on"})).status_code == 200

    refused = await tenant.delete(path, headers={"If-Match": stale})
    assert refused.status_code == 412
    assert (await tenant.get(path)).status_code == 200

    current = (await tenant.get(path)).headers["etag"]
    assert (await tenant.delete(path, headers={"If-Match": current})).status_code == 204


async def test_create_answers_the_new_servers_etag(factory: Factory) -> None:
    tenant = await factory.tenant()
    response = await tenant.post(
        SERVERS, json={"name": "fresh", "plan_id": 1, "os_id": 5, "location": "us-west"}
    )
    assert response.status_code == 201
    assert response.headers["etag"] == '"1"'
