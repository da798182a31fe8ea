"""Run the packaged Alembic migrations on a database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from vps.db.engine import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works: it only keeps two processes from migrating one PostgreSQL at once.
_PG_MIGRATION_LOCK = 7_404_001


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
    command.upgrade(alembic_config(connection), "head")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(database: Database) -> None:
    """Bring the schema to the newest revision; safe to run from several processes."""
    async with database.engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def is_up_to_date(database: Database) -> bool:
    async with database.engine.connect() as connection:
        current = await connection.run_sync(_current)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    return current == head
