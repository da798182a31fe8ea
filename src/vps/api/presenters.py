"""Turn domain objects into the API's bodies."""

from __future__ import annotations

from typing import Any, Final

from fastapi import Request

from vps.api.schemas import (
    AccountOut,
    ActionError,
    ActionOut,
    LedgerEntryOut,
    PlanOut,
    PlanSummary,
    SshKeyOut,
)
from vps.db.models import Action, CreditTransaction, Plan, SshKey
from vps.db.views import ServerView
from vps.domain.money import format_cents
from vps.domain.states import ServerStatus, action_progress
from vps.services.accounts import AccountSummary

_NO_USAGE: Final = {"cpu_percent": 0.0, "memory_used": 0, "disk_used": 0, "bandwidth_used": 0}
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


def server_body(view: ServerView) -> dict[str, Any]:
    """A server's API body (the spec's `ServerOut`), built as plain data for `JsonBody`: a
    list page holds fifty of them, and a pydantic model each would cost more than the
    query."""
    provisioned = view.status not in _ADDRESSLESS
    return {
        "id": view.id,
        "name": view.name,
        "hostname": view.hostname,
        "status": view.status,
        "ip_address": view.ipv4_address if provisioned else None,
        "ipv6_address": view.ipv6_address if provisioned else None,
        "location": view.location,
        "plan": {
            "id": view.plan_id,
            "name": view.plan_name,
            "vcpus": view.plan_vcpus,
            "memory": view.plan_memory_mb,
            "storage": view.plan_storage_gb,
            "bandwidth": view.plan_bandwidth_gb,
        },
        "os": {"id": view.os_id, "name": view.os_name},
        "backups_enabled": view.backups_enabled,
        "resource_usage": _NO_USAGE
        if view.cpu_percent is None
        else {
            "cpu_percent": float(view.cpu_percent),
            "memory_used": view.memory_used_mb,
            "disk_used": view.disk_used_gb,
            "bandwidth_used": view.bandwidth_used_gb,
        },
        "error": {"code": view.error_code, "message": view.error_message or ""}
        if view.status in _EXPLAINED and view.error_code
        else None,
        # Aware UTC datetimes: JsonBody writes them as the spec does.
        "created_at": view.created_at,
        "updated_at": view.updated_at,
    }


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
        progress=action_progress(action.status),
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
