from collections.abc import Sequence
from typing import Any

import msgspec
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService

from partnermatch.cities.models import City
from partnermatch.cities.repository import CityRepository
from partnermatch.cities.schemas import CityCreate, CityUpdate
from partnermatch.enums import CityStatus
from partnermatch.errors import Conflict, FieldIssue, InvalidInput, NotFound
from partnermatch.reference import check_country, check_languages


class CityService(SQLAlchemyAsyncRepositoryService[City, CityRepository]):
    repository_type = CityRepository

    async def get_city(self, city_id: str) -> City:
        city = await self.repository.get_one_or_none(id=city_id)
        if city is None:
            raise NotFound.for_id("partner city", city_id)
        return city

    async def list_cities(self) -> Sequence[City]:
        return await self.repository.get_many(order_by=[(City.name, False)])

    async def create_city(self, data: CityCreate) -> City:
        check_country(data.country)
        check_languages(data.languages)
        if await self.repository.get_one_or_none(id=data.id) is not None:
            raise Conflict(f"a partner city with id {data.id} exists")
        return await self.repository.add(City(**msgspec.structs.asdict(data)))

    async def update_city(self, city_id: str, data: CityUpdate) -> City:
        city = await self.get_city(city_id)
        changes: dict[str, Any] = {
            k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET
        }
        if "languages" in changes:
            check_languages(changes["languages"])
        if "country" in changes:
            check_country(changes["country"])
        for key, value in changes.items():
            setattr(city, key, value)
        return await self.repository.update(city)

    async def require_active(
        self, field: str, city_ids: Sequence[str], *, allow_suspended: bool = False
    ) -> None:
        """Unknown cities are invalid; suspended ones too where new activity is being created."""
        statuses = await self.repository.statuses(city_ids)
        issues: list[FieldIssue] = []
        for index, city_id in enumerate(city_ids):
            name = field if len(city_ids) == 1 and not field.endswith("cities") else f"{field}[{index}]"
            if city_id not in statuses:
                issues.append(FieldIssue(name, f"{city_id!r} is not a known partner city"))
            elif statuses[city_id] == CityStatus.SUSPENDED and not allow_suspended:
                issues.append(FieldIssue(name, f"the partnership with {city_id} is suspended"))
        if issues:
            raise InvalidInput("; ".join(f"{i.field}: {i.rule}" for i in issues), issues=issues)
