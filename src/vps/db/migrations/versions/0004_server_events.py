"""Server and action events for the event streams and long-polls, and their id counter.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 00:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_events",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_server_events_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_events")),
    )
    op.create_index("ix_server_events_account", "server_events", ["account_id", "id"])
    op.create_index("ix_server_events_server", "server_events", ["server_id", "id"])
    event_log = op.create_table(
        "event_log",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("pruned_through", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_log")),
    )
    op.bulk_insert(event_log, [{"id": 1, "last_id": 0, "pruned_through": 0}])


def downgrade() -> None:
    op.drop_table("event_log")
    op.drop_index("ix_server_events_server", table_name="server_events")
    op.drop_index("ix_server_events_account", table_name="server_events")
    op.drop_table("server_events")
