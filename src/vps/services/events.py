"""What the event streams say: a server changed status or was edited, an action started or
finished.

Each use case that changes a server's status or an action records the event in its own
transaction, so an event exists exactly when its change committed (the ids are given at
commit: see `vps.db.repositories.events`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.repositories import events as stored
from vps.db.repositories.events import PendingEvent
from vps.domain.states import action_progress

# Events deleted per transaction by the worker's retention sweep.
PRUNE_BATCH = 1000

SERVER_STATUS = "server.status"
SERVER_UPDATED = "server.updated"
ACTION_STATUS = "action.status"


def timestamp(value: datetime) -> str:
    """As the API writes times (UTC, seconds, `Z`)."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


class ActionFacts(Protocol):
    """An action as a table row or a RETURNING row."""

    @property
    def id(self) -> int: ...
    @property
    def account_id(self) -> int: ...
    @property
    def server_id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def finished_at(self) -> datetime | None: ...
    @property
    def error_code(self) -> str | None: ...
    @property
    def error_message(self) -> str | None: ...


def action_document(action: ActionFacts) -> dict[str, Any]:
    """The action as `GET /api/v1/actions/{id}/` shows it."""
    return {
        "id": action.id,
        "kind": action.kind,
        "status": action.status,
        "server_id": action.server_id,
        "started_at": timestamp(action.started_at),
        "finished_at": timestamp(action.finished_at) if action.finished_at else None,
        "error": {"code": action.error_code, "message": action.error_message or ""}
        if action.error_code
        else None,
        "progress": action_progress(action.status),
    }


def server_status(
    session: AsyncSession,
    *,
    account_id: int,
    server_id: int,
    status: str,
    previous: str | None,
    now: datetime,
    action_id: int | None = None,
    error: tuple[str, str] | None = None,
) -> None:
    """The server's status became `status` (from `previous`; None for a new server)."""
    stored.record(
        session,
        PendingEvent(
            account_id,
            server_id,
            SERVER_STATUS,
            {
                "server_id": server_id,
                "action_id": action_id,
                "status": status,
                "previous_status": previous,
                "error": {"code": error[0], "message": error[1]} if error else None,
                "occurred_at": timestamp(now),
            },
            now,
        ),
    )


def server_updated(
    session: AsyncSession,
    *,
    account_id: int,
    server_id: int,
    changes: dict[str, Any],
    now: datetime,
) -> None:
    """The owner changed some of the server's fields (PUT or PATCH): their new values."""
    stored.record(
        session,
        PendingEvent(
            account_id,
            server_id,
            SERVER_UPDATED,
            {"server_id": server_id, "changes": changes, "occurred_at": timestamp(now)},
            now,
        ),
    )


def actions_changed(session: AsyncSession, actions: Iterable[ActionFacts], now: datetime) -> None:
    """Each action started, or finished."""
    for action in actions:
        stored.record(
            session,
            PendingEvent(
                action.account_id,
                action.server_id,
                ACTION_STATUS,
                {
                    "server_id": action.server_id,
                    "action_id": action.id,
                    "action": action_document(action),
                    "occurred_at": timestamp(now),
                },
                now,
            ),
        )


async def prune(session: AsyncSession, before: datetime) -> int:
    """Delete one batch of events written before `before`; returns how many went."""
    return await stored.prune(session, before, PRUNE_BATCH)
