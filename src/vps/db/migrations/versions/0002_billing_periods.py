"""Billing periods: each server's paid period, its number, and a pending power-off.

Existing servers were charged their first month at creation and nothing since. Their paid
period is backfilled as [created_at, created_at + 30 days), the default period; a server
older than that is treated as paid until this upgrade, so the first renewal charges the
period that starts now instead of months the earlier version never billed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 09:00:00.000000
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_DEFAULT_PERIOD = timedelta(days=30)
LONG_AGO = "1970-01-01 00:00:00"


def upgrade() -> None:
    # Constant server defaults let SQLite add NOT NULL columns in place: rebuilding `servers`
    # would drop a table that other tables' foreign keys point at. The defaults only fill the
    # rows that exist now ("paid until long ago", i.e. due), and the backfill below replaces
    # them at once; the application always writes the paid period itself.
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "paid_from",
                sa.DateTime(timezone=True),
                server_default=LONG_AGO,
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column(
                "paid_until",
                sa.DateTime(timezone=True),
                server_default=LONG_AGO,
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column("billing_period", sa.Integer(), server_default="1", nullable=False)
        )
        batch_op.add_column(
            sa.Column("power_off_pending", sa.Boolean(), server_default="0", nullable=False)
        )
        batch_op.create_index("ix_servers_paid_until", ["paid_until"], unique=False)

    _backfill_paid_periods()


def _backfill_paid_periods() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    servers = sa.table(
        "servers",
        sa.column("id", sa.Integer()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("paid_from", sa.DateTime(timezone=True)),
        sa.column("paid_until", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)

    def stored(value: datetime) -> datetime:
        # SQLite keeps naive UTC (see vps.db.types.UTCDateTime).
        return value.astimezone(UTC).replace(tzinfo=None) if sqlite else value

    rows = []
    for server_id, created_at in bind.execute(sa.select(servers.c.id, servers.c.created_at)):
        created = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
        until = max(created + _DEFAULT_PERIOD, now)
        rows.append(
            {
                "sid": server_id,
                "start": stored(until - _DEFAULT_PERIOD),
                "until": stored(until),
            }
        )
    if rows:
        bind.execute(
            servers.update()
            .where(servers.c.id == sa.bindparam("sid"))
            .values(paid_from=sa.bindparam("start"), paid_until=sa.bindparam("until")),
            rows,
        )


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), for the same reason as above.
    op.drop_index("ix_servers_paid_until", table_name="servers")
    for column in ("power_off_pending", "billing_period", "paid_until", "paid_from"):
        op.drop_column("servers", column)
