"""Initial schema and the default catalog (the spec's plans, systems and locations).

Revision ID: 0001
Revises:
Create Date: 2026-11-28 16:04:31.449450
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("balance_cents", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("balance_cents >= 0", name=op.f("ck_accounts_balance_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_accounts_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "locations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locations")),
        sa.UniqueConstraint("code", name=op.f("uq_locations_code")),
    )
    op.create_table(
        "operating_systems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operating_systems")),
        sa.UniqueConstraint("slug", name=op.f("uq_operating_systems_slug")),
    )
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("storage_gb", sa.Integer(), nullable=False),
        sa.Column("bandwidth_gb", sa.Integer(), nullable=False),
        sa.Column("monthly_price_cents", sa.BigInteger(), nullable=False),
        sa.Column("backups_monthly_price_cents", sa.BigInteger(), nullable=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("display_prefix", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("read_only", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_api_tokens_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_account_id"), ["account_id"], unique=False)

    op.create_table(
        "ip_pools",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("family", sa.Integer(), nullable=False),
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("first_host", sa.BigInteger(), nullable=False),
        sa.Column("last_host", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("family IN (4, 6)", name=op.f("ck_ip_pools_family")),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_ip_pools_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ip_pools")),
        sa.UniqueConstraint("cidr", name=op.f("uq_ip_pools_cidr")),
    )
    with op.batch_alter_table("ip_pools", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ip_pools_location_id"), ["location_id"], unique=False)

    op.create_table(
        "ssh_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_ssh_keys_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ssh_keys")),
        sa.UniqueConstraint("account_id", "fingerprint", name="uq_ssh_keys_account_fingerprint"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("ssh_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ssh_keys_account_id"), ["account_id"], unique=False)

    op.create_table(
        "servers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("hostname", sa.String(length=253), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("os_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("ssh_key_id", sa.Integer(), nullable=True),
        sa.Column("ssh_public_key", sa.Text(), nullable=True),
        sa.Column("backups_enabled", sa.Boolean(), nullable=False),
        sa.Column("ipv4_address", sa.String(length=64), nullable=True),
        sa.Column("ipv6_address", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_servers_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_servers_location_id_locations")
        ),
        sa.ForeignKeyConstraint(
            ["os_id"], ["operating_systems.id"], name=op.f("fk_servers_os_id_operating_systems")
        ),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_servers_plan_id_plans")),
        sa.ForeignKeyConstraint(
            ["ssh_key_id"],
            ["ssh_keys.id"],
            name=op.f("fk_servers_ssh_key_id_ssh_keys"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_servers")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_servers_account_visible", ["account_id", "deleted_at", "id"], unique=False
        )
        batch_op.create_index("ix_servers_status", ["status"], unique=False)

    op.create_table(
        "actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_actions_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name=op.f("fk_actions_server_id_servers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actions")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.create_index("ix_actions_server", ["server_id", "id"], unique=False)

    op.create_table(
        "credit_transactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("balance_after_cents", sa.BigInteger(), nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_credit_transactions_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name=op.f("fk_credit_transactions_server_id_servers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_transactions")),
        sa.UniqueConstraint("reference", name=op.f("uq_credit_transactions_reference")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("credit_transactions", schema=None) as batch_op:
        batch_op.create_index("ix_credit_transactions_account", ["account_id", "id"], unique=False)

    op.create_table(
        "ip_allocations",
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("host_index", sa.BigInteger(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("family", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=False),
        sa.Column("allocated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pool_id"], ["ip_pools.id"], name=op.f("fk_ip_allocations_pool_id_ip_pools")
        ),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name=op.f("fk_ip_allocations_server_id_servers")
        ),
        sa.PrimaryKeyConstraint("pool_id", "host_index", name=op.f("pk_ip_allocations")),
        sa.UniqueConstraint("address", name=op.f("uq_ip_allocations_address")),
        sa.UniqueConstraint("server_id", "family", name="uq_ip_allocations_server"),
    )
    op.create_table(
        "server_usage",
        sa.Column("server_id", sa.Integer(), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=False),
        sa.Column("memory_used_mb", sa.Integer(), nullable=False),
        sa.Column("disk_used_gb", sa.Integer(), nullable=False),
        sa.Column("bandwidth_used_gb", sa.Integer(), nullable=False),
        sa.Column("sampled_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name=op.f("fk_server_usage_server_id_servers")
        ),
        sa.PrimaryKeyConstraint("server_id", name=op.f("pk_server_usage")),
    )

    _seed_catalog()


PLANS = [
    # id, name, vcpus, memory MB, storage GB, bandwidth GB, monthly cents, backups cents
    (1, "Standard VPS", 2, 4096, 80, 2048, 2400, 480),
    (2, "Performance VPS", 4, 8192, 160, 4096, 4800, 960),
    (3, "Starter VPS", 1, 1024, 25, 1024, 600, 120),
]
OPERATING_SYSTEMS = [
    (3, "Debian 12", "debian-12"),
    (5, "Ubuntu 22.04 LTS", "ubuntu-22.04"),
    (6, "Ubuntu 24.04 LTS", "ubuntu-24.04"),
    (7, "Rocky Linux 9", "rocky-9"),
]
LOCATIONS = [(1, "us-west", "US West"), (2, "us-east", "US East")]
# Documentation ranges only (RFC 5737, RFC 3849): safe defaults that route nowhere.
IP_POOLS = [
    # id, location, family, cidr, first host index, last host index
    (1, 1, 4, "203.0.113.0/24", 10, 254),
    (2, 1, 6, "2001:db8:1::/64", 16, 2**32 - 1),
    (3, 2, 4, "198.51.100.0/24", 10, 254),
    (4, 2, 6, "2001:db8:2::/64", 16, 2**32 - 1),
]


def _seed_catalog() -> None:
    plans = sa.table(
        "plans",
        *(
            sa.column(c)
            for c in (
                "id",
                "name",
                "vcpus",
                "memory_mb",
                "storage_gb",
                "bandwidth_gb",
                "monthly_price_cents",
                "backups_monthly_price_cents",
                "available",
            )
        ),
    )
    systems = sa.table(
        "operating_systems", *(sa.column(c) for c in ("id", "name", "slug", "available"))
    )
    locations = sa.table("locations", *(sa.column(c) for c in ("id", "code", "name", "available")))
    pools = sa.table(
        "ip_pools",
        *(sa.column(c) for c in ("id", "location_id", "family", "cidr", "first_host", "last_host")),
    )
    keys = (
        "id",
        "name",
        "vcpus",
        "memory_mb",
        "storage_gb",
        "bandwidth_gb",
        "monthly_price_cents",
        "backups_monthly_price_cents",
    )
    op.bulk_insert(plans, [dict(zip(keys, p, strict=True), available=True) for p in PLANS])
    op.bulk_insert(
        systems,
        [{"id": i, "name": n, "slug": s, "available": True} for i, n, s in OPERATING_SYSTEMS],
    )
    op.bulk_insert(
        locations, [{"id": i, "code": c, "name": n, "available": True} for i, c, n in LOCATIONS]
    )
    pool_keys = ("id", "location_id", "family", "cidr", "first_host", "last_host")
    op.bulk_insert(pools, [dict(zip(pool_keys, p, strict=True)) for p in IP_POOLS])
    if op.get_bind().dialect.name == "postgresql":
        # Explicit ids do not advance PostgreSQL sequences; later inserts must not collide.
        for table in ("plans", "operating_systems", "locations", "ip_pools"):
            op.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )


def downgrade() -> None:
    op.drop_table("server_usage")
    op.drop_table("ip_allocations")
    with op.batch_alter_table("credit_transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_transactions_account")

    op.drop_table("credit_transactions")
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.drop_index("ix_actions_server")

    op.drop_table("actions")
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.drop_index("ix_servers_status")
        batch_op.drop_index("ix_servers_account_visible")

    op.drop_table("servers")
    with op.batch_alter_table("ssh_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ssh_keys_account_id"))

    op.drop_table("ssh_keys")
    with op.batch_alter_table("ip_pools", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ip_pools_location_id"))

    op.drop_table("ip_pools")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_account_id"))

    op.drop_table("api_tokens")
    op.drop_table("plans")
    op.drop_table("operating_systems")
    op.drop_table("locations")
    op.drop_table("accounts")
