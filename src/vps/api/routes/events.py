"""Server-sent event streams: every status change and action update, as it commits.

`GET /api/v1/events/` streams the whole account; `GET /api/v1/servers/{id}/events/` one
server (and ends after its deletion). `Last-Event-ID` resumes after that event for as long
as events are kept (`VPS_EVENT_RETENTION_SECONDS`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header
from starlette.responses import StreamingResponse

from vps.api.deps import CallerDep, StateDep
from vps.api.routes.common import ServerId, errors, existing_id
from vps.domain.errors import InvalidParameters, NotFound
from vps.services import servers
from vps.services.streams import Reset, Subscription, follow

router = APIRouter(prefix="/api/v1", tags=["events"])

# How long a browser's EventSource waits before reconnecting after a drop, in ms.
_RETRY_MS = 2000
_MAX_EVENT_ID = 2**63 - 1
_HEADERS = {
    "Cache-Control": "no-cache",
    # Proxies (nginx) must pass each event on at once, not buffer the response.
    "X-Accel-Buffering": "no",
}

LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        description="Resume after this event id (browsers send it when they reconnect).",
        pattern=r"^\s*[0-9]{1,19}\s*$",
    ),
]

_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A `text/event-stream`: `server.status` and `action.status` events "
        "(`id:` is the event id, `data:` its JSON), `: heartbeat` comments, and `reset` when "
        "events after `Last-Event-ID` are no longer kept.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
}


def _resume_point(header: str | None) -> int | None:
    if header is None:
        return None
    value = int(header.strip())
    if value > _MAX_EVENT_ID:
        raise InvalidParameters.single("Last-Event-ID", "Must be an event id.")
    return value


async def _sse(
    state: StateDep, subscription: Subscription, last_event_id: int | None
) -> AsyncIterator[bytes]:
    yield f"retry: {_RETRY_MS}\n\n".encode()
    heartbeat = state.settings.event_heartbeat_seconds
    async for item in follow(state.events, subscription, last_event_id, heartbeat):
        if item is None:
            yield b": heartbeat\n\n"
        elif isinstance(item, Reset):
            data = orjson.dumps({"type": "reset", "reason": item.reason})
            yield b"event: reset\ndata: " + data + b"\n\n"
        else:
            yield f"id: {item.id}\nevent: {item.type}\ndata: {item.data}\n\n".encode()


def _stream(
    state: StateDep, subscription: Subscription, last_event_id: int | None
) -> StreamingResponse:
    return StreamingResponse(
        _sse(state, subscription, last_event_id),
        media_type="text/event-stream",
        headers=_HEADERS,
    )


@router.get(
    "/events/", response_class=StreamingResponse, responses={**_STREAM_DOC, **errors(400, 401, 429)}
)
async def account_events(
    caller: CallerDep, state: StateDep, last_event_id: LastEventId = None
) -> StreamingResponse:
    """Every server status change and action update of the account, as they happen."""
    resume = _resume_point(last_event_id)
    subscription = await state.events.subscribe(
        caller.principal.account_id, stream_limit=state.settings.event_streams_per_account
    )
    return _stream(state, subscription, resume)


@router.get(
    "/servers/{server_id}/events/",
    response_class=StreamingResponse,
    responses={**_STREAM_DOC, **errors(400, 401, 404, 429)},
)
async def server_events(
    server_id: ServerId, caller: CallerDep, state: StateDep, last_event_id: LastEventId = None
) -> StreamingResponse:
    """The server's status changes and action updates; the stream ends after it is deleted."""
    resume = _resume_point(last_event_id)
    account_id = caller.principal.account_id
    existing_id(server_id, "server")
    # Subscribed before the check: a change right after it is in the stream.
    subscription = await state.events.subscribe(
        account_id, server_id, stream_limit=state.settings.event_streams_per_account
    )
    try:
        async with state.database.read() as session:
            await servers.require_visible(session, caller.principal, server_id)
    except NotFound:
        state.events.unsubscribe(subscription)
        raise
    return _stream(state, subscription, resume)
