"""Actions: each create, start, stop, reboot and delete of a server, and how it went."""

from __future__ import annotations

from fastapi import APIRouter

from vps.api.deps import CallerDep, ReadContext, StateDep
from vps.api.presenters import action_out
from vps.api.routes.common import (
    ActionId,
    PagingDep,
    ServerId,
    WaitParam,
    errors,
    existing_id,
)
from vps.api.schemas import ActionOut, Page
from vps.services import actions, waiting

router = APIRouter(prefix="/api/v1", tags=["actions"])


@router.get(
    "/servers/{server_id}/actions/",
    response_model=Page[ActionOut],
    responses=errors(400, 401, 404),
)
async def list_server_actions(
    server_id: ServerId, ctx: ReadContext, paging: PagingDep
) -> Page[ActionOut]:
    """The server's actions, oldest first. `404` once the server is deleted, as for the server
    itself; its actions can still be read one by one at `/actions/{action_id}/`."""
    result = await actions.list_server_actions(
        ctx.session, ctx.principal, existing_id(server_id, "server"), paging.offset, paging.limit
    )
    following, preceding = paging.links(result.total)
    return Page[ActionOut](
        count=result.total,
        next=following,
        previous=preceding,
        results=[action_out(a) for a in result.actions],
    )


@router.get("/actions/{action_id}/", response_model=ActionOut, responses=errors(400, 401, 404))
async def get_action(
    action_id: ActionId, caller: CallerDep, state: StateDep, wait: WaitParam = None
) -> ActionOut:
    """One action, also after its server was deleted: a delete's progress can be followed.
    With `wait`, answers as soon as the action is no longer `running` (or when the wait
    ends), instead of being polled."""
    action_id = existing_id(action_id, "action")
    if wait is None:
        async with state.database.read() as session:
            return action_out(await actions.get_action(session, caller.principal, action_id))
    action = await waiting.action_when_finished(
        state.events, state.database, caller.principal, action_id, wait
    )
    return action_out(action)
