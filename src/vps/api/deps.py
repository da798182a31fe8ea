"""Request dependencies: the transaction and the caller, as named `Annotated` aliases."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

import orjson
from fastapi import Depends, Header, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vps.api.audit import mutation_of, success_status
from vps.api.errors import STATUS_BY_CODE
from vps.api.replay import Replayed
from vps.api.session import session_token
from vps.config import Settings
from vps.db.engine import Database
from vps.db.reader import RawReader
from vps.db.types import utcnow
from vps.domain import etags, idempotency
from vps.domain.billing import BillingTerms
from vps.domain.errors import DomainError, Unauthenticated
from vps.services import audit
from vps.services import idempotency as idempotent
from vps.services.auth import authenticate
from vps.services.emulator import EmulatorControls
from vps.services.idempotency import IdempotentRequest, Outcome
from vps.services.principal import Principal
from vps.services.streams import EventHub

log = logging.getLogger("vps.api")


@dataclass
class AppState:
    settings: Settings
    database: Database
    wake_worker: Callable[[], None]
    # The process's event hub (streams and long-polls).
    events: EventHub
    # The emulator's controls, when `VPS_EMULATOR_CONTROLS` is on.
    emulator: EmulatorControls | None = None
    clock: Callable[[], datetime] = utcnow

    @property
    def billing_terms(self) -> BillingTerms:
        """How long "a month" is, for the services that start a billing period."""
        return BillingTerms.from_seconds(self.settings.billing_period_seconds)


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.vps
    return state


def bearer_token(request: Request) -> str:
    """The token of `Authorization: Bearer`, or else of the panel's session cookie."""
    header = request.headers.get("authorization")
    if not header:
        from_cookie = session_token(request)
        if from_cookie is not None:
            return from_cookie
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


# The headers of a response that belong to its outcome, and so are given again on a replay.
_REPLAYED_HEADERS = ("content-type", "etag", "location", "x-action-id")


@dataclass
class Context:
    """One request's transaction, caller and clock."""

    session: AsyncSession
    principal: Principal
    now: datetime
    # Set by a create: the id of what it made, for the audit log.
    created_id: int | None = None
    # Set for a POST sent with an Idempotency-Key: its outcome is remembered by `respond`.
    idempotency: IdempotentRequest | None = None
    idempotency_retention: timedelta = timedelta(days=1)

    async def respond(self, response: Response) -> Response:
        """The response, remembered in this transaction when the request carries an
        idempotency key (so it commits with the work, or not at all)."""
        if self.idempotency is not None:
            headers = {
                name: value for name, value in response.headers.items() if name in _REPLAYED_HEADERS
            }
            outcome = Outcome(response.status_code, headers, bytes(response.body))
            await idempotent.remember(
                self.session,
                self.principal,
                self.idempotency,
                outcome,
                self.now,
                self.idempotency_retention,
            )
        return response


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


async def _idempotent_request(request: Request, key: str) -> IdempotentRequest:
    key = idempotency.checked_key(key)
    # Starlette keeps the body it already read for the route's parameters.
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = raw.decode("latin-1")
    path: str = request.scope["path"]
    return IdempotentRequest(
        key=key,
        fingerprint=idempotency.fingerprint(request.method, path, body),
        method=request.method,
        path=path,
    )


@asynccontextmanager
async def _write(request: Request, idempotency_key: str | None) -> AsyncIterator[Context]:
    """A write transaction that commits after the handler returns (before the response is
    sent), then wakes the embedded worker so new work starts at once.

    The caller is authenticated before the transaction starts, so that no write lock is
    held for a request that is refused. The audit log gets the outcome: a success in the
    same transaction, a refusal in one of its own after the rollback. A request with an
    idempotency key whose outcome is already known is answered with it (`Replayed`)."""
    state = app_state(request)
    now = state.clock()
    principal = await authenticate(state.database.reader, bearer_token(request), now)
    intent = None
    if idempotency_key is not None:
        intent = await _idempotent_request(request, idempotency_key)
    mutation = mutation_of(request)
    try:
        principal.require_write()
        if intent is not None and (
            outcome := await idempotent.committed_outcome(
                state.database.reader, principal, intent, now
            )
        ):
            raise Replayed(outcome)
        async with state.database.write() as session:
            if intent is not None and (
                outcome := await idempotent.claim(session, principal, intent, now)
            ):
                raise Replayed(outcome)
            context = Context(
                session,
                principal,
                now,
                idempotency=intent,
                idempotency_retention=timedelta(
                    seconds=state.settings.idempotency_retention_seconds
                ),
            )
            yield context
            await audit.record(
                session,
                principal,
                mutation.about(context.created_id),
                now,
                status_code=success_status(request),
            )
    except DomainError as error:
        await _record_refusal(state, principal, mutation, now, error)
        raise
    state.wake_worker()


async def _record_refusal(
    state: AppState,
    principal: Principal,
    mutation: audit.Mutation,
    now: datetime,
    error: DomainError,
) -> None:
    """Audit a refused mutation in a transaction of its own (the change rolled back); an
    outage here must not hide the refusal's own answer."""
    try:
        async with state.database.write() as session:
            await audit.record(
                session,
                principal,
                mutation,
                now,
                status_code=STATUS_BY_CODE.get(error.code, 400),
                error_code=error.code,
            )
    except (DBAPIError, OSError) as failure:
        log.warning("audit event not recorded: %s", type(failure).__name__)


async def _write_context(request: Request) -> AsyncIterator[Context]:
    async with _write(request, None) as context:
        yield context


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        description="Makes the POST safe to retry: a retry with the same key gets the first "
        "outcome again instead of doing the work twice (kept 24 hours by default).",
    ),
]


async def _post_context(
    request: Request, idempotency_key: IdempotencyKeyHeader = None
) -> AsyncIterator[Context]:
    async with _write(request, idempotency_key) as context:
        yield context


IfMatchHeader = Annotated[
    str | None,
    Header(
        alias=etags.HEADER,
        description="Apply the change only if the resource is still at this ETag "
        "(from a GET); `412` otherwise.",
    ),
]


async def _precondition(if_match: IfMatchHeader = None) -> etags.Precondition | None:
    return None if if_match is None else etags.parse_if_match(if_match)


CallerDep = Annotated[Caller, Depends(_caller)]
BearerDep = Annotated[Bearer, Depends(_bearer)]
ReadContext = Annotated[Context, Depends(_read_context, scope="function")]
WriteContext = Annotated[Context, Depends(_write_context, scope="function")]
# A write that accepts an Idempotency-Key (every POST).
PostContext = Annotated[Context, Depends(_post_context, scope="function")]
PreconditionDep = Annotated[etags.Precondition | None, Depends(_precondition)]


async def _state(request: Request) -> AppState:
    # async: FastAPI runs a plain function dependency in a thread pool, a hop that costs
    # more than the whole of a GET.
    return app_state(request)


StateDep = Annotated[AppState, Depends(_state)]
