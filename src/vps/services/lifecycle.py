"""Worker use cases: claim servers that need work, and record what the driver did.

Every write after the claim is fenced: it names the lease owner and the status the worker
expects, so a worker that lost its lease, or whose server was deleted or changed meanwhile,
writes nothing (level-based: the next claim looks at the server afresh).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.reader import RawReader
from vps.db.repositories.accounts import LedgerRepository
from vps.db.repositories.addresses import AddressRepository, PoolExhausted
from vps.db.repositories.catalog import CatalogRepository, Pool
from vps.db.repositories.servers import ActionRepository, ServerRepository, job_row
from vps.db.repositories.usage import UsageRepository
from vps.domain.hosts import Demand
from vps.domain.states import (
    RUNNING_STATUSES,
    TRANSITIONAL_STATUSES,
    WORK,
    ActionStatus,
    ServerStatus,
)
from vps.drivers.base import MachineSpec, ResourceUsage
from vps.services import billing, events, hosts


@dataclass(frozen=True)
class Job:
    server_id: int
    account_id: int
    status: ServerStatus
    attempts: int
    spec: MachineSpec
    created_at: datetime
    location_id: int
    # The hypervisor host it is placed on; None: the worker's default driver.
    host_id: int | None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: float
    max_seconds: float

    def delay(self, attempt: int) -> timedelta:
        return timedelta(
            seconds=min(self.base_seconds * 2 ** max(attempt - 1, 0), self.max_seconds)
        )


class LeaseLost(Exception):
    """This worker no longer holds the server (or it changed status): stop working on it."""


class AddressesUnavailable(Exception):
    """The location has no free address left: provisioning cannot succeed."""


def machine_spec(columns: Sequence[Any]) -> MachineSpec:
    """The spec from the repository's `SPEC_COLUMNS`, in their order."""
    return MachineSpec(*columns)


