from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import IpPool, Location, OperatingSystem, Plan
from vps.db.types import storable_id, storable_text

CatalogModel = TypeVar("CatalogModel", Plan, OperatingSystem, Location)


class CatalogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, model: type[CatalogModel], item_id: int) -> CatalogModel | None:
        if not storable_id(item_id):
            return None
        return await self.session.get(model, item_id)

    async def all(
        self, model: type[CatalogModel], *, available_only: bool = True
    ) -> list[CatalogModel]:
        query = select(model).order_by(model.id)
        if available_only:
            query = query.where(model.available.is_(True))
        result = await self.session.execute(query)
        return list(result.scalars())

    async def location_by_code(self, code: str) -> Location | None:
        if not storable_text(code, 63):
            return None
        result = await self.session.execute(select(Location).where(Location.code == code))
        return result.scalar_one_or_none()

    async def os_by_slug(self, slug: str) -> OperatingSystem | None:
        result = await self.session.execute(
            select(OperatingSystem).where(OperatingSystem.slug == slug)
        )
        return result.scalar_one_or_none()

    async def add(self, item: Plan | OperatingSystem | Location | IpPool) -> None:
        self.session.add(item)
        await self.session.flush()

    async def pools(self, location_id: int) -> list[IpPool]:
        result = await self.session.execute(
            select(IpPool).where(IpPool.location_id == location_id).order_by(IpPool.id)
        )
        return list(result.scalars())
