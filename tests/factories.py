"""Factories for tests: accounts with tokens, servers in a given status, waiting helpers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from vps.db.engine import Database
from vps.db.models import Server
from vps.db.types import utcnow
from vps.domain.money import parse_amount
from vps.drivers.base import MachineSpec
from vps.services import accounts

# A lease no worker will take over during a test: keeps a forced status in place.
HOLD_OWNER = "test-hold"

# The spec's create example, without the optional fields.
CREATE_BODY: dict[str, Any] = {
    "name": "web-server-01",
    "plan_id": 1,
    "os_id": 5,
    "location": "us-west",
}

# The locations the migrations seed, with their full address pools. Other tests add
# locations whose pools are made to run out: a test that builds servers at random must pick
# from these, or its builds may fail for want of an address.
SEEDED_LOCATIONS = ("us-east", "us-west")

ED25519_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test@example"
)


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def eventually(
    condition: Callable[[], Awaitable[bool]], what: str, deadline_seconds: float = 20.0
) -> None:
    """Poll `condition` until it holds; fail naming `what` at the deadline."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_seconds
    while not await condition():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


@dataclass
class Tenant:
    """An account and a client that speaks for it."""

    name: str
    token: str
    http: httpx.AsyncClient

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kwargs)

    async def create_server(self, **overrides: Any) -> dict[str, Any]:
        body = {"name": "web-server-01", "plan_id": 1, "os_id": 5, "location": "us-west"}
        body.update(overrides)
        response = await self.post("/api/v1/servers/", json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def wait_for_status(
        self, server_id: int, status: str, deadline_seconds: float = 10.0
    ) -> dict[str, Any]:
        """Poll until the server has `status`; fail with the last body at the deadline."""
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_seconds
        last: Any = None
        while loop.time() < end:
            response = await self.get(f"/api/v1/servers/{server_id}/")
            last = response.json()
            if response.status_code == 200 and last["status"] == status:
                result: dict[str, Any] = last
                return result
            await asyncio.sleep(0.02)
        raise AssertionError(f"server {server_id} never became {status}: {last}")

    async def active_server(self, **overrides: Any) -> dict[str, Any]:
        created = await self.create_server(**overrides)
        return await self.wait_for_status(created["id"], "active")


class Factory:
    def __init__(self, http: httpx.AsyncClient, database: Database) -> None:
        self.http = http
        self.database = database

    async def tenant(
        self,
        credits: str = "1000.00",
        *,
        read_only: bool = False,
        expires_in: timedelta | None = None,
    ) -> Tenant:
        name = f"t-{uuid.uuid4().hex[:12]}"
        async with self.database.write() as session:
            await accounts.create_account(session, name, parse_amount(credits), utcnow())
            token, _ = await accounts.create_token(
                session, name, utcnow(), read_only=read_only, expires_in=expires_in
            )
        return Tenant(name, token, self.http)

    async def token_for(
        self, tenant: Tenant, *, read_only: bool = False, expires_in: timedelta | None = None
    ) -> Tenant:
        """Another token of the same account."""
        async with self.database.write() as session:
            token, _ = await accounts.create_token(
                session, tenant.name, utcnow(), read_only=read_only, expires_in=expires_in
            )
        return Tenant(tenant.name, token, self.http)

    async def force_status(self, server_id: int, status: str) -> None:
        """Put a server in `status` and hold it there (no worker will pick it up)."""
        async with self.database.write() as session:
            await session.execute(
                update(Server)
                .where(Server.id == server_id)
                .values(
                    status=status,
                    lease_owner=HOLD_OWNER,
                    lease_expires_at=utcnow() + timedelta(hours=1),
                )
            )

    async def release_hold(self, server_id: int) -> None:
        async with self.database.write() as session:
            await session.execute(
                update(Server)
                .where(Server.id == server_id, Server.lease_owner == HOLD_OWNER)
                .values(lease_owner=None, lease_expires_at=None)
            )

    async def wait_until_deleted(self, server_id: int) -> None:
        """Wait until the worker has destroyed the server's machine (status `deleted`)."""

        async def deleted() -> bool:
            async with self.database.read() as session:
                status = await session.scalar(select(Server.status).where(Server.id == server_id))
            return status == "deleted"

        await eventually(deleted, f"server {server_id} to be deleted")


def spec_for(server_id: int) -> MachineSpec:
    """A small machine for a server id, for driving a driver directly."""
    return MachineSpec(
        server_id=server_id,
        name="x",
        hostname=None,
        vcpus=1,
        memory_mb=512,
        disk_gb=10,
        bandwidth_gb=100,
        image="debian-12",
        ipv4_address=None,
        ipv6_address=None,
        ssh_public_key=None,
    )
