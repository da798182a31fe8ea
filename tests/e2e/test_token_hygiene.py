"""No API token ever reaches a log line, and the database keeps only their hashes.

The real `vps serve` runs at debug level with its whole output captured, takes requests
carrying tokens in every way a client might send one (good, in a query string, revoked,
unknown, malformed), creates and deletes a server; then the log is searched for every
token and every token hash.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect, text

from tests.conftest import new_database_url
from tests.e2e.processes import VpsCommand, free_port, stop_gently, wait_for_http, wait_until
from vps.config import Settings
from vps.db.engine import Database
from vps.domain.tokens import generate_token, hash_token

pytestmark = pytest.mark.slow


@pytest.fixture
def vps(tmp_path: Path) -> Iterator[VpsCommand]:
    with new_database_url(tmp_path) as url:
        yield VpsCommand(
            data_dir=tmp_path / "data",
            env={
                "VPS_DATABASE_URL": url,
                "VPS_LOG_LEVEL": "debug",
                "VPS_DEMO": "false",
                # On, so that the limiter's own path is part of what is checked.
                "VPS_RATE_LIMITS": "1000/minute",
                "VPS_SIM_PROVISION_SECONDS": "0.2",
                "VPS_SIM_DELETE_SECONDS": "0.1",
                "VPS_WORKER_POLL_SECONDS": "0.1",
            },
        )


def _new_token(vps: VpsCommand, account: str) -> tuple[str, int]:
    created = vps.run("tokens", "create", account)
    assert created.returncode == 0, created.stderr
    match = re.search(r"token (\d+) for", created.stderr)
    assert match, created.stderr
    return created.stdout.strip().splitlines()[-1], int(match.group(1))


async def _database_rows(url: str) -> list[str]:
    """Every row of every table, as text."""
    database = Database(Settings(database_url=url).resolved_database_url)
    try:
        async with database.engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            rows: list[str] = []
            for table in tables:
                result = await connection.execute(text(f'SELECT * FROM "{table}"'))
                rows.extend(f"{table}: {tuple(row)}" for row in result)
            return rows
    finally:
        await database.dispose()


def test_no_token_in_the_log_and_only_hashes_in_the_database(
    vps: VpsCommand, tmp_path: Path
) -> None:
    assert vps.run("db", "upgrade").returncode == 0
    assert vps.run("accounts", "create", "hygiene", "--credits", "100").returncode == 0
    good, _ = _new_token(vps, "hygiene")
    revoked, revoked_id = _new_token(vps, "hygiene")
    assert vps.run("tokens", "revoke", str(revoked_id)).returncode == 0
    unknown = generate_token()
    malformed = good[:-1] + ("A" if good[-1] != "A" else "B")
    tokens = [good, revoked, unknown, malformed]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    serve = vps.start("serve", "--port", str(port), log=log)
    try:
        wait_for_http(base)
        with httpx.Client(base_url=base, timeout=10) as http:

            def bearer(token: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {token}"}

            assert http.get("/api/v1/servers/", headers=bearer(good)).status_code == 200
            assert http.get(f"/api/v1/servers/?token={good}").status_code == 401
            assert http.get(f"/api/v1/servers/?page=1&api_key={good}&x=1").status_code == 401
            assert http.get("/api/v1/account/", headers=bearer(revoked)).status_code == 401
            assert http.get("/api/v1/account/", headers=bearer(unknown)).status_code == 401
            assert http.get("/api/v1/account/", headers=bearer(malformed)).status_code == 401
            assert http.get(f"/api/v1/no-such-path/{good}/").status_code == 404
            created = http.post(
                "/api/v1/servers/",
                headers=bearer(good),
                json={"name": "hygiene", "plan_id": 1, "os_id": 5, "location": "us-west"},
            )
            assert created.status_code == 201, created.text
            server_id = created.json()["id"]

            def active() -> bool:
                server = http.get(f"/api/v1/servers/{server_id}/", headers=bearer(good))
                return bool(server.json()["status"] == "active")

            wait_until(active, 30, "the server to be active")
            deleted = http.delete(f"/api/v1/servers/{server_id}/", headers=bearer(good))
            assert deleted.status_code == 204
    finally:
        stop_gently(serve)

    output = log.read_text()
    # The log did see these requests (access lines at least), with the query redacted.
    assert "/api/v1/servers/?token=vps_[redacted]" in output, output[-2000:]
    assert "DEBUG" in output
    for token in tokens:
        assert token not in output
        assert token[4:] not in output
        assert hash_token(token) not in output

    rows = asyncio.run(_database_rows(vps.env["VPS_DATABASE_URL"]))
    everything = "\n".join(rows)
    assert hash_token(good) in everything
    assert hash_token(revoked) in everything
    for token in tokens:
        assert token not in everything
        assert token[4:] not in everything
