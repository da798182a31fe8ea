"""Helpers shared by the CLI commands: settings, a database session, failing clearly.

The configuration and the database layer are imported when a helper runs, not with this
module, so that `vps` user commands (which never touch the database) start fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from vps.config import Settings
    from vps.db.engine import Database

T = TypeVar("T")


def settings() -> Settings:
    from vps.config import Settings

    return Settings()


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def run_in_transaction(action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate if needed, then run `action` in one write transaction."""
    from vps.db import migrate
    from vps.domain.errors import DomainError
    from vps.runtime import build_database

    async def main() -> T:
        database = build_database(settings())
        try:
            await migrate.upgrade(database)
            async with database.write() as session:
                return await action(session)
        finally:
            await database.dispose()

    try:
        return asyncio.run(main())
    except DomainError as error:
        raise fail(error.message) from None


def run_with_database(action: Callable[[Database], Awaitable[T]]) -> T:
    from vps.runtime import build_database

    async def main() -> T:
        database = build_database(settings())
        try:
            return await action(database)
        finally:
            await database.dispose()

    return asyncio.run(main())
