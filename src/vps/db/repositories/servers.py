from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import Action, Location, OperatingSystem, Plan, Server, ServerUsage
from vps.db.reader import PreparedQuery, RawReader, fetch_one
from vps.db.rows import execute, insert_row
from vps.db.types import storable_id
from vps.domain.states import ActionStatus, ServerStatus

# The PostgreSQL notification channel on which new work is announced to workers.
WORK_CHANNEL = "vps_work"


def _visible(account_id: int) -> Any:
    return and_(Server.account_id == account_id, Server.deleted_at.is_(None))


# What a driver needs to know of a server's machine (see lifecycle.machine_spec), read with
# Core statements: the worker reads them for every job and every usage sample.
SPEC_COLUMNS = (
    Server.id,
    Server.name,
    Server.hostname,
    Plan.vcpus,
    Plan.memory_mb,
    Plan.storage_gb,
    Plan.bandwidth_gb,
    OperatingSystem.slug,
    Server.ipv4_address,
    Server.ipv6_address,
    Server.ssh_public_key,
)
JOB_COLUMNS = (
    Server.account_id,
    Server.status,
    Server.attempts,
    Server.created_at,
    Server.lease_owner,
    Server.location_id,
    Server.host_id,
)
_WITH_SPEC = Server.__table__.join(Plan, Plan.id == Server.plan_id).join(
    OperatingSystem, OperatingSystem.id == Server.os_id
)
_JOB = (
    select(*JOB_COLUMNS, *SPEC_COLUMNS)
    .select_from(_WITH_SPEC)
    .where(Server.id == bindparam("server_id"))
)


_servers = cast(Table, Server.__table__)
# Fenced updates by the set of columns they write, built once each (the worker runs them
# for every job; building an UPDATE costs as much as running it).
_FENCED_UPDATES: dict[frozenset[str], Any] = {}
_FINISH_RUNNING = (
    update(Action)
    .where(
        Action.server_id == bindparam("of_server"),
        Action.status == ActionStatus.RUNNING.value,
    )
    .values(
        status=bindparam("new_status"),
        finished_at=bindparam("new_finished_at"),
        error_code=bindparam("new_error_code"),
        error_message=bindparam("new_error_message"),
    )
    .returning(*cast(Table, Action.__table__).c)
)


_JOB_QUERY = PreparedQuery(_JOB)


async def job_row(reader: RawReader, server_id: int) -> Sequence[Any] | None:
    """What a worker needs to work on a server: `JOB_COLUMNS`, then the `SPEC_COLUMNS`
    (committed data, read without a transaction: one query per job)."""
    return await fetch_one(reader, _JOB_QUERY, {"server_id": server_id})


class ServerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, server: Server) -> Server:
        """Insert a new server (not attached to the session; see `insert_row`)."""
        return await insert_row(self.session, server)

    async def get(self, server_id: int) -> Server | None:
        return await self.session.get(Server, server_id, populate_existing=True)

    async def get_visible(self, account_id: int, server_id: int) -> Server | None:
        if not storable_id(server_id):
            return None
        result = await self.session.execute(
            select(Server)
            .where(Server.id == server_id, _visible(account_id))
            .execution_options(populate_existing=True)
        )
        return result.unique().scalar_one_or_none()

    async def update_visible(
        self,
        account_id: int,
        server_id: int,
        values: dict[str, Any],
        *,
        expected_status: ServerStatus | None = None,
    ) -> bool:
        """Conditionally update a visible server; False when the condition did not hold."""
        query = update(Server).where(Server.id == server_id, _visible(account_id))
        if expected_status is not None:
            query = query.where(Server.status == expected_status.value)
        result = await execute(self.session, query.values(version=Server.version + 1, **values))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def update_visible_at_version(
        self, account_id: int, server_id: int, version: int, values: dict[str, Any]
    ) -> bool:
        """Update a visible server only if nobody wrote it since it was read at `version`."""
        result = await execute(
            self.session,
            update(Server)
            .where(Server.id == server_id, _visible(account_id), Server.version == version)
            .values(version=Server.version + 1, **values),
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def announce_work(self) -> None:
        """Wake listening workers when this transaction commits (PostgreSQL NOTIFY; a no-op
        on SQLite, where workers poll and an embedded worker is woken in process)."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(select(func.pg_notify(WORK_CHANNEL, "")))

    # Worker side ------------------------------------------------------------------------

    async def claimable(self, statuses: Sequence[str], now: datetime, limit: int) -> list[int]:
        return await self.free_of_lease(Server.status.in_(statuses), now, limit)

    async def free_of_lease(self, condition: Any, now: datetime, limit: int) -> list[int]:
        """Ids of servers matching `condition` whose lease is free and whose retry time has
        come, oldest first (locked, skipping rows another worker locked, on PostgreSQL)."""
        query = (
            select(Server.id)
            .where(
                condition,
                or_(Server.lease_expires_at.is_(None), Server.lease_expires_at < now),
                or_(Server.retry_at.is_(None), Server.retry_at <= now),
            )
            .order_by(Server.id)
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        result = await self.session.execute(query)
        return list(result.scalars())

    async def claim(
        self, server_ids: Sequence[int], owner: str, now: datetime, until: datetime
    ) -> list[int]:
        """Take the lease of each of these servers that nobody holds a live lease of
        (compare-and-set, in one statement); the ids taken."""
        if not server_ids:
            return []
        result = await execute(
            self.session,
            update(_servers)
            .where(
                _servers.c.id.in_(server_ids),
                or_(_servers.c.lease_expires_at.is_(None), _servers.c.lease_expires_at < now),
            )
            .values(lease_owner=owner, lease_expires_at=until)
            .returning(_servers.c.id),
        )
        return sorted(result.scalars())

    async def renew(self, server_id: int, owner: str, until: datetime) -> bool:
        result = await execute(
            self.session,
            update(Server)
            .where(Server.id == server_id, Server.lease_owner == owner)
            .values(lease_expires_at=until),
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def fenced_update(
        self, server_id: int, owner: str, expected_status: str, values: dict[str, Any]
    ) -> bool:
        """Write as the lease holder, only if the server is still in the expected status.

        A worker that lost its lease (or whose server was deleted meanwhile) writes nothing.
        """
        statement = _FENCED_UPDATES.get(frozenset(values))
        if statement is None:
            statement = _FENCED_UPDATES[frozenset(values)] = (
                update(_servers)
                .where(
                    _servers.c.id == bindparam("_server_id"),
                    _servers.c.lease_owner == bindparam("_owner"),
                    _servers.c.status == bindparam("_expected_status"),
                )
                .values(
                    version=_servers.c.version + 1,
                    **{name: bindparam(f"new_{name}") for name in values},
                )
            )
        result = await execute(
            self.session,
            statement,
            {
                "_server_id": server_id,
                "_owner": owner,
                "_expected_status": expected_status,
                **{f"new_{name}": value for name, value in values.items()},
            },
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release(self, server_id: int, owner: str, values: dict[str, Any]) -> None:
        await execute(
            self.session,
            update(Server)
            .where(Server.id == server_id, Server.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None, **values),
        )

    async def needing_usage(self, before: datetime, limit: int) -> list[Row[Any]]:
        """Servers whose machine runs or stopped, with no usage sample since `before`: their
        status and host, then the `SPEC_COLUMNS`."""
        query = (
            select(Server.status, Server.host_id, *SPEC_COLUMNS)
            .select_from(_WITH_SPEC.outerjoin(ServerUsage, ServerUsage.server_id == Server.id))
            .where(
                Server.status.in_(
                    [
                        ServerStatus.ACTIVE.value,
                        ServerStatus.STOPPED.value,
                        ServerStatus.SUSPENDED.value,
                    ]
                ),
                or_(ServerUsage.sampled_at.is_(None), ServerUsage.sampled_at < before),
            )
            .order_by(ServerUsage.sampled_at.is_not(None), ServerUsage.sampled_at, Server.id)
            .limit(limit)
        )
        return list((await execute(self.session, query)).all())

    async def is_visible(self, account_id: int, server_id: int) -> bool:
        """Whether the account owns this server and it is not deleted (no row is loaded)."""
        if not storable_id(server_id):
            return False
        result = await self.session.execute(
            select(Server.id).where(Server.id == server_id, _visible(account_id))
        )
        return result.first() is not None

    async def without_live_server(
        self, server_ids: Sequence[int], host_id: int | None
    ) -> list[int]:
        """The ids among `server_ids` with no server, a server deleted or in error, or one
        placed on another host than `host_id` (None: the default driver)."""
        candidates = [sid for sid in server_ids if storable_id(sid)]
        if not candidates:
            return list(server_ids)
        result = await self.session.execute(
            select(Server.id).where(
                Server.id.in_(candidates),
                Server.status.not_in([ServerStatus.DELETED.value, ServerStatus.ERROR.value]),
                Server.host_id.is_(None) if host_id is None else Server.host_id == host_id,
            )
        )
        live = set(result.scalars())
        return [sid for sid in server_ids if sid not in live]

    async def host_of(self, server_id: int) -> int | None:
        result = await self.session.execute(select(Server.host_id).where(Server.id == server_id))
        return result.scalar_one_or_none()

    async def location(self, location_id: int) -> Location:
        location = await self.session.get(Location, location_id)
        assert location is not None
        return location


class ActionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, action: Action) -> Action:
        """Insert a new action (not attached to the session; see `insert_row`)."""
        return await insert_row(self.session, action)

    async def get_owned(self, account_id: int, action_id: int) -> Action | None:
        """An action of the account's, whatever became of its server (a delete's action
        stays readable after the server is gone)."""
        if not storable_id(action_id):
            return None
        result = await self.session.execute(
            select(Action).where(Action.id == action_id, Action.account_id == account_id)
        )
        return result.scalar_one_or_none()

    async def page_for_server(
        self, server_id: int, offset: int, limit: int
    ) -> tuple[int, list[Action]]:
        """A server's actions, oldest first. The caller checks that the server is visible."""
        total = await self.session.scalar(
            select(func.count()).select_from(Action).where(Action.server_id == server_id)
        )
        result = await self.session.execute(
            select(Action)
            .where(Action.server_id == server_id)
            .order_by(Action.id)
            .offset(offset)
            .limit(limit)
        )
        return int(total or 0), list(result.scalars())

    async def running_for(self, server_id: int) -> Action | None:
        result = await self.session.execute(
            select(Action)
            .where(Action.server_id == server_id, Action.status == ActionStatus.RUNNING.value)
            .order_by(Action.id.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def finish_running(
        self,
        server_id: int,
        status: ActionStatus,
        now: datetime,
        *,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> Sequence[Row[Any]]:
        """Finish the server's running actions; returns them as they now are."""
        result = await execute(
            self.session,
            _FINISH_RUNNING,
            {
                "of_server": server_id,
                "new_status": status.value,
                "new_finished_at": now,
                "new_error_code": error_code,
                "new_error_message": error_message,
            },
        )
        return result.all()
