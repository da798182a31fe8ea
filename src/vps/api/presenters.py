"""Turn domain objects into the API's bodies."""

from __future__ import annotations

from fastapi import Request

from vps.api.schemas import (
    AccountOut,
    ActionError,
    ActionOut,
    LedgerEntryOut,
    OsSummary,
    PlanOut,
    PlanSummary,
    ResourceUsageOut,
    ServerErrorInfo,
    ServerOut,
    SshKeyOut,
)
from vps.db.models import Action, CreditTransaction, Plan, Server, SshKey
from vps.domain.money import format_cents
from vps.domain.states import ActionStatus, ServerStatus
from vps.services.accounts import AccountSummary

_NO_USAGE = ResourceUsageOut(cpu_percent=0.0, memory_used=0, disk_used=0, bandwidth_used=0)
_ADDRESSLESS = frozenset({ServerStatus.PROVISIONING.value, ServerStatus.ERROR.value})
# Statuses whose `error` says why the server is in them (a failed build; unpaid credits).
_EXPLAINED = frozenset({ServerStatus.ERROR.value, ServerStatus.SUSPENDED.value})


def plan_summary(plan: Plan) -> PlanSummary:
    return PlanSummary(
        id=plan.id,
        name=plan.name,
        vcpus=plan.vcpus,
        memory=plan.memory_mb,
        storage=plan.storage_gb,
        bandwidth=plan.bandwidth_gb,
    )


def server_out(server: Server) -> ServerOut:
    usage = server.usage
    provisioned = server.status not in _ADDRESSLESS
    return ServerOut(
        id=server.id,
        name=server.name,
        hostname=server.hostname,
        status=server.status,
        ip_address=server.ipv4_address if provisioned else None,
        ipv6_address=server.ipv6_address if provisioned else None,
        location=server.location.code,
        plan=plan_summary(server.plan),
        os=OsSummary(id=server.os.id, name=server.os.name),
        backups_enabled=server.backups_enabled,
        resource_usage=_NO_USAGE
        if usage is None
        else ResourceUsageOut(
            cpu_percent=usage.cpu_percent,
            memory_used=usage.memory_used_mb,
            disk_used=usage.disk_used_gb,
            bandwidth_used=usage.bandwidth_used_gb,
        ),
        error=ServerErrorInfo(code=server.error_code, message=server.error_message or "")
        if server.status in _EXPLAINED and server.error_code
        else None,
        created_at=server.created_at,
        updated_at=server.updated_at,
    )


def action_out(action: Action) -> ActionOut:
    return ActionOut(
        id=action.id,
        kind=action.kind,
        status=action.status,
        server_id=action.server_id,
        started_at=action.started_at,
        finished_at=action.finished_at,
        error=ActionError(code=action.error_code, message=action.error_message or "")
        if action.error_code
        else None,
        progress=0 if action.status == ActionStatus.RUNNING.value else 100,
    )


def plan_out(plan: Plan) -> PlanOut:
    return PlanOut(
        **plan_summary(plan).model_dump(),
        monthly_price=format_cents(plan.monthly_price_cents),
        backups_monthly_price=format_cents(plan.backups_monthly_price_cents),
    )


def ssh_key_out(key: SshKey) -> SshKeyOut:
    return SshKeyOut(
        id=key.id,
        name=key.name,
        public_key=key.public_key,
        fingerprint=key.fingerprint,
        created_at=key.created_at,
    )


def ledger_entry_out(entry: CreditTransaction) -> LedgerEntryOut:
    return LedgerEntryOut(
        id=entry.id,
        kind=entry.kind,
        amount=format_cents(entry.amount_cents),
        balance_after=format_cents(entry.balance_after_cents),
        server_id=entry.server_id,
        description=entry.description,
        created_at=entry.created_at,
    )


def account_out(summary: AccountSummary) -> AccountOut:
    return AccountOut(
        id=summary.account.id,
        name=summary.account.name,
        balance=format_cents(summary.account.balance_cents),
        recent_transactions=[ledger_entry_out(e) for e in summary.ledger],
    )


def page_links(
    request: Request, base_url: str | None, page: int, page_size: int, total: int
) -> tuple[str | None, str | None]:
    """`next` and `previous` as absolute URLs, keeping the other query parameters."""
    url = request.url
    if base_url:
        url = url.replace(
            scheme=base_url.split("://", 1)[0], netloc=base_url.split("://", 1)[1].rstrip("/")
        )
    following = (
        str(url.include_query_params(page=page + 1, page_size=page_size))
        if page * page_size < total
        else None
    )
    preceding = (
        str(url.include_query_params(page=page - 1, page_size=page_size)) if page > 1 else None
    )
    return following, preceding
