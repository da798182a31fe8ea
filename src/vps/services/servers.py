"""Server use cases for an account: create, read, list, update, delete, power actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vps.db import views
from vps.db.models import Action, OperatingSystem, Plan, Server
from vps.db.reader import RawReader
from vps.db.repositories.catalog import CatalogRepository
from vps.db.repositories.servers import ActionRepository, ServerRepository
from vps.db.repositories.ssh_keys import SshKeyRepository
from vps.db.types import storable_text
from vps.db.views import ServerView
from vps.domain.billing import PAYMENT_REQUIRED, BillingTerms, prorated_refund, unused_hours
from vps.domain.errors import InvalidState, NotFound, PreconditionFailed, Problems
from vps.domain.etags import Precondition, etag
from vps.domain.hosts import Demand
from vps.domain.states import (
    VISIBLE_STATUSES,
    ActionKind,
    ActionStatus,
    PowerAction,
    ServerStatus,
    plan_power_action,
)
from vps.domain.validation import hostname_problem, name_problem
from vps.services import auth, billing, events, hosts
from vps.services.principal import Principal

PROVISIONING_MESSAGE = "Server is being provisioned. This may take 2-5 minutes."
# Statuses a delete refunds nothing in: `error` was refunded in full when the build failed,
# and a `suspended` server's current period was never paid.
_NOT_REFUNDED_ON_DELETE = frozenset({ServerStatus.ERROR, ServerStatus.SUSPENDED})
_VISIBLE_STATUS_VALUES = frozenset(s.value for s in VISIBLE_STATUSES)
_LOCATION_CODE_MAX = 63
# A delete that keeps losing its compare-and-set to other writers gives up after this many.
_DELETE_ATTEMPTS = 5


@dataclass(frozen=True)
class ServerDraft:
    name: str
    plan_id: int
    os_id: int
    location: str
    hostname: str | None = None
    ssh_key_id: int | None = None
    backups_enabled: bool = False


@dataclass(frozen=True)
class ServerChanges:
    """Fields to change; None means "leave as it is"."""

    name: str | None = None
    hostname: str | None = None
    backups_enabled: bool | None = None


@dataclass(frozen=True)
class ActionResult:
    server: ServerView
    action: Action
    message: str


@dataclass(frozen=True)
class Created:
    server: ServerView
    action: Action
    message: str


@dataclass(frozen=True)
class ServerPage:
    total: int
    servers: list[ServerView]


def _check_names(problems: Problems, name: str | None, hostname: str | None) -> None:
    if name is not None and (why := name_problem(name)):
        problems.add("name", f"Server name {why}.")
    if hostname is not None and (why := hostname_problem(hostname)):
        problems.add("hostname", f"Hostname {why}.")


def _not_found(server_id: int) -> NotFound:
    return NotFound(f"No server with id {server_id}.")


async def _new_action(
    session: AsyncSession, account_id: int, server_id: int, kind: ActionKind, now: datetime
) -> Action:
    action = await ActionRepository(session).add(
        Action(
            account_id=account_id,
            server_id=server_id,
            kind=kind.value,
            status=ActionStatus.RUNNING.value,
            started_at=now,
        )
    )
    events.actions_changed(session, [action], now)
    return action


async def create_server(
    session: AsyncSession,
    principal: Principal,
    draft: ServerDraft,
    now: datetime,
    terms: BillingTerms = BillingTerms(),
) -> Created:
    """Create a server and charge its first billing period, atomically; the worker builds it.

    The period runs from now for `terms.period`; the worker charges the next one when it ends.
    """
    principal.require_write()
    problems = Problems()
    _check_names(problems, draft.name, draft.hostname)
    catalog = CatalogRepository(session)
    offer = await catalog.offer(draft.plan_id, draft.os_id, draft.location)
    if offer is None:
        await _explain_missing_offer(catalog, draft, problems)
    public_key = None
    if draft.ssh_key_id is not None:
        key = await SshKeyRepository(session).get_owned(principal.account_id, draft.ssh_key_id)
        if key is None:
            problems.add("ssh_key_id", f"No SSH key with id {draft.ssh_key_id}.", "unknown")
        else:
            public_key = key.public_key
    problems.raise_if_any()
    assert offer is not None

    host_id = await hosts.place(
        session,
        offer.location_id,
        offer.location_code,
        offer.plan_name,
        Demand(offer.vcpus, offer.memory_mb, offer.storage_gb),
    )
    server = await ServerRepository(session).add(
        Server(
            account_id=principal.account_id,
            name=draft.name,
            hostname=draft.hostname,
            status=ServerStatus.PROVISIONING.value,
            plan_id=offer.plan_id,
            os_id=offer.os_id,
            location_id=offer.location_id,
            host_id=host_id,
            ssh_key_id=draft.ssh_key_id,
            ssh_public_key=public_key,
            backups_enabled=draft.backups_enabled,
            created_at=now,
            updated_at=now,
            attempts=0,
            version=1,
            paid_from=now,
            paid_until=now + terms.period,
            billing_period=1,
            power_off_pending=False,
        )
    )
    price = billing.monthly_price(offer, draft.backups_enabled)
    # Raises InsufficientCredits; the caller's transaction then rolls the server back too.
    await billing.charge(
        session,
        principal.account_id,
        price,
        now,
        server_id=server.id,
        reference=billing.create_charge_reference(server.id),
        description=f"First month of server {server.id} ({offer.plan_name})",
    )
    action = await _new_action(session, server.account_id, server.id, ActionKind.CREATE, now)
    events.server_status(
        session,
        account_id=server.account_id,
        server_id=server.id,
        status=server.status,
        previous=None,
        now=now,
        action_id=action.id,
    )
    await ServerRepository(session).announce_work()
    view = ServerView(
        server.id,
        server.name,
        server.hostname,
        server.status,
        None,
        None,
        offer.location_code,
        offer.plan_id,
        offer.plan_name,
        offer.vcpus,
        offer.memory_mb,
        offer.storage_gb,
        offer.bandwidth_gb,
        offer.os_id,
        offer.os_name,
        server.backups_enabled,
        None,
        None,
        None,
        None,
        None,
        None,
        now,
        now,
        server.version,
    )
    return Created(view, action, PROVISIONING_MESSAGE)


async def _explain_missing_offer(
    catalog: CatalogRepository, draft: ServerDraft, problems: Problems
) -> None:
    """Say which of the plan, the system and the location is unknown or unavailable."""
    plan = await catalog.get(Plan, draft.plan_id)
    if plan is None or not plan.available:
        problems.add("plan_id", f"No available plan with id {draft.plan_id}.", "unknown")
    system = await catalog.get(OperatingSystem, draft.os_id)
    if system is None or not system.available:
        problems.add("os_id", f"No available operating system with id {draft.os_id}.", "unknown")
    location = await catalog.location_by_code(draft.location)
    if location is None or not location.available:
        problems.add("location", f"No available location {draft.location!r}.", "unknown")


async def view_server(reader: RawReader, token: str, server_id: int, now: datetime) -> ServerView:
    """The API's view of one of the token's account's servers: authenticated and read in
    one query (read without the ORM). Unauthenticated comes before NotFound."""
    found = await views.token_with_server(reader, auth.token_hash(token), server_id)
    auth.principal_of(found[0] if found else None, now)
    if found is None or found[1] is None:
        raise _not_found(server_id)
    return found[1]


async def require_visible(session: AsyncSession, principal: Principal, server_id: int) -> None:
    """NotFound unless the server is the caller's and not deleted."""
    if not await ServerRepository(session).is_visible(principal.account_id, server_id):
        raise _not_found(server_id)


