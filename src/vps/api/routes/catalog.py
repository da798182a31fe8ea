"""Read-only catalog, SSH keys and the account."""

from __future__ import annotations

from fastapi import APIRouter, Response

from vps.api.deps import PostContext, ReadContext, WriteContext
from vps.api.presenters import account_out, ledger_entry_out, plan_out, ssh_key_out
from vps.api.responses import JsonBody
from vps.api.routes.common import PagingDep, errors, existing_id
from vps.api.schemas import (
    AccountOut,
    CreateSshKeyIn,
    LedgerEntryOut,
    LocationOut,
    OsOut,
    Page,
    PlanOut,
    SshKeyOut,
)
from vps.services import accounts, catalog, ssh_keys

router = APIRouter(prefix="/api/v1")


@router.get("/plans/", response_model=list[PlanOut], responses=errors(401), tags=["catalog"])
async def list_plans(ctx: ReadContext) -> list[PlanOut]:
    return [plan_out(p) for p in await catalog.plans(ctx.session)]


@router.get(
    "/operating-systems/",
    response_model=list[OsOut],
    responses=errors(401),
    tags=["catalog"],
)
async def list_operating_systems(ctx: ReadContext) -> list[OsOut]:
    return [OsOut(id=o.id, name=o.name) for o in await catalog.operating_systems(ctx.session)]


@router.get(
    "/locations/", response_model=list[LocationOut], responses=errors(401), tags=["catalog"]
)
async def list_locations(ctx: ReadContext) -> list[LocationOut]:
    return [
        LocationOut(code=loc.code, name=loc.name) for loc in await catalog.locations(ctx.session)
    ]


@router.get(
    "/ssh-keys/", response_model=Page[SshKeyOut], responses=errors(400, 401), tags=["ssh-keys"]
)
async def list_ssh_keys(
    ctx: ReadContext,
    paging: PagingDep,
) -> Page[SshKeyOut]:
    total, keys = await ssh_keys.list_keys(ctx.session, ctx.principal, paging.offset, paging.limit)
    following, preceding = paging.links(total)
    return Page[SshKeyOut](
        count=total, next=following, previous=preceding, results=[ssh_key_out(k) for k in keys]
    )


@router.post(
    "/ssh-keys/",
    status_code=201,
    response_model=SshKeyOut,
    responses=errors(400, 401, 403, 409, 422),
    tags=["ssh-keys"],
)
async def create_ssh_key(body: CreateSshKeyIn, ctx: PostContext) -> Response:
    key = await ssh_keys.add_key(ctx.session, ctx.principal, body.name, body.public_key, ctx.now)
    ctx.created_id = key.id
    return await ctx.respond(JsonBody(ssh_key_out(key).model_dump(mode="json"), status_code=201))


@router.get(
    "/ssh-keys/{key_id}/",
    response_model=SshKeyOut,
    responses=errors(400, 401, 404),
    tags=["ssh-keys"],
)
async def get_ssh_key(key_id: int, ctx: ReadContext) -> SshKeyOut:
    key = await ssh_keys.get_key(ctx.session, ctx.principal, existing_id(key_id, "SSH key"))
    return ssh_key_out(key)


@router.delete(
    "/ssh-keys/{key_id}/",
    status_code=204,
    response_class=Response,
    responses=errors(400, 401, 403, 404),
    tags=["ssh-keys"],
)
async def delete_ssh_key(key_id: int, ctx: WriteContext) -> Response:
    await ssh_keys.delete_key(ctx.session, ctx.principal, existing_id(key_id, "SSH key"))
    return Response(status_code=204)


@router.get("/account/", response_model=AccountOut, responses=errors(401), tags=["account"])
async def get_account(ctx: ReadContext) -> AccountOut:
    return account_out(await accounts.account_summary(ctx.session, ctx.principal.account_id))


@router.get(
    "/account/transactions/",
    response_model=Page[LedgerEntryOut],
    responses=errors(400, 401),
    tags=["account"],
)
async def list_transactions(
    ctx: ReadContext,
    paging: PagingDep,
) -> Page[LedgerEntryOut]:
    """The account's credits ledger, newest first: top-ups, charges (negative) and refunds."""
    total, entries = await accounts.ledger_page(
        ctx.session, ctx.principal.account_id, paging.offset, paging.limit
    )
    following, preceding = paging.links(total)
    return Page[LedgerEntryOut](
        count=total,
        next=following,
        previous=preceding,
        results=[ledger_entry_out(e) for e in entries],
    )
