from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import Location, OperatingSystem, Plan
from vps.db.repositories.catalog import CatalogRepository


async def plans(session: AsyncSession) -> list[Plan]:
    return await CatalogRepository(session).all(Plan)


async def operating_systems(session: AsyncSession) -> list[OperatingSystem]:
    return await CatalogRepository(session).all(OperatingSystem)


async def locations(session: AsyncSession) -> list[Location]:
    return await CatalogRepository(session).all(Location)


async def everything(
    session: AsyncSession,
) -> tuple[list[Plan], list[OperatingSystem], list[Location]]:
    """The whole catalog including retired entries (for operators)."""
    catalog = CatalogRepository(session)
    return (
        await catalog.all(Plan, available_only=False),
        await catalog.all(OperatingSystem, available_only=False),
        await catalog.all(Location, available_only=False),
    )
