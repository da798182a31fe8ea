"""Request dependencies: the transaction and the caller, as named `Annotated` aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from vps.config import Settings
from vps.db.engine import Database
from vps.db.types import utcnow
from vps.domain.billing import BillingTerms
from vps.domain.errors import Unauthenticated
from vps.services.auth import authenticate
from vps.services.principal import Principal


@dataclass
class AppState:
    settings: Settings
    database: Database
    wake_worker: Callable[[], None]
    clock: Callable[[], datetime] = utcnow

    @property
    def billing_terms(self) -> BillingTerms:
        """How long "a month" is, for the services that start a billing period."""
        return BillingTerms.from_seconds(self.settings.billing_period_seconds)


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.vps
    return state


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated(
            "Authentication credentials were not provided: send 'Authorization: Bearer <token>'."
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("The Authorization header must be 'Bearer <token>'.")
    return token.strip()


@dataclass(frozen=True)
class Context:
    """One request's transaction, caller and clock."""

    session: AsyncSession
    principal: Principal
    now: datetime


async def _read_context(request: Request) -> AsyncIterator[Context]:
    state = app_state(request)
    token = bearer_token(request)
    async with state.database.read() as session:
        now = state.clock()
        principal = await authenticate(session, token, now)
        yield Context(session, principal, now)


async def _write_context(request: Request) -> AsyncIterator[Context]:
    """A write transaction that commits after the handler returns (before the response is
    sent), then wakes the embedded worker so new work starts at once."""
    state = app_state(request)
    token = bearer_token(request)
    async with state.database.write() as session:
        now = state.clock()
        principal = await authenticate(session, token, now)
        principal.require_write()
        yield Context(session, principal, now)
    state.wake_worker()


ReadContext = Annotated[Context, Depends(_read_context, scope="function")]
WriteContext = Annotated[Context, Depends(_write_context, scope="function")]
StateDep = Annotated[AppState, Depends(app_state)]
