"""Hypervisor hosts per location, and the host each server was placed on.

Servers that exist already keep `host_id` NULL: they stay on the worker's default driver,
which is where they were built.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 04:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("driver", sa.String(length=20), nullable=False),
        sa.Column("uri", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("disk_gb", sa.Integer(), nullable=False),
        sa.Column("cpu_overcommit", sa.Float(), nullable=False),
        sa.Column("memory_overcommit", sa.Float(), nullable=False),
        sa.Column("disk_overcommit", sa.Float(), nullable=False),
        sa.Column("vcpu_limit", sa.Integer(), nullable=False),
        sa.Column("memory_limit_mb", sa.Integer(), nullable=False),
        sa.Column("disk_limit_gb", sa.Integer(), nullable=False),
        sa.Column("used_vcpus", sa.Integer(), nullable=False),
        sa.Column("used_memory_mb", sa.Integer(), nullable=False),
        sa.Column("used_disk_gb", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('active', 'draining')", name=op.f("ck_hosts_status")),
        sa.CheckConstraint(
            "used_vcpus >= 0 AND used_memory_mb >= 0 AND used_disk_gb >= 0",
            name=op.f("ck_hosts_used"),
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_hosts_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hosts")),
        sa.UniqueConstraint("name", name=op.f("uq_hosts_name")),
    )
    op.create_index(op.f("ix_hosts_location_id"), "hosts", ["location_id"], unique=False)
    # SQLite cannot add a constraint to a table, and a batch rebuild of `servers` would drop
    # a table that other tables point at; it does accept a nullable column with an inline
    # REFERENCES clause.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE servers ADD COLUMN host_id INTEGER REFERENCES hosts (id)")
    else:
        op.add_column("servers", sa.Column("host_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_servers_host_id_hosts"),
            "servers",
            "hosts",
            ["host_id"],
            ["id"],
        )
    op.create_index(op.f("ix_servers_host_id"), "servers", ["host_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_servers_host_id"), table_name="servers")
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.drop_column("host_id")
    op.drop_index(op.f("ix_hosts_location_id"), table_name="hosts")
    op.drop_table("hosts")
