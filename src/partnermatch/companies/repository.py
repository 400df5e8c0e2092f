from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import ColumnElement, exists, func, select

from partnermatch.companies.models import Company, CompanySector, CompanyTargetCity
from partnermatch.db import contains_text
from partnermatch.sectors.repository import code_matches

SORTABLE = frozenset({"name", "registered_at", "employees", "founded", "created_at", "updated_at"})


@dataclass(frozen=True)
class CompanyFilters:
    sector: str | None = None
    city: str | None = None
    status: str | None = None
    export_experience: str | None = None
    q: str | None = None
    registered_before: datetime | None = None
    order_by: str = "name"
    descending: bool = False
    limit: int = 20
    offset: int = 0


class CompanyRepository(SQLAlchemyAsyncRepository[Company]):
    model_type = Company

    def _conditions(self, f: CompanyFilters) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if f.sector:
            conditions.append(
                exists().where(
                    CompanySector.company_id == Company.id, code_matches(CompanySector.code, f.sector)
                )
            )
        if f.city:
            conditions.append(
                exists().where(
                    CompanyTargetCity.company_id == Company.id, CompanyTargetCity.city_id == f.city
                )
            )
        if f.status:
            conditions.append(Company.status == f.status)
        if f.export_experience:
            conditions.append(Company.export_experience == f.export_experience)
        if f.registered_before:
            conditions.append(Company.registered_at < f.registered_before)
        if f.q:
            conditions.append(contains_text(f.q, Company.name, Company.description))
        return conditions

    async def search(self, f: CompanyFilters) -> tuple[Sequence[Company], int]:
        conditions = self._conditions(f)
        total = await self.session.scalar(select(func.count()).select_from(Company).where(*conditions))
        column = getattr(Company, f.order_by)
        statement = (
            select(Company)
            .where(*conditions)
            .order_by(column.desc() if f.descending else column.asc(), Company.id)
            .limit(f.limit)
            .offset(f.offset)
        )
        rows = await self.session.scalars(statement)
        return rows.all(), total or 0

    async def by_external_id(self, external_id: str) -> Company | None:
        return await self.get_one_or_none(external_id=external_id)
