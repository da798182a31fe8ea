"""Long-polls: answer a read as soon as what the client waits for has happened."""

from __future__ import annotations

from datetime import datetime

from vps.db.engine import Database
from vps.db.models import Action
from vps.db.reader import RawReader
from vps.db.views import ServerView
from vps.domain.states import ActionStatus, ServerStatus, wait_is_over
from vps.services import actions, auth, servers
from vps.services.principal import Principal
from vps.services.streams import EventHub, wait_for


async def server_when(
    hub: EventHub,
    reader: RawReader,
    token: str,
    server_id: int,
    now: datetime,
    *,
    wait_for_status: ServerStatus | None,
    seconds: float,
) -> ServerView:
    """The server once it reaches `wait_for_status` or settles elsewhere (without it: once
    its status changes), or as it is after `seconds`. NotFound if it is (or gets) deleted."""
    principal = await auth.authenticate(reader, token, now)
    first = await servers.view_server(reader, token, server_id, now)
    if wait_for_status is not None and wait_is_over(first.status, wait_for_status, first.status):
        return first

    async def check() -> tuple[bool, ServerView]:
        view = await servers.view_server(reader, token, server_id, now)
        return wait_is_over(view.status, wait_for_status, first.status), view

    return await wait_for(hub, principal.account_id, server_id, check, seconds)


async def action_when_finished(
    hub: EventHub, database: Database, principal: Principal, action_id: int, seconds: float
) -> Action:
    """The action once it is no longer running, or as it is after `seconds`."""

    async def read() -> Action:
        async with database.read() as session:
            return await actions.get_action(session, principal, action_id)

    first = await read()
    if first.status != ActionStatus.RUNNING.value:
        return first

    async def check() -> tuple[bool, Action]:
        action = await read()
        return action.status != ActionStatus.RUNNING.value, action

    return await wait_for(hub, principal.account_id, first.server_id, check, seconds)
