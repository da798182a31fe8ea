from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import ServerUsage


class UsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(
        self,
        server_id: int,
        *,
        cpu_percent: float,
        memory_used_mb: int,
        disk_used_gb: int,
        bandwidth_used_gb: int,
        sampled_at: datetime,
    ) -> None:
        values = {
            "cpu_percent": cpu_percent,
            "memory_used_mb": memory_used_mb,
            "disk_used_gb": disk_used_gb,
            "bandwidth_used_gb": bandwidth_used_gb,
            "sampled_at": sampled_at,
        }
        insert = (
            pg_insert if self.session.get_bind().dialect.name == "postgresql" else sqlite_insert
        )
        statement = insert(ServerUsage).values(server_id=server_id, **values)
        await self.session.execute(
            statement.on_conflict_do_update(index_elements=["server_id"], set_=values)
        )