async def list_servers(
    reader: RawReader,
    principal: Principal,
    *,
    status: str | None,
    location: str | None,
    offset: int,
    limit: int,
) -> ServerPage:
    """One page of the account's servers, by id, optionally filtered by exact status and
    location code; an unknown status or location is a 400, not an empty page."""
    problems = Problems()
    if status is not None and status not in _VISIBLE_STATUS_VALUES:
        allowed = ", ".join(sorted(_VISIBLE_STATUS_VALUES))
        problems.add("status", f"Unknown status {status!r}; one of: {allowed}.", "unknown")
    if location is not None and (
        problems or not storable_text(location, _LOCATION_CODE_MAX)
    ):  # checked now only when the query will not run (or cannot)
        await _check_location(reader, problems, location)
    problems.raise_if_any()
    total, page = await views.server_page(
        reader,
        principal.account_id,
        status=status,
        location=location,
        offset=offset,
        limit=limit,
    )
    # An empty result may mean the location does not exist: that is a 400.
    if total == 0 and location is not None:
        await _check_location(reader, problems, location)
        problems.raise_if_any()
    return ServerPage(total, page)


async def _check_location(reader: RawReader, problems: Problems, location: str) -> None:
    if not await views.location_exists(reader, location):
        problems.add("location", f"Unknown location {location!r}.", "unknown")


