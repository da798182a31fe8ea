"""The account's audit log: every mutation its tokens asked for, and how it ended."""

from __future__ import annotations

from fastapi import APIRouter

from vps.api.deps import ReadContext
from vps.api.routes.common import PagingDep, errors
from vps.api.schemas import AuditEventOut, AuditTarget, Page
from vps.db.models import AuditEvent
from vps.services import audit

router = APIRouter(prefix="/api/v1/account", tags=["account"])


def _event_out(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        id=event.id,
        action=event.action,
        target=AuditTarget(type=event.target_type, id=event.target_id),
        token_id=event.token_id,
        method=event.method,
        path=event.path,
        status_code=event.status_code,
        result="refused" if event.error_code else "succeeded",
        error_code=event.error_code,
        request_id=event.request_id,
        created_at=event.created_at,
    )


@router.get("/audit-log/", response_model=Page[AuditEventOut], responses=errors(400, 401))
async def list_audit_log(ctx: ReadContext, paging: PagingDep) -> Page[AuditEventOut]:
    """Every create, change, delete and power action asked by the account's tokens (also
    those refused, with their error code), newest first. Successes are recorded in the
    same transaction as the change itself."""
    result = await audit.list_events(ctx.session, ctx.principal, paging.offset, paging.limit)
    following, preceding = paging.links(result.total)
    return Page[AuditEventOut](
        count=result.total,
        next=following,
        previous=preceding,
        results=[_event_out(event) for event in result.events],
    )
