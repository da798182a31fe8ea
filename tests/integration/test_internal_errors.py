"""An unexpected failure is a plain 500 with a request id, never a stack trace."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.factories import Factory
from vps.api.app import create_app
from vps.config import Settings
from vps.db.engine import Database
from vps.services import servers


async def test_unexpected_exception_is_a_plain_500(
    factory: Factory,
    settings: Settings,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = await factory.tenant()

    async def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(servers, "view_server", explode)
    app = create_app(settings, database)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="vps.api"):
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/api/v1/servers/1/", headers=tenant.headers)
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert error["request_id"] in error["message"]
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    # The operator gets the details, tied to the same request id.
    assert any(error["request_id"] in record.getMessage() for record in caplog.records)
