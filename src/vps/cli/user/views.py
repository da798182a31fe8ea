"""How servers and actions look in tables: the columns of a list, the fields of one."""

from __future__ import annotations

from typing import Any

from vps.cli.user.output import Column, status_text


def _plan(server: dict[str, Any]) -> str:
    plan = server.get("plan") or {}
    return str(plan.get("name", "-"))


def _os(server: dict[str, Any]) -> str:
    system = server.get("os") or {}
    return str(system.get("name", "-"))


# The two columns every list of servers or actions starts with.
ID_COLUMN: Column = ("ID", lambda row: row["id"])
STATUS_COLUMN: Column = ("STATUS", lambda row: status_text(row["status"]))

SERVER_COLUMNS: list[Column] = [
    ID_COLUMN,
    ("NAME", lambda s: s["name"]),
    STATUS_COLUMN,
    ("IPV4", lambda s: s.get("ip_address")),
    ("LOCATION", lambda s: s.get("location")),
    ("PLAN", _plan),
    ("OS", _os),
    ("CREATED", lambda s: s.get("created_at")),
]


def _plan_detail(server: dict[str, Any]) -> str:
    plan = server.get("plan") or {}
    return (
        f"{plan.get('name')} (id {plan.get('id')}): {plan.get('vcpus')} vCPU, "
        f"{plan.get('memory')} MB memory, {plan.get('storage')} GB disk"
    )


def _usage(server: dict[str, Any]) -> str:
    usage = server.get("resource_usage") or {}
    if not usage:
        return "-"
    return (
        f"cpu {usage.get('cpu_percent')}%, memory {usage.get('memory_used')} MB, "
        f"disk {usage.get('disk_used')} GB, bandwidth {usage.get('bandwidth_used')} GB"
    )


def _server_error(server: dict[str, Any]) -> str | None:
    error = server.get("error")
    return f"{error.get('message')} [{error.get('code')}]" if error else None


SERVER_FIELDS: list[Column] = [
    ("id", lambda s: s["id"]),
    ("name", lambda s: s["name"]),
    ("hostname", lambda s: s.get("hostname")),
    ("status", lambda s: status_text(s["status"])),
    ("error", _server_error),
    ("ipv4", lambda s: s.get("ip_address")),
    ("ipv6", lambda s: s.get("ipv6_address")),
    ("location", lambda s: s.get("location")),
    ("plan", _plan_detail),
    ("os", lambda s: f"{_os(s)} (id {(s.get('os') or {}).get('id')})"),
    ("backups", lambda s: s.get("backups_enabled")),
    ("usage", _usage),
    ("created", lambda s: s.get("created_at")),
    ("updated", lambda s: s.get("updated_at")),
]

ACTION_COLUMNS: list[Column] = [
    ID_COLUMN,
    ("KIND", lambda a: a["kind"]),
    STATUS_COLUMN,
    ("STARTED", lambda a: a.get("started_at")),
    ("FINISHED", lambda a: a.get("finished_at")),
    ("ERROR", lambda a: (a.get("error") or {}).get("message")),
]