async def update_server(
    session: AsyncSession,
    principal: Principal,
    server_id: int,
    changes: ServerChanges,
    now: datetime,
    *,
    precondition: Precondition | None = None,
) -> ServerView:
    """Change the fields given; with a precondition, only if the server is still at one of
    its versions (the check and the write are one compare-and-set on the version)."""
    principal.require_write()
    repository = ServerRepository(session)
    view = await views.server_in(session, principal.account_id, server_id)
    if view is None:
        raise _not_found(server_id)
    # An invalid request is refused as such whatever the version it names: 404, 400, 412.
    problems = Problems()
    _check_names(problems, changes.name, changes.hostname)
    problems.raise_if_any()
    _check_precondition(precondition, view.version)
    values: dict[str, object] = {
        key: value
        for key, value in (
            ("name", changes.name),
            ("hostname", changes.hostname),
            ("backups_enabled", changes.backups_enabled),
        )
        if value is not None
    }
    if not values:
        return view
    values["updated_at"] = now
    if precondition is None:
        written = await repository.update_visible(principal.account_id, server_id, values)
    else:
        written = await repository.update_visible_at_version(
            principal.account_id, server_id, view.version, values
        )
    if not written:
        # Gone, or (only the version-checked write can miss otherwise) written by someone
        # else since it was read.
        current = await views.server_in(session, principal.account_id, server_id)
        if current is None:
            raise _not_found(server_id)
        raise _changed_since_read(current.version)
    changed = {key: value for key, value in values.items() if key != "updated_at"}
    events.server_updated(
        session, account_id=principal.account_id, server_id=server_id, changes=changed, now=now
    )
    return await _view_after_write(session, principal, server_id)


def _changed_since_read(version: int) -> PreconditionFailed:
    return PreconditionFailed(
        f"The server changed since that ETag was read: it is now at {etag(version)}. "
        "Read it again and retry.",
        etag(version),
    )


def _check_precondition(precondition: Precondition | None, version: int) -> None:
    if precondition is not None and not precondition.allows(version):
        raise _changed_since_read(version)


async def _view_after_write(
    session: AsyncSession, principal: Principal, server_id: int
) -> ServerView:
    view = await views.server_in(session, principal.account_id, server_id)
    if view is None:  # the conditional write just found it: only a bug gets here
        raise _not_found(server_id)
    return view


