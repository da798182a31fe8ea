from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import SshKey
from vps.db.rows import execute
from vps.db.types import storable_id


class SshKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_owned(self, account_id: int, key_id: int) -> SshKey | None:
        if not storable_id(key_id):
            return None
        result = await self.session.execute(
            select(SshKey).where(SshKey.id == key_id, SshKey.account_id == account_id)
        )
        return result.scalar_one_or_none()

    async def by_fingerprint(self, account_id: int, fingerprint: str) -> SshKey | None:
        result = await self.session.execute(
            select(SshKey).where(SshKey.account_id == account_id, SshKey.fingerprint == fingerprint)
        )
        return result.scalar_one_or_none()

    async def page(self, account_id: int, offset: int, limit: int) -> tuple[int, list[SshKey]]:
        total = await self.session.scalar(
            select(func.count()).select_from(SshKey).where(SshKey.account_id == account_id)
        )
        result = await self.session.execute(
            select(SshKey)
            .where(SshKey.account_id == account_id)
            .order_by(SshKey.id)
            .offset(offset)
            .limit(limit)
        )
        return int(total or 0), list(result.scalars())

    async def add(self, key: SshKey) -> SshKey:
        self.session.add(key)
        await self.session.flush()
        return key

    async def delete_owned(self, account_id: int, key_id: int) -> bool:
        if not storable_id(key_id):
            return False
        result = await execute(
            self.session, delete(SshKey).where(SshKey.id == key_id, SshKey.account_id == account_id)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
