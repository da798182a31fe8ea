"""The nine endpoints of the Servers API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from vps.api.deps import (
    BearerDep,
    CallerDep,
    Context,
    PostContext,
    PreconditionDep,
    StateDep,
    WriteContext,
)
from vps.api.presenters import action_out, server_body
from vps.api.responses import JsonBody
from vps.api.routes.common import (
    PagingDep,
    ServerId,
    WaitParam,
    errors,
    existing_id,
)
from vps.api.schemas import (
    CreateServerIn,
    PatchServerIn,
    PowerActionOut,
    ReplaceServerIn,
    ServerBrief,
    ServerCreated,
    ServerList,
    ServerOut,
)
from vps.db.views import ServerView
from vps.domain.errors import InvalidParameters
from vps.domain.etags import Precondition, etag
from vps.domain.states import VISIBLE_STATUSES, ActionKind, ServerStatus
from vps.services import servers, waiting
from vps.services.servers import ActionResult, ServerChanges, ServerDraft

router = APIRouter(prefix="/api/v1/servers", tags=["servers"])

DEFAULT_WAIT_SECONDS = 30.0
_WAITABLE = sorted(status.value for status in VISIBLE_STATUSES)
WaitForParam = Annotated[
    str | None,
    Query(
        description="Long-poll until the server is in this status (see `wait`).",
        json_schema_extra={"enum": _WAITABLE},
    ),
]


def _waited_status(value: str) -> ServerStatus:
    if value not in _WAITABLE:
        raise InvalidParameters.single(
            "wait_for", f"Unknown status {value!r}; one of: {', '.join(_WAITABLE)}.", "unknown"
        )
    return ServerStatus(value)


# The read paths answer plain data encoded by orjson; `response_model` still documents them.
@router.get("/", response_model=ServerList, responses=errors(400, 401))
async def list_servers(
    caller: CallerDep,
    paging: PagingDep,
    status: str | None = None,
    location: str | None = None,
) -> JsonBody:
    """List the account's servers, by id, optionally filtered by exact status and location."""
    result = await servers.list_servers(
        caller.reader,
        caller.principal,
        status=status,
        location=location,
        offset=paging.offset,
        limit=paging.limit,
    )
    following, preceding = paging.links(result.total)
    return JsonBody(
        {
            "count": result.total,
            "next": following,
            "previous": preceding,
            "results": [server_body(view) for view in result.servers],
        }
    )


def _with_etag(view: ServerView) -> dict[str, str]:
    return {"ETag": etag(view.version)}


