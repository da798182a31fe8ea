"""Request bodies over VPS_MAX_BODY_BYTES are refused with 413, declared or streamed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.factories import CREATE_BODY, Factory, Tenant
from vps.api.app import create_app
from vps.config import Settings
from vps.db.engine import Database
from vps.worker.engine import Worker

LIMIT = 256


@pytest.fixture
async def capped(
    settings: Settings, database: Database, worker: Worker
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        settings.model_copy(update={"max_body_bytes": LIMIT}), database, wake_worker=worker.wake
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def body_of_size(size: int, **fields: Any) -> bytes:
    """A valid create body padded with JSON whitespace to exactly `size` bytes."""
    encoded = json.dumps({**CREATE_BODY, **fields}).encode()
    assert len(encoded) <= size
    return encoded[:-1] + b" " * (size - len(encoded)) + b"}"


async def chunks(body: bytes, size: int = 50) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def assert_payload_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert str(LIMIT) in error["message"]
    assert error["request_id"] == response.headers["X-Request-ID"]


async def no_servers(tenant: Tenant) -> bool:
    response = await tenant.get("/api/v1/servers/")
    return bool(response.json()["count"] == 0)


async def test_a_declared_length_over_the_limit_is_refused_at_once(
    factory: Factory, capped: httpx.AsyncClient
) -> None:
    tenant = await factory.tenant()
    response = await capped.post(
        "/api/v1/servers/",
        content=body_of_size(LIMIT + 1),
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert_payload_too_large(response)
    assert await no_servers(tenant)


async def test_a_streamed_body_over_the_limit_is_refused(
    factory: Factory, capped: httpx.AsyncClient
) -> None:
    tenant = await factory.tenant()
    request = capped.build_request(
        "POST",
        "/api/v1/servers/",
        content=chunks(body_of_size(LIMIT * 4)),
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert "content-length" not in request.headers
    response = await capped.send(request)
    assert_payload_too_large(response)
    assert await no_servers(tenant)


@pytest.mark.parametrize("streamed", [False, True], ids=["declared", "streamed"])
async def test_a_body_exactly_at_the_limit_is_processed(
    factory: Factory, capped: httpx.AsyncClient, streamed: bool
) -> None:
    tenant = await factory.tenant()
    body = body_of_size(LIMIT, name="at-the-limit")
    assert len(body) == LIMIT
    response = await capped.post(
        "/api/v1/servers/",
        content=chunks(body) if streamed else body,
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "at-the-limit"


async def test_the_limit_comes_before_authentication(capped: httpx.AsyncClient) -> None:
    response = await capped.post("/api/v1/servers/", content=b"x" * (LIMIT + 1))
    assert_payload_too_large(response)


async def test_the_default_limit_is_64_kib() -> None:
    assert Settings().max_body_bytes == 65_536
