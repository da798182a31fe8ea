"""Controls of the emulator, for client developers' test suites: the simulator's timings,
injected failures, and funded accounts with balances set at will.

Served at `/_emulator/` only when `VPS_EMULATOR_CONTROLS` is on (and used by `vps.testing`).
They act on the simulator of this process's embedded worker; balances still move through
the ledger, so the balance stays the sum of the ledger.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.repositories.accounts import AccountRepository
from vps.db.repositories.catalog import CatalogRepository
from vps.db.repositories.hosts import HostRepository
from vps.domain.billing import BillingTerms
from vps.domain.errors import InvalidParameters, NotFound
from vps.domain.hosts import Capacity, HostStatus
from vps.drivers.base import HypervisorDriver
from vps.drivers.simulator import FAULTABLE_OPERATIONS, InjectedFault, SimulatorDriver
from vps.services import accounts, billing, hosts

EMULATOR_ADJUSTMENT = "Balance set through the emulator controls"
# A location is made full by giving it one host that takes nothing (drained): creates there
# are then refused with `503 location_full`, as when a real location runs out of room.
_FULL_HOST_PREFIX = "emulator-full-"


@dataclass(frozen=True)
class Timings:
    provision_seconds: float
    action_seconds: float
    delete_seconds: float


@dataclass(frozen=True)
class FundedAccount:
    name: str
    token: str
    balance_cents: int


class EmulatorControls:
    """What a test may change in a running emulator."""

    def __init__(self, driver: HypervisorDriver | None) -> None:
        # Only the simulator can be steered; with another driver, or no embedded worker,
        # the timing and fault controls answer that they are unavailable.
        self._simulator = driver if isinstance(driver, SimulatorDriver) else None

    def _require_simulator(self) -> SimulatorDriver:
        if self._simulator is None:
            raise NotFound(
                "No simulated hypervisor in this process: the emulator controls need "
                "`vps serve` with its embedded worker and the simulator driver."
            )
        return self._simulator

    def timings(self) -> Timings:
        current = self._require_simulator().timings
        return Timings(current.provision_seconds, current.action_seconds, current.delete_seconds)

    def set_timings(
        self,
        *,
        provision_seconds: float | None = None,
        action_seconds: float | None = None,
        delete_seconds: float | None = None,
    ) -> Timings:
        simulator = self._require_simulator()
        changes = {
            "provision_seconds": provision_seconds,
            "action_seconds": action_seconds,
            "delete_seconds": delete_seconds,
        }
        for field, seconds in changes.items():
            if seconds is not None and not 0 <= seconds <= 3600:
                raise InvalidParameters.single(field, "Must be between 0 and 3600 seconds.")
        simulator.timings = replace(
            simulator.timings, **{k: v for k, v in changes.items() if v is not None}
        )
        return self.timings()

    def fail_next(
        self, operation: str, *, count: int, retriable: bool, message: str
    ) -> InjectedFault:
        if operation not in FAULTABLE_OPERATIONS:
            raise InvalidParameters.single(
                "operation", f"Must be one of: {', '.join(FAULTABLE_OPERATIONS)}."
            )
        return self._require_simulator().fail_next(
            operation, count=count, retriable=retriable, message=message
        )

    def faults(self) -> list[InjectedFault]:
        return list(self._require_simulator().faults)

    def clear_faults(self) -> None:
        self._require_simulator().faults.clear()


async def create_funded_account(
    session: AsyncSession, name: str | None, credits_cents: int, now: datetime
) -> FundedAccount:
    """A new account with `credits_cents` and a read-write token (shown only here)."""
    name = name or f"test-{secrets.token_hex(6)}"
    account = await accounts.create_account(session, name, credits_cents, now)
    token, _ = await accounts.create_token(
        session, name, now, read_only=False, expires_in=None, label="emulator"
    )
    return FundedAccount(account.name, token, account.balance_cents)


async def set_balance(
    session: AsyncSession, name: str, cents: int, now: datetime, terms: BillingTerms
) -> int:
    """Bring the account's balance to `cents` with one ledger entry: a charge, or a top-up
    (which, as any top-up, resumes the servers suspended for lack of credits it pays for)."""
    account = await accounts.account_by_name(session, name)
    difference = cents - await AccountRepository(session).balance(account.id)
    if difference > 0:
        added = await accounts.add_credits(session, name, difference, now, terms)
        return added.balance_cents
    if difference < 0:
        return await billing.charge(
            session,
            account.id,
            -difference,
            now,
            server_id=None,
            reference=f"emulator:{secrets.token_hex(8)}",
            description=EMULATOR_ADJUSTMENT,
        )
    return cents


async def set_location_full(session: AsyncSession, code: str, full: bool, now: datetime) -> None:
    """Make creates in a location answer `503 location_full` (or stop doing so)."""
    location = await CatalogRepository(session).location_by_code(code)
    if location is None:
        raise NotFound(f"No location {code!r}.")
    name = f"{_FULL_HOST_PREFIX}{location.id}"
    repository = HostRepository(session)
    existing = await repository.by_name(name)
    if full and existing is None:
        host = await hosts.add_host(
            session,
            name=name,
            location=code,
            driver="simulator",
            uri=None,
            capacity=Capacity(vcpus=1, memory_mb=1, disk_gb=1),
            now=now,
        )
        await repository.set_status(host.id, HostStatus.DRAINING)
    elif not full and existing is not None:
        await hosts.remove_host(session, name)


async def clear_full_locations(session: AsyncSession) -> None:
    for summary in await hosts.list_hosts(session):
        if summary.host.name.startswith(_FULL_HOST_PREFIX):
            await hosts.remove_host(session, summary.host.name)
