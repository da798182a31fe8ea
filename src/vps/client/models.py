"""Typed, immutable models of the API's resources.

Every model ignores fields it does not know, so a client keeps working when the API adds
fields. Credits are `Decimal`, times are aware `datetime`s (UTC).

A `Server` returned by a `Client` is bound to it: `server.wait_until("active")`,
`server.refresh()`, `server.start()`... call the API through that client. An `AsyncServer`
(from an `AsyncClient`) has the same methods as coroutines. Both share `ServerBase`.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict, PrivateAttr

from vps.client.errors import ConfigurationError

if TYPE_CHECKING:
    from vps.client._async import AsyncServers
    from vps.client._sync import Servers

__all__ = [
    "STABLE_STATUSES",
    "Account",
    "Action",
    "AsyncServer",
    "AuditEvent",
    "AuditTarget",
    "ErrorInfo",
    "Event",
    "FieldProblem",
    "Location",
    "OperatingSystem",
    "OperatingSystemSummary",
    "Page",
    "Plan",
    "PlanSummary",
    "ResourceUsage",
    "Server",
    "ServerBase",
    "SshKey",
    "Transaction",
]

#: Statuses in which nothing more happens to a server without a request.
STABLE_STATUSES = frozenset({"active", "stopped", "error", "suspended"})

ItemT = TypeVar("ItemT")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ErrorInfo(_Model):
    """Why a server or an action failed: a stable `code` and a message for humans."""

    code: str
    message: str


class FieldProblem(_Model):
    field: str
    code: str
    message: str


class PlanSummary(_Model):
    id: int
    name: str
    vcpus: int
    memory: int
    storage: int
    bandwidth: int


class Plan(PlanSummary):
    monthly_price: Decimal
    backups_monthly_price: Decimal


class OperatingSystemSummary(_Model):
    id: int
    name: str


class OperatingSystem(OperatingSystemSummary):
    pass


class Location(_Model):
    code: str
    name: str


class ResourceUsage(_Model):
    cpu_percent: float
    memory_used: int
    disk_used: int
    bandwidth_used: int


class Action(_Model):
    """One create, start, stop, reboot or delete of a server, and how it went."""

    id: int
    kind: str
    status: str  # running, succeeded or failed
    server_id: int
    started_at: datetime
    finished_at: datetime | None = None
    error: ErrorInfo | None = None
    progress: int = 0

    @property
    def done(self) -> bool:
        return self.status != "running"


class ServerBase(_Model):
    """A server's fields. `action` and `message` are set on the answers of create and the
    power actions; `etag` (the server's version, for `if_match=`) when the API sent one."""

    id: int
    name: str
    hostname: str | None = None
    status: str
    ip_address: str | None = None
    ipv6_address: str | None = None
    location: str
    plan: PlanSummary
    os: OperatingSystemSummary
    backups_enabled: bool
    resource_usage: ResourceUsage | None = None
    error: ErrorInfo | None = None
    created_at: datetime
    updated_at: datetime
    message: str | None = None
    action: Action | None = None
    etag: str | None = None

    #: The resource group (`client.servers`) that read this server, for its methods.
    _servers: object = PrivateAttr(default=None)
    #: Which client a server of this class must have been read through.
    _client_name: ClassVar[str] = "a client"

    def _group(self) -> object:
        if self._servers is None:
            raise ConfigurationError(
                f"This {type(self).__name__} was not read through {self._client_name}."
            )
        return self._servers


class Server(ServerBase):
    """A server, bound to the `Client` that read it."""

    _client_name: ClassVar[str] = "a Client"

    def _bound(self) -> Servers:
        return cast("Servers", self._group())

    def refresh(self) -> Server:
        """The server as it is now."""
        return self._bound().get(self.id)

    def wait_until(self, status: str, *, timeout: float = 300.0) -> Server:
        """Wait until the server is in `status` (see `Client.servers.wait_until`)."""
        return self._bound().wait_until(self.id, status, timeout=timeout, initial=self)

    def start(self, *, idempotency_key: str | None = None) -> Server:
        return self._bound().start(self.id, idempotency_key=idempotency_key)

    def stop(self, *, idempotency_key: str | None = None) -> Server:
        return self._bound().stop(self.id, idempotency_key=idempotency_key)

    def reboot(self, *, idempotency_key: str | None = None) -> Server:
        return self._bound().reboot(self.id, idempotency_key=idempotency_key)

    def delete(self, *, if_match: str | None = None) -> Action:
        return self._bound().delete(self.id, if_match=if_match)


class AsyncServer(ServerBase):
    """A server, bound to the `AsyncClient` that read it; its methods are coroutines."""

    _client_name: ClassVar[str] = "an AsyncClient"

    def _bound(self) -> AsyncServers:
        return cast("AsyncServers", self._group())

    async def refresh(self) -> AsyncServer:
        return await self._bound().get(self.id)

    async def wait_until(
        self,
        status: str,
        *,
        timeout: float = 300.0,  # noqa: ASYNC109 (the interface mirrors Server's)
    ) -> AsyncServer:
        return await self._bound().wait_until(self.id, status, timeout=timeout, initial=self)

    async def start(self, *, idempotency_key: str | None = None) -> AsyncServer:
        return await self._bound().start(self.id, idempotency_key=idempotency_key)

    async def stop(self, *, idempotency_key: str | None = None) -> AsyncServer:
        return await self._bound().stop(self.id, idempotency_key=idempotency_key)

    async def reboot(self, *, idempotency_key: str | None = None) -> AsyncServer:
        return await self._bound().reboot(self.id, idempotency_key=idempotency_key)

    async def delete(self, *, if_match: str | None = None) -> Action:
        return await self._bound().delete(self.id, if_match=if_match)


class SshKey(_Model):
    id: int
    name: str
    public_key: str
    fingerprint: str
    created_at: datetime


class Transaction(_Model):
    """One ledger entry: a top-up, a charge or a refund, and the balance after it."""

    id: int
    kind: str
    amount: Decimal
    balance_after: Decimal
    server_id: int | None = None
    description: str = ""
    created_at: datetime


class Account(_Model):
    id: int
    name: str
    balance: Decimal
    recent_transactions: list[Transaction] = []


class AuditTarget(_Model):
    type: str
    id: int | None = None


class AuditEvent(_Model):
    """One write the account's tokens asked for, refused ones included."""

    id: int
    action: str
    target: AuditTarget
    token_id: int | None = None
    method: str
    path: str
    status_code: int
    result: str
    error_code: str | None = None
    request_id: str
    created_at: datetime


class Page(_Model, Generic[ItemT]):
    """One page of a list: `count` is the total, `next`/`previous` the neighbours' URLs."""

    count: int
    next: str | None = None
    previous: str | None = None
    results: list[ItemT]


class Event(_Model):
    """One message of an event stream.

    `type` is `server.status` (with `status`, `previous_status`, `error`), `server.updated`
    (with `changes`: the new values of the fields a PUT or PATCH changed), `action.status`
    (with `action`), or `reset` (with `reason`: events were lost, read the state again).
    `id` is None for messages without one (reset).
    """

    id: int | None = None
    type: str
    server_id: int | None = None
    action_id: int | None = None
    status: str | None = None
    previous_status: str | None = None
    error: ErrorInfo | None = None
    action: Action | None = None
    changes: dict[str, Any] | None = None
    reason: str | None = None
    occurred_at: datetime | None = None

    @classmethod
    def from_message(cls, event_type: str, event_id: str | None, data: str) -> Event:
        """Decode an SSE message; a `data` that is not a JSON object gives an empty event."""
        try:
            payload: Any = json.loads(data) if data else {}
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        payload.setdefault("type", event_type)
        if payload.get("id") is None and event_id is not None and event_id.isdigit():
            payload["id"] = int(event_id)
        return cls.model_validate(payload)
