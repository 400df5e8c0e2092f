from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService

from partnermatch import events
from partnermatch.access import Principal
from partnermatch.cities.service import CityService
from partnermatch.companies.events import CompanyProfileChanged, CompanyRegistered, CompanyStatusChanged
from partnermatch.companies.models import Company, CompanySector, CompanyTargetCity
from partnermatch.companies.repository import (
    CompanyFilters,
    CompanyProfile,
    CompanyRepository,
    CompanyStanding,
)
from partnermatch.companies.schemas import CompanyCreate, CompanyUpdate, StatusChange
from partnermatch.enums import CompanyStatus
from partnermatch.errors import Conflict, NotFound
from partnermatch.reference import check_languages
from partnermatch.sectors.service import SectorService, replace_sector_links, sector_links


class CompanyService(SQLAlchemyAsyncRepositoryService[Company, CompanyRepository]):
    """Registration, profile and status of Berlin companies. Each change is published as an event
    (``companies/events.py``): recommendations and account mail follow it without this service knowing."""

    repository_type = CompanyRepository

    async def get_company(self, company_id: UUID, principal: Principal) -> Company:
        company = await self.repository.get_visible(company_id, principal)
        if company is None:
            raise NotFound.for_id("company", company_id)
        return company

    async def profile(self, company_id: UUID, principal: Principal) -> CompanyProfile:
        profile = await self.repository.profile(company_id, principal)
        if profile is None:
            raise NotFound.for_id("company", company_id)
        return profile

    async def standing(self, company_id: UUID, principal: Principal) -> CompanyStanding:
        standing = await self.repository.standing(company_id, principal)
        if standing is None:
            raise NotFound.for_id("company", company_id)
        return standing

    async def search(self, filters: CompanyFilters) -> tuple[Sequence[Company], int]:
        return await self.repository.search(filters)

    async def register(
        self, data: CompanyCreate, *, status: CompanyStatus = CompanyStatus.PENDING
    ) -> Company:
        await self._validate(sectors=data.sectors, languages=data.languages, target_cities=data.target_cities)
        if data.external_id and await self.repository.by_external_id(data.external_id):
            raise Conflict(f"a company with external_id {data.external_id!r} exists")
        fields = msgspec.structs.asdict(data)
        sectors, cities = fields.pop("sectors"), fields.pop("target_cities")
        company = Company(**fields, status=status.value, registered_at=datetime.now(UTC))
        company.sector_links = sector_links(CompanySector, sectors)
        company.target_city_links = [CompanyTargetCity(city_id=city) for city in dict.fromkeys(cities)]
        company = await self.repository.add(company)
        await events.publish(self.repository.session, CompanyRegistered(company.id, status))
        return company

    async def change(self, company_id: UUID, data: CompanyUpdate, principal: Principal) -> Company:
        company = await self.get_company(company_id, principal)
        changes: dict[str, Any] = {
            k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET
        }
        changed = set(changes)
        await self._validate(
            sectors=changes.get("sectors"),
            languages=changes.get("languages"),
            target_cities=changes.get("target_cities"),
        )
        if "sectors" in changes:
            await replace_sector_links(
                self.repository.session, company, CompanySector, changes.pop("sectors")
            )
        if "target_cities" in changes:
            wanted = list(dict.fromkeys(changes.pop("target_cities")))
            kept = [link for link in company.target_city_links if link.city_id in wanted]
            have = {link.city_id for link in kept}
            company.target_city_links = kept + [CompanyTargetCity(city_id=c) for c in wanted if c not in have]
        for key, value in changes.items():
            setattr(company, key, value)
        if changed:
            # Set here: a change of sectors or target cities alone writes no column of the company's row,
            # so the audit timestamp would not move, and readers compare it to see whether it changed.
            company.updated_at = datetime.now(UTC)
        company = await self.repository.update(company)
        if changed:
            await events.publish(
                self.repository.session,
                CompanyProfileChanged(company.id, CompanyStatus(company.status), frozenset(changed)),
            )
        return company

    async def set_status(self, company_id: UUID, change: StatusChange, principal: Principal) -> Company:
        company = await self.get_company(company_id, principal)
        previous = CompanyStatus(company.status)
        company.status = change.status.value
        company.status_reason = change.reason
        company = await self.repository.update(company)
        if previous is not change.status:
            await events.publish(
                self.repository.session, CompanyStatusChanged(company.id, previous, change.status)
            )
        return company

    async def archive(self, company_id: UUID, principal: Principal) -> Company:
        return await self.set_status(company_id, StatusChange(status=CompanyStatus.ARCHIVED), principal)

    async def _validate(
        self,
        *,
        sectors: Sequence[str] | None,
        languages: Sequence[str] | None,
        target_cities: Sequence[str] | None,
    ) -> None:
        if sectors is not None:
            await SectorService(session=self.repository.session).validate_codes("sectors", sectors)
        if languages is not None:
            check_languages(languages)
        if target_cities is not None:
            # A company may keep targeting a suspended city; it simply gets no leads there.
            await CityService(session=self.repository.session).require_active(
                "target_cities", target_cities, allow_suspended=True
            )