_ETAG_HEADER = {
    "ETag": {
        "description": "The server's version; send it as `If-Match` to change the server "
        "only if nobody else did since.",
        "schema": {"type": "string"},
    }
}
_REPLAY_HEADER = {
    "Idempotency-Replay": {
        "description": "`true` when this is the remembered answer to an earlier request "
        "with the same `Idempotency-Key`.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def _documented(status: int, headers: dict[str, Any], *codes: int) -> dict[int | str, Any]:
    return {status: {"headers": headers}, **errors(*codes)}


@router.post(
    "/",
    status_code=201,
    response_model=ServerCreated,
    responses=_documented(
        201, {**_ETAG_HEADER, **_REPLAY_HEADER}, 400, 401, 402, 403, 409, 422, 503
    ),
)
async def create_server(body: CreateServerIn, ctx: PostContext, state: StateDep) -> Response:
    """Create a server; its first month is charged now, and it is built asynchronously."""
    draft = ServerDraft(
        name=body.name,
        plan_id=body.plan_id,
        os_id=body.os_id,
        location=body.location,
        hostname=body.hostname,
        ssh_key_id=body.ssh_key_id,
        backups_enabled=body.backups_enabled,
    )
    result = await servers.create_server(
        ctx.session, ctx.principal, draft, ctx.now, terms=state.billing_terms
    )
    ctx.created_id = result.server.id
    return await ctx.respond(
        JsonBody(
            {
                **server_body(result.server),
                "message": result.message,
                "action": action_out(result.action).model_dump(mode="json"),
            },
            status_code=201,
            headers=_with_etag(result.server),
        )
    )


@router.get(
    "/{server_id}/",
    response_model=ServerOut,
    responses=_documented(200, _ETAG_HEADER, 400, 401, 404),
)
async def get_server(
    server_id: ServerId,
    bearer: BearerDep,
    state: StateDep,
    wait_for: WaitForParam = None,
    wait: WaitParam = None,
) -> JsonBody:
    """One server. Long-poll with `wait_for=<status>`: answered as soon as the server is in
    that status, or settles in another status it will not leave by itself (`active`,
    `stopped`, `error`, `suspended`), or after `wait` seconds (default 30); `404` if it is
    deleted meanwhile. `wait` alone: answered as soon as the status changes."""
    if wait_for is None and wait is None:
        # Authenticated by the service, in the same query as the read (one round trip).
        view = await servers.view_server(bearer.reader, bearer.token, server_id, bearer.now)
    else:
        view = await waiting.server_when(
            state.events,
            bearer.reader,
            bearer.token,
            server_id,
            bearer.now,
            wait_for_status=_waited_status(wait_for) if wait_for is not None else None,
            seconds=wait if wait is not None else DEFAULT_WAIT_SECONDS,
        )
    return JsonBody(server_body(view), headers=_with_etag(view))


async def _update(
    server_id: int, changes: ServerChanges, ctx: Context, precondition: Precondition | None
) -> JsonBody:
    server = await servers.update_server(
        ctx.session,
        ctx.principal,
        existing_id(server_id, "server"),
        changes,
        ctx.now,
        precondition=precondition,
    )
    return JsonBody(server_body(server), headers=_with_etag(server))


@router.put("/{server_id}/", response_model=ServerOut, responses=errors(400, 401, 403, 404, 412))
async def replace_server(
    server_id: ServerId, body: ReplaceServerIn, ctx: WriteContext, precondition: PreconditionDep
) -> JsonBody:
    """Change name, hostname and backups; all three are required. With `If-Match`, only if
    the server is still at that ETag."""
    changes = ServerChanges(
        name=body.name, hostname=body.hostname, backups_enabled=body.backups_enabled
    )
    return await _update(server_id, changes, ctx, precondition)


@router.patch("/{server_id}/", response_model=ServerOut, responses=errors(400, 401, 403, 404, 412))
async def update_server(
    server_id: ServerId, body: PatchServerIn, ctx: WriteContext, precondition: PreconditionDep
) -> JsonBody:
    """Change only the fields given. With `If-Match`, only if the server is still at that
    ETag."""
    changes = ServerChanges(
        name=body.name, hostname=body.hostname, backups_enabled=body.backups_enabled
    )
    return await _update(server_id, changes, ctx, precondition)


@router.delete(
    "/{server_id}/",
    status_code=204,
    response_class=Response,
    responses=errors(400, 401, 403, 404, 412),
)
async def delete_server(
    server_id: ServerId, ctx: WriteContext, precondition: PreconditionDep
) -> Response:
    """Delete the server: it is gone (404) at once; its machine is destroyed asynchronously.

    The delete's action can be followed at the URL in the `Location` header
    (`/api/v1/actions/{id}/`), whose id is also in `X-Action-Id`.
    """
    action = await servers.delete_server(
        ctx.session,
        ctx.principal,
        existing_id(server_id, "server"),
        ctx.now,
        precondition=precondition,
    )
    return Response(
        status_code=204,
        headers={"Location": f"/api/v1/actions/{action.id}/", "X-Action-Id": str(action.id)},
    )


def _power_response(result: ActionResult) -> JsonBody:
    body = PowerActionOut(
        status="success",
        message=result.message,
        server=ServerBrief(
            id=result.server.id, name=result.server.name, status=result.server.status
        ),
        action=action_out(result.action),
    )
    return JsonBody(body.model_dump(mode="json"))


async def _power(server_id: int, ctx: PostContext, kind: ActionKind) -> Response:
    result = await servers.power_action(
        ctx.session, ctx.principal, existing_id(server_id, "server"), kind, ctx.now
    )
    return await ctx.respond(_power_response(result))


_POWER_ERRORS = _documented(200, _REPLAY_HEADER, 400, 401, 403, 404, 409, 422)


@router.post("/{server_id}/start/", response_model=PowerActionOut, responses=_POWER_ERRORS)
async def start_server(server_id: ServerId, ctx: PostContext) -> Response:
    """Power on a stopped server. `400` when it is already running or busy."""
    return await _power(server_id, ctx, ActionKind.START)


@router.post("/{server_id}/stop/", response_model=PowerActionOut, responses=_POWER_ERRORS)
async def stop_server(server_id: ServerId, ctx: PostContext) -> Response:
    """Shut a running server down through its operating system. `400` when not running."""
    return await _power(server_id, ctx, ActionKind.STOP)


@router.post("/{server_id}/reboot/", response_model=PowerActionOut, responses=_POWER_ERRORS)
async def reboot_server(server_id: ServerId, ctx: PostContext) -> Response:
    """Restart a running server. `400` when not running."""
    return await _power(server_id, ctx, ActionKind.REBOOT)
