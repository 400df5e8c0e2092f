from collections.abc import Iterable

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import select

from partnermatch.cities.models import City


class CityRepository(SQLAlchemyAsyncRepository[City]):
    model_type = City

    async def statuses(self, ids: Iterable[str]) -> dict[str, str]:
        wanted = set(ids)
        if not wanted:
            return {}
        rows = await self.session.execute(select(City.id, City.status).where(City.id.in_(wanted)))
        return dict(rows.tuples().all())
