"""Reading actions: what was asked of a server, and how it went."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import Action
from vps.db.repositories.servers import ActionRepository, ServerRepository
from vps.domain.errors import NotFound
from vps.services.principal import Principal


@dataclass(frozen=True)
class ActionPage:
    total: int
    actions: list[Action]


async def list_server_actions(
    session: AsyncSession, principal: Principal, server_id: int, offset: int, limit: int
) -> ActionPage:
    """A visible server's actions, oldest first. A deleted server answers 404 here, as it does
    everywhere under /servers/; its actions stay readable one by one (`get_action`)."""
    if not await ServerRepository(session).is_visible(principal.account_id, server_id):
        # The same message as the server endpoints: another account's id looks unknown.
        raise NotFound(f"No server with id {server_id}.")
    total, actions = await ActionRepository(session).page_for_server(server_id, offset, limit)
    return ActionPage(total, actions)


async def get_action(session: AsyncSession, principal: Principal, action_id: int) -> Action:
    action = await ActionRepository(session).get_owned(principal.account_id, action_id)
    if action is None:
        raise NotFound(f"No action with id {action_id}.")
    return action
