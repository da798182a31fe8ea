"""Idempotency keys: answer a retried POST with the first outcome instead of doing it twice.

Stripe's semantics on the IETF `Idempotency-Key` header, scoped per account:

- the outcome of a request that did its work (a 2xx) is remembered, in the same transaction
  as the work, for the retention period;
- the same key with the same request gets that outcome again, byte for byte;
- the same key with another request is refused (`idempotency_key_reused`) and changes
  nothing; while the first request is still running, another with its key gets
  `idempotency_key_in_use`;
- a refused request (invalid input, 401, 402, 404, an invalid state...) changed nothing and
  is not remembered, so the same key may be retried once the cause is fixed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import IdempotencyKey
from vps.db.reader import RawReader
from vps.db.repositories import idempotency as keys
from vps.db.repositories.idempotency import StoredResponse
from vps.domain.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from vps.domain.idempotency import HEADER
from vps.services.principal import Principal

# Expired keys deleted per transaction by the worker's sweep.
REAP_BATCH = 1000


@dataclass(frozen=True)
class IdempotentRequest:
    key: str
    fingerprint: str
    method: str
    path: str


@dataclass(frozen=True)
class Outcome:
    """A response to give (again): status, the headers that belong to it, and the body."""

    status_code: int
    headers: dict[str, str]
    body: bytes


def _judge(
    stored: StoredResponse | None, request: IdempotentRequest, now: datetime
) -> Outcome | None:
    if stored is None or stored.expires_at <= now:
        return None
    if stored.fingerprint != request.fingerprint:
        raise IdempotencyKeyReused(
            f"The {HEADER} {request.key!r} was already used for a different request "
            f"({stored.method} {stored.path} with other parameters); send a new key with a "
            "new request."
        )
    headers: dict[str, str] = json.loads(stored.headers)
    return Outcome(stored.status_code, headers, stored.body)


async def committed_outcome(
    reader: RawReader, principal: Principal, request: IdempotentRequest, now: datetime
) -> Outcome | None:
    """The remembered outcome of this key, read without a transaction: a retry of a finished
    request is answered without taking the write lock."""
    return _judge(await keys.find(reader, principal.account_id, request.key), request, now)


async def claim(
    session: AsyncSession, principal: Principal, request: IdempotentRequest, now: datetime
) -> Outcome | None:
    """Take the key for the caller's write transaction. Returns the outcome to replay when
    the first request committed meanwhile; None when this request is the one to do the work.
    """
    if not await keys.lock_key(session, principal.account_id, request.key):
        raise IdempotencyKeyInUse(
            f"A request with {HEADER} {request.key!r} is still being processed; retry it "
            "shortly to get its outcome."
        )
    stored = await keys.find_in(session, principal.account_id, request.key)
    if stored is not None and stored.expires_at <= now:
        await keys.forget(session, principal.account_id, request.key)
        return None
    return _judge(stored, request, now)


async def remember(
    session: AsyncSession,
    principal: Principal,
    request: IdempotentRequest,
    outcome: Outcome,
    now: datetime,
    retention: timedelta,
) -> None:
    """Record the outcome in the caller's transaction: it commits with the work, or neither."""
    await keys.remember(
        session,
        IdempotencyKey(
            account_id=principal.account_id,
            key=request.key,
            fingerprint=request.fingerprint,
            method=request.method,
            path=request.path,
            token_id=principal.token_id,
            status_code=outcome.status_code,
            response_headers=json.dumps(outcome.headers, sort_keys=True),
            response_body=outcome.body,
            created_at=now,
            expires_at=now + retention,
        ),
    )


async def reap_expired(session: AsyncSession, now: datetime) -> int:
    """Delete one batch of expired keys; returns how many went."""
    return await keys.reap(session, now, REAP_BATCH)
