from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from vps.db import views
from vps.db.models import Account, ApiToken
from vps.db.reader import RawReader
from vps.db.repositories.accounts import TokenRepository
from vps.db.views import TokenView
from vps.domain import tokens
from vps.domain.errors import NotFound, Unauthenticated
from vps.services.principal import Principal


async def authenticate(reader: RawReader, token: str, now: datetime) -> Principal:
    """The principal of a bearer token, or Unauthenticated (never saying which check failed
    beyond what the caller may know: malformed, invalid, revoked or expired).

    The token is looked up on every request (a primary-key-sized read of committed data),
    so a revocation or an expiry takes effect on the very next request, in every process.
    """
    return principal_of(await views.token_by_hash(reader, token_hash(token)), now)


def token_hash(token: str) -> str:
    """The stored hash of a well-formed token (Unauthenticated for any other string)."""
    if not tokens.is_well_formed(token):
        raise Unauthenticated("The API token is malformed.")
    return tokens.hash_token(token)


def principal_of(record: TokenView | None, now: datetime) -> Principal:
    """The principal of the token found by its hash, or Unauthenticated."""
    if record is None:
        raise Unauthenticated("The API token is invalid.")
    if record.revoked_at is not None:
        raise Unauthenticated("The API token has been revoked.")
    if record.expires_at is not None and record.expires_at <= now:
        raise Unauthenticated("The API token has expired.")
    return Principal(account_id=record.account_id, token_id=record.id, read_only=record.read_only)


async def issue_token(
    session: AsyncSession,
    account: Account,
    now: datetime,
    *,
    read_only: bool = False,
    expires_in: timedelta | None = None,
    label: str = "",
) -> tuple[str, ApiToken]:
    """Create a token; the plain text is returned once and never stored."""
    plain = tokens.generate_token()
    record = await TokenRepository(session).add(
        ApiToken(
            account_id=account.id,
            token_hash=tokens.hash_token(plain),
            display_prefix=tokens.display_prefix(plain),
            label=label,
            read_only=read_only,
            created_at=now,
            expires_at=now + expires_in if expires_in else None,
        )
    )
    return plain, record


async def revoke_token(session: AsyncSession, token_id: int, now: datetime) -> ApiToken:
    record = await TokenRepository(session).get(token_id)
    if record is None:
        raise NotFound(f"No token with id {token_id}.")
    if record.revoked_at is None:
        record.revoked_at = now
    return record
