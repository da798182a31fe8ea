from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import SshKey
from vps.db.repositories.ssh_keys import SshKeyRepository
from vps.domain.errors import Conflict, NotFound, Problems
from vps.domain.ssh_keys import InvalidKey, parse_public_key
from vps.services.principal import Principal


async def add_key(
    session: AsyncSession, principal: Principal, name: str, public_key: str, now: datetime
) -> SshKey:
    principal.require_write()
    problems = Problems()
    if not name.strip() or len(name) > 100:
        problems.add("name", "The key name must be 1 to 100 characters long.")
    try:
        parsed = parse_public_key(public_key)
    except InvalidKey as error:
        problems.add("public_key", f"Not a valid public key: {error}.")
        parsed = None
    problems.raise_if_any()
    assert parsed is not None
    repository = SshKeyRepository(session)
    if await repository.by_fingerprint(principal.account_id, parsed.fingerprint):
        raise Conflict(f"This account already has the key {parsed.fingerprint}.")
    return await repository.add(
        SshKey(
            account_id=principal.account_id,
            name=name.strip(),
            public_key=parsed.normalized,
            fingerprint=parsed.fingerprint,
            created_at=now,
        )
    )


async def get_key(session: AsyncSession, principal: Principal, key_id: int) -> SshKey:
    key = await SshKeyRepository(session).get_owned(principal.account_id, key_id)
    if key is None:
        raise NotFound(f"No SSH key with id {key_id}.")
    return key


async def list_keys(
    session: AsyncSession, principal: Principal, offset: int, limit: int
) -> tuple[int, list[SshKey]]:
    return await SshKeyRepository(session).page(principal.account_id, offset, limit)


async def delete_key(session: AsyncSession, principal: Principal, key_id: int) -> None:
    principal.require_write()
    if not await SshKeyRepository(session).delete_owned(principal.account_id, key_id):
        raise NotFound(f"No SSH key with id {key_id}.")
