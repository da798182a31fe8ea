from __future__ import annotations

from typing import NamedTuple, TypeVar

from sqlalchemy import bindparam, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from vps.db.models import IpPool, Location, OperatingSystem, Plan
from vps.db.rows import execute
from vps.db.types import storable_id, storable_text

CatalogModel = TypeVar("CatalogModel", Plan, OperatingSystem, Location)


class Offer(NamedTuple):
    """What a create needs of the catalog: the plan, the system and the location, all three
    available."""

    plan_id: int
    plan_name: str
    vcpus: int
    memory_mb: int
    storage_gb: int
    bandwidth_gb: int
    monthly_price_cents: int
    backups_monthly_price_cents: int
    os_id: int
    os_name: str
    location_id: int
    location_code: str


class Pool(NamedTuple):
    """An address pool, as the allocator needs it (read for every build)."""

    id: int
    family: int
    cidr: str
    first_host: int
    last_host: int


_POOLS = (
    select(IpPool.id, IpPool.family, IpPool.cidr, IpPool.first_host, IpPool.last_host)
    .where(IpPool.location_id == bindparam("location_id"))
    .order_by(IpPool.id)
)

# The three lookups of every create in one statement (a cross join of three single-row
# lookups, on purpose), built once.
_OFFER = (
    select(
        Plan.id,
        Plan.name,
        Plan.vcpus,
        Plan.memory_mb,
        Plan.storage_gb,
        Plan.bandwidth_gb,
        Plan.monthly_price_cents,
        Plan.backups_monthly_price_cents,
        OperatingSystem.id,
        OperatingSystem.name,
        Location.id,
        Location.code,
    )
    .select_from(Plan)
    .join(OperatingSystem, true())
    .join(Location, true())
    .where(
        Plan.id == bindparam("plan_id"),
        Plan.available.is_(True),
        OperatingSystem.id == bindparam("os_id"),
        OperatingSystem.available.is_(True),
        Location.code == bindparam("location"),
        Location.available.is_(True),
    )
)


class CatalogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, model: type[CatalogModel], item_id: int) -> CatalogModel | None:
        if not storable_id(item_id):
            return None
        return await self.session.get(model, item_id)

    async def offer(self, plan_id: int, os_id: int, location: str) -> Offer | None:
        """The plan, system and location, when all three exist and are available (the
        caller looks at each one apart to say which is not)."""
        if not (storable_id(plan_id) and storable_id(os_id) and storable_text(location, 63)):
            return None
        result = await execute(
            self.session, _OFFER, {"plan_id": plan_id, "os_id": os_id, "location": location}
        )
        row = result.first()
        return None if row is None else Offer._make(row)

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

    async def pools(self, location_id: int) -> list[Pool]:
        result = await execute(self.session, _POOLS, {"location_id": location_id})
        return [Pool._make(row) for row in result.all()]
