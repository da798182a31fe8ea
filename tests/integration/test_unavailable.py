"""When the database cannot be reached, clients get 503 with the error shape, not a 500."""

from __future__ import annotations

import httpx

from vps.api.app import create_app
from vps.config import Settings
from vps.db.engine import Database
from vps.domain.tokens import generate_token


async def test_unreachable_database_answers_503(settings: Settings) -> None:
    # Nothing listens on port 1: every connection attempt is refused.
    database = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    app = create_app(settings, database)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get(
                "/api/v1/servers/", headers={"Authorization": f"Bearer {generate_token()}"}
            )
    finally:
        await database.dispose()
    assert response.status_code == 503
    assert response.headers["retry-after"]
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert "Traceback" not in response.text and "asyncpg" not in response.text
