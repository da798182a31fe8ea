"""`vps account`: the balance and the latest ledger entries."""

from __future__ import annotations

from vps.cli.user.output import Column, OutputFormat, as_json, print_fields, print_json, print_table
from vps.cli.user.session import Invocation, api_command

ACCOUNT_FIELDS: list[Column] = [
    ("account", lambda a: f"{a['name']} (id {a['id']})"),
    ("balance", lambda a: f"{a['balance']} credits"),
]
TRANSACTION_COLUMNS: list[Column] = [
    ("ID", lambda t: t["id"]),
    ("WHEN", lambda t: t.get("created_at")),
    ("KIND", lambda t: t["kind"]),
    ("AMOUNT", lambda t: t["amount"]),
    ("BALANCE AFTER", lambda t: t["balance_after"]),
    ("SERVER", lambda t: t.get("server_id")),
    ("DESCRIPTION", lambda t: t.get("description")),
]


@api_command
def account(call: Invocation) -> None:
    """Your account: its credit balance and recent transactions."""
    with call.client() as client:
        details = as_json(client.account.get())
    if call.output is OutputFormat.json:
        print_json(details)
        return
    print_fields(details, ACCOUNT_FIELDS)
    print_table(
        details.get("recent_transactions") or [],
        TRANSACTION_COLUMNS,
        title="recent transactions",
        empty="no transactions yet",
    )
