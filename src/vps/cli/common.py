"""Helpers shared by the CLI commands: settings, a database session, failing clearly."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from vps.config import Settings
from vps.db import migrate
from vps.db.engine import Database
from vps.domain.errors import DomainError
from vps.runtime import build_database

T = TypeVar("T")


def settings() -> Settings:
    return Settings()


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def run_in_transaction(action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate if needed, then run `action` in one write transaction."""

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
    async def main() -> T:
        database = build_database(settings())
        try:
            return await action(database)
        finally:
            await database.dispose()

    return asyncio.run(main())
