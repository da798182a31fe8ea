from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import ServerUsage
from vps.db.rows import execute

_COLUMNS = ("cpu_percent", "memory_used_mb", "disk_used_gb", "bandwidth_used_gb", "sampled_at")
# The upsert of every job and every sample, built once per dialect.
_SHORT_LOCK_WAIT = text("SET LOCAL lock_timeout = '2s'")
_UPSERTS: dict[str, Any] = {}


def _upsert(dialect: str) -> Any:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    values: dict[str, Any] = {name: bindparam(f"new_{name}") for name in _COLUMNS}
    statement = insert(ServerUsage).values(server_id=bindparam("of_server"), **values)
    return statement.on_conflict_do_update(
        index_elements=["server_id"],
        set_={name: statement.excluded[name] for name in _COLUMNS},
    )


class UsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def give_up_on_locks(self) -> None:
        """Make this transaction's statements fail after a short wait for a row lock
        (PostgreSQL) instead of queueing: a usage sample is worth less than waiting, and
        another sweep writing the same rows must not hold this one up."""
        if self.session.get_bind().dialect.name == "postgresql":
            await execute(self.session, _SHORT_LOCK_WAIT)

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
        dialect = self.session.get_bind().dialect.name
        statement = _UPSERTS.get(dialect)
        if statement is None:
            statement = _UPSERTS[dialect] = _upsert(dialect)
        await execute(
            self.session,
            statement,
            {
                "of_server": server_id,
                "new_cpu_percent": cpu_percent,
                "new_memory_used_mb": memory_used_mb,
                "new_disk_used_gb": disk_used_gb,
                "new_bandwidth_used_gb": bandwidth_used_gb,
                "new_sampled_at": sampled_at,
            },
        )