async def delete_server(
    session: AsyncSession,
    principal: Principal,
    server_id: int,
    now: datetime,
    *,
    precondition: Precondition | None = None,
) -> Action:
    """Hide the server at once and leave the machine's destruction to a worker, refunding the
    whole unused hours of its current billing period in the same transaction.

    Accepted in any visible status: a delete that lands during provisioning makes the
    provisioning worker's final write fail (it expects `provisioning`), and the next worker
    destroys whatever machine was built. The delete is a compare-and-set on the version it
    read, so the refund is computed from the period and status that were current when the
    server went: a renewal, a failed build's refund or a suspension that commits in between
    makes it read the server again.
    """
    principal.require_write()
    server = await _mark_deleting(
        ServerRepository(session), principal, server_id, now, precondition
    )
    await _refund_unused_hours(session, server, now)
    interrupted = await ActionRepository(session).finish_running(
        server_id,
        ActionStatus.FAILED,
        now,
        error_code="server_deleted",
        error_message="The server was deleted before this action finished.",
    )
    events.actions_changed(session, interrupted, now)
    await ServerRepository(session).announce_work()
    action = await _new_action(session, server.account_id, server.id, ActionKind.DELETE, now)
    events.server_status(
        session,
        account_id=server.account_id,
        server_id=server.id,
        status=ServerStatus.DELETING.value,
        previous=server.status,
        now=now,
        action_id=action.id,
    )
    return action


async def _mark_deleting(
    repository: ServerRepository,
    principal: Principal,
    server_id: int,
    now: datetime,
    precondition: Precondition | None,
) -> Server:
    """Move the server to `deleting`; returns it as it was just before."""
    status = ""
    for _ in range(_DELETE_ATTEMPTS):
        server = await repository.get_visible(principal.account_id, server_id)
        if server is None:
            raise _not_found(server_id)
        _check_precondition(precondition, server.version)
        if await repository.update_visible_at_version(
            principal.account_id,
            server_id,
            server.version,
            {
                "status": ServerStatus.DELETING.value,
                "deleted_at": now,
                "updated_at": now,
                "attempts": 0,
                "retry_at": None,
            },
        ):
            return server
        status = server.status
    raise InvalidState("The server changed state; try again.", status)


async def _refund_unused_hours(session: AsyncSession, server: Server, now: datetime) -> None:
    """Refund, once, the whole unused hours of the period a deleted server had paid for."""
    if ServerStatus(server.status) in _NOT_REFUNDED_ON_DELETE:
        return
    charged = await billing.charged_for_period(session, server.id, server.billing_period)
    cents = prorated_refund(charged, server.paid_from, server.paid_until, now)
    hours = unused_hours(server.paid_from, server.paid_until, now)
    await billing.refund_once(
        session,
        server.account_id,
        cents,
        now,
        server_id=server.id,
        reference=billing.delete_refund_reference(server.id),
        description=f"Refund: {hours} unused hours of server {server.id}, deleted",
    )


def _judge(kind: ActionKind, server: ServerView) -> PowerAction:
    """The transition the action asks of the server as it is (InvalidState when none)."""
    return plan_power_action(
        kind, ServerStatus(server.status), unpaid=server.error_code == PAYMENT_REQUIRED
    )


async def power_action(
    session: AsyncSession,
    principal: Principal,
    server_id: int,
    kind: ActionKind,
    now: datetime,
) -> ActionResult:
    principal.require_write()
    repository = ServerRepository(session)
    server = await views.server_in(session, principal.account_id, server_id)
    if server is None:
        raise _not_found(server_id)
    transition = _judge(kind, server)
    won = await repository.update_visible(
        principal.account_id,
        server_id,
        {"status": transition.target.value, "updated_at": now, "attempts": 0, "retry_at": None},
        expected_status=transition.allowed_from,
    )
    if not won:
        # Someone else changed the status between our read and our write: judge again.
        current = await views.server_in(session, principal.account_id, server_id)
        if current is None:
            raise _not_found(server_id)
        _judge(kind, current)
        raise InvalidState("The server changed state; try again.", current.status)
    action = await _new_action(session, principal.account_id, server_id, kind, now)
    events.server_status(
        session,
        account_id=principal.account_id,
        server_id=server_id,
        status=transition.target.value,
        previous=server.status,
        now=now,
        action_id=action.id,
    )
    await repository.announce_work()
    refreshed = await _view_after_write(session, principal, server_id)
    return ActionResult(refreshed, action, transition.message)
