"""The nine endpoints of the Servers API."""

from __future__ import annotations

from fastapi import APIRouter, Response

from vps.api.deps import BearerDep, CallerDep, StateDep, WriteContext
from vps.api.presenters import action_out, server_body
from vps.api.responses import JsonBody
from vps.api.routes.common import (
    PagingDep,
    ServerId,
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
from vps.domain.states import ActionKind
from vps.services import servers
from vps.services.servers import ActionResult, ServerChanges, ServerDraft

router = APIRouter(prefix="/api/v1/servers", tags=["servers"])


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


@router.post(
    "/", status_code=201, response_model=ServerCreated, responses=errors(400, 401, 402, 403)
)
async def create_server(body: CreateServerIn, ctx: WriteContext, state: StateDep) -> JsonBody:
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
    return JsonBody(
        {
            **server_body(result.server),
            "message": result.message,
            "action": action_out(result.action).model_dump(mode="json"),
        },
        status_code=201,
    )


@router.get("/{server_id}/", response_model=ServerOut, responses=errors(400, 401, 404))
async def get_server(server_id: ServerId, bearer: BearerDep) -> JsonBody:
    # Authenticated by the service, in the same query as the read (one round trip).
    view = await servers.view_server(bearer.reader, bearer.token, server_id, bearer.now)
    return JsonBody(server_body(view))


@router.put("/{server_id}/", response_model=ServerOut, responses=errors(400, 401, 403, 404))
async def replace_server(server_id: ServerId, body: ReplaceServerIn, ctx: WriteContext) -> JsonBody:
    """Change name, hostname and backups; all three are required."""
    changes = ServerChanges(
        name=body.name, hostname=body.hostname, backups_enabled=body.backups_enabled
    )
    server = await servers.update_server(
        ctx.session, ctx.principal, existing_id(server_id, "server"), changes, ctx.now
    )
    return JsonBody(server_body(server))


@router.patch("/{server_id}/", response_model=ServerOut, responses=errors(400, 401, 403, 404))
async def update_server(server_id: ServerId, body: PatchServerIn, ctx: WriteContext) -> JsonBody:
    """Change only the fields given."""
    changes = ServerChanges(
        name=body.name, hostname=body.hostname, backups_enabled=body.backups_enabled
    )
    server = await servers.update_server(
        ctx.session, ctx.principal, existing_id(server_id, "server"), changes, ctx.now
    )
    return JsonBody(server_body(server))


@router.delete(
    "/{server_id}/",
    status_code=204,
    response_class=Response,
    responses=errors(400, 401, 403, 404),
)
async def delete_server(server_id: ServerId, ctx: WriteContext) -> Response:
    """Delete the server: it is gone (404) at once; its machine is destroyed asynchronously.

    The delete's action can be followed at the URL in the `Location` header
    (`/api/v1/actions/{id}/`), whose id is also in `X-Action-Id`.
    """
    action = await servers.delete_server(
        ctx.session, ctx.principal, existing_id(server_id, "server"), ctx.now
    )
    return Response(
        status_code=204,
        headers={"Location": f"/api/v1/actions/{action.id}/", "X-Action-Id": str(action.id)},
    )


def _power_response(result: ActionResult) -> PowerActionOut:
    return PowerActionOut(
        status="success",
        message=result.message,
        server=ServerBrief(
            id=result.server.id, name=result.server.name, status=result.server.status
        ),
        action=action_out(result.action),
    )


async def _power(server_id: int, ctx: WriteContext, kind: ActionKind) -> PowerActionOut:
    result = await servers.power_action(
        ctx.session, ctx.principal, existing_id(server_id, "server"), kind, ctx.now
    )
    return _power_response(result)


@router.post(
    "/{server_id}/start/", response_model=PowerActionOut, responses=errors(400, 401, 403, 404)
)
async def start_server(server_id: ServerId, ctx: WriteContext) -> PowerActionOut:
    """Power on a stopped server. `400` when it is already running or busy."""
    return await _power(server_id, ctx, ActionKind.START)


@router.post(
    "/{server_id}/stop/", response_model=PowerActionOut, responses=errors(400, 401, 403, 404)
)
async def stop_server(server_id: ServerId, ctx: WriteContext) -> PowerActionOut:
    """Shut a running server down through its operating system. `400` when not running."""
    return await _power(server_id, ctx, ActionKind.STOP)


@router.post(
    "/{server_id}/reboot/", response_model=PowerActionOut, responses=errors(400, 401, 403, 404)
)
async def reboot_server(server_id: ServerId, ctx: WriteContext) -> PowerActionOut:
    """Restart a running server. `400` when not running."""
    return await _power(server_id, ctx, ActionKind.REBOOT)