async def claim(
    session: AsyncSession, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[int]:
    repository = ServerRepository(session)
    candidates = await repository.claimable(
        [status.value for status in TRANSITIONAL_STATUSES], now, limit
    )
    return await repository.claim(candidates, owner, now, now + lease)


async def renew(session: AsyncSession, server_id: int, owner: str, until: datetime) -> bool:
    return await ServerRepository(session).renew(server_id, owner, until)


async def release(session: AsyncSession, server_id: int, owner: str) -> None:
    await ServerRepository(session).release(server_id, owner, {})


async def load_job(reader: RawReader, server_id: int, owner: str) -> Job | None:
    """The work this owner holds the lease of, or None (not ours, or nothing to do)."""
    row = await job_row(reader, server_id)
    if row is None:
        return None
    account_id, status_value, attempts, created_at, lease_owner, location_id, host_id = tuple(row)[
        :7
    ]
    if lease_owner != owner:
        return None
    status = ServerStatus(status_value)
    if status not in TRANSITIONAL_STATUSES:
        return None
    return Job(
        server_id,
        account_id,
        status,
        attempts,
        machine_spec(row[7:]),
        created_at,
        location_id,
        host_id,
    )


async def ensure_addresses(session: AsyncSession, job: Job, owner: str, now: datetime) -> Job:
    """Allocate the server's IPv4 and IPv6 addresses (once) before its machine is built.

    Fenced like every other write: a worker that lost its lease, or whose server was deleted
    meanwhile, raises LeaseLost, and the caller's transaction rolls the allocations back, so
    no address is held by a gone server.
    """
    addresses = AddressRepository(session)
    held = await addresses.held_by(job.server_id)
    pools = await CatalogRepository(session).pools(job.location_id)
    for pool in pools:
        if pool.family not in held:
            try:
                held[pool.family] = await addresses.allocate(pool, job.server_id, now)
            except PoolExhausted as error:
                raise AddressesUnavailable(str(error)) from error
    values = {"ipv4_address": held.get(4), "ipv6_address": held.get(6)}
    if not await ServerRepository(session).fenced_update(
        job.server_id, owner, job.status.value, values
    ):
        raise LeaseLost(job.server_id)
    spec = replace(
        job.spec,
        ipv4_address=held.get(4),
        ipv6_address=held.get(6),
        ipv4_network=_network_of(held.get(4), pools),
        ipv6_network=_network_of(held.get(6), pools),
    )
    return replace(job, spec=spec)


def _network_of(address: str | None, pools: Sequence[Pool]) -> str | None:
    """The network of the pool `address` came from (the guest's prefix and gateway)."""
    if address is None:
        return None
    ip = ipaddress.ip_address(address)
    return next((p.cidr for p in pools if ip in ipaddress.ip_network(p.cidr)), None)


async def complete(
    session: AsyncSession,
    job: Job,
    owner: str,
    now: datetime,
    usage: ResourceUsage | None,
) -> bool:
    """Record that the driver finished the job's work. False when the write was fenced off."""
    target, _ = WORK[job.status]
    values: dict[str, object] = {
        "status": target.value,
        "lease_owner": None,
        "lease_expires_at": None,
        "attempts": 0,
        "retry_at": None,
        "error_code": None,
        "error_message": None,
    }
    if target is not ServerStatus.DELETED:
        values["updated_at"] = now
    servers = ServerRepository(session)
    if not await servers.fenced_update(job.server_id, owner, job.status.value, values):
        return False
    if target is ServerStatus.DELETED:
        await AddressRepository(session).release_all(job.server_id)
        if job.host_id is not None:
            # Once: the fenced write above succeeds for one worker only.
            spec = job.spec
            await hosts.release(
                session, job.host_id, Demand(spec.vcpus, spec.memory_mb, spec.disk_gb)
            )
    elif usage is not None:
        await record_usage(session, job.server_id, usage, now)
    finished = await ActionRepository(session).finish_running(
        job.server_id, ActionStatus.SUCCEEDED, now
    )
    _announce(session, job, target, finished, now)
    return True


def _announce(
    session: AsyncSession,
    job: Job,
    status: ServerStatus,
    finished: Sequence[Any],
    now: datetime,
    error: tuple[str, str] | None = None,
) -> None:
    events.actions_changed(session, finished, now)
    events.server_status(
        session,
        account_id=job.account_id,
        server_id=job.server_id,
        status=status.value,
        previous=job.status.value,
        now=now,
        action_id=finished[-1].id if finished else None,
        error=error,
    )


async def fail(
    session: AsyncSession, job: Job, owner: str, now: datetime, code: str, message: str
) -> bool:
    """The work cannot succeed: move the server to its failure status, refund a failed build."""
    _, fallback = WORK[job.status]
    values: dict[str, object] = {
        "status": fallback.value,
        "lease_owner": None,
        "lease_expires_at": None,
        "attempts": 0,
        "retry_at": None,
        "updated_at": now,
    }
    if job.status is ServerStatus.PROVISIONING:
        values.update(error_code=code, error_message=message, ipv4_address=None, ipv6_address=None)
    if not await ServerRepository(session).fenced_update(
        job.server_id, owner, job.status.value, values
    ):
        return False
    if job.status is ServerStatus.PROVISIONING:
        await AddressRepository(session).release_all(job.server_id)
        charged = await _create_charge(session, job.server_id)
        await billing.refund_once(
            session,
            job.account_id,
            charged,
            now,
            server_id=job.server_id,
            reference=billing.create_refund_reference(job.server_id),
            description=f"Refund: server {job.server_id} could not be provisioned",
        )
    finished = await ActionRepository(session).finish_running(
        job.server_id, ActionStatus.FAILED, now, error_code=code, error_message=message
    )
    _announce(session, job, fallback, finished, now, (code, message))
    return True


async def _create_charge(session: AsyncSession, server_id: int) -> int:
    entry = await LedgerRepository(session).by_reference(billing.create_charge_reference(server_id))
    return -entry.amount_cents if entry is not None else 0


async def retry_later(
    session: AsyncSession,
    job: Job,
    owner: str,
    now: datetime,
    policy: RetryPolicy,
    code: str,
    message: str,
) -> bool:
    """Release the server for another attempt after a backoff; False when attempts ran out
    (deletes never run out: a machine must not be left behind)."""
    attempts = job.attempts + 1
    if attempts >= policy.max_attempts and job.status is not ServerStatus.DELETING:
        return False
    await ServerRepository(session).release(
        job.server_id,
        owner,
        {
            "attempts": attempts,
            "retry_at": now + policy.delay(attempts),
            "error_code": code,
            "error_message": message,
        },
    )
    return True


async def usage_without_lock_waits(session: AsyncSession) -> None:
    await UsageRepository(session).give_up_on_locks()


async def record_usage(
    session: AsyncSession, server_id: int, usage: ResourceUsage, now: datetime
) -> None:
    await UsageRepository(session).upsert(
        server_id,
        cpu_percent=usage.cpu_percent,
        memory_used_mb=usage.memory_used_mb,
        disk_used_gb=usage.disk_used_gb,
        bandwidth_used_gb=usage.bandwidth_used_gb,
        sampled_at=now,
    )


@dataclass(frozen=True)
class UsageDue:
    spec: MachineSpec
    running: bool
    host_id: int | None


async def servers_needing_usage(
    session: AsyncSession, now: datetime, every: timedelta, limit: int
) -> list[UsageDue]:
    """Servers whose usage sample is older than `every`: spec, whether it runs, its host."""
    rows: Sequence[Sequence[Any]] = await ServerRepository(session).needing_usage(
        now - every, limit
    )
    return [
        UsageDue(machine_spec(row[2:]), ServerStatus(row[0]) in RUNNING_STATUSES, row[1])
        for row in rows
    ]


async def orphan_machines(
    session: AsyncSession, host_id: int | None, machine_ids: list[int]
) -> list[int]:
    """Of these machines of a host (None: the default driver), the ones whose server is
    gone, failed, unknown, or placed elsewhere."""
    return await ServerRepository(session).without_live_server(machine_ids, host_id)


async def host_of(session: AsyncSession, server_id: int) -> int | None:
    return await ServerRepository(session).host_of(server_id)
