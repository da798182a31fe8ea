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
from vps.db.reader import RawReader
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


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, and the raw reader the hot read paths use (no transaction)."""

    principal: Principal
    reader: RawReader


@dataclass(frozen=True, slots=True)
class Bearer:
    """The presented token, not yet checked: for a service that authenticates in the same
    query as its read."""

    token: str
    reader: RawReader
    now: datetime


@dataclass(frozen=True)
class Context:
    """One request's transaction, caller and clock."""

    session: AsyncSession
    principal: Principal
    now: datetime


async def _caller(request: Request) -> Caller:
    state = app_state(request)
    reader = state.database.reader
    return Caller(await authenticate(reader, bearer_token(request), state.clock()), reader)


async def _bearer(request: Request) -> Bearer:
    state = app_state(request)
    return Bearer(bearer_token(request), state.database.reader, state.clock())


async def _read_context(request: Request) -> AsyncIterator[Context]:
    state = app_state(request)
    now = state.clock()
    principal = await authenticate(state.database.reader, bearer_token(request), now)
    async with state.database.read() as session:
        yield Context(session, principal, now)


async def _write_context(request: Request) -> AsyncIterator[Context]:
    """A write transaction that commits after the handler returns (before the response is
    sent), then wakes the embedded worker so new work starts at once.

    The caller is authenticated before the transaction starts, so that no write lock is
    held for a request that is refused."""
    state = app_state(request)
    now = state.clock()
    principal = await authenticate(state.database.reader, bearer_token(request), now)
    principal.require_write()
    async with state.database.write() as session:
        yield Context(session, principal, now)
    state.wake_worker()


CallerDep = Annotated[Caller, Depends(_caller)]
BearerDep = Annotated[Bearer, Depends(_bearer)]
ReadContext = Annotated[Context, Depends(_read_context, scope="function")]
WriteContext = Annotated[Context, Depends(_write_context, scope="function")]


async def _state(request: Request) -> AppState:
    # async: FastAPI runs a plain function dependency in a thread pool, a hop that costs
    # more than the whole of a GET.
    return app_state(request)


StateDep = Annotated[AppState, Depends(_state)]
