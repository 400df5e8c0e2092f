from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import Boolean, ColumnElement, bindparam, exists, func, literal, or_, select, true, union_all

from partnermatch.access import Principal
from partnermatch.companies.models import Company, CompanySector, CompanyTargetCity
from partnermatch.db import contains_text
from partnermatch.enums import CompanyStatus
from partnermatch.sectors.repository import code_matches


@dataclass(frozen=True)
class CompanyStanding:
    """Who a company is and where its registration stands: what most pages show of it, read as four
    columns instead of the whole profile with its sectors and target cities."""

    id: UUID
    name: str
    status: str
    status_reason: str | None


@dataclass(frozen=True)
class CompanyProfile:
    """A company as its API read shows it, read as columns: no ORM objects, no identity map."""

    id: UUID
    external_id: str | None
    name: str
    status: str
    status_reason: str | None
    employees: int
    founded: int
    export_experience: str
    languages: list[str]
    description: str
    contact_email: str | None
    website: str | None
    registered_at: datetime
    created_at: datetime
    updated_at: datetime
    sectors: list[str]
    target_cities: list[str]


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


def visible_to(principal: Principal) -> ColumnElement[bool]:
    """The one rule for which companies a user may see and change: staff all, a member their own.

    Another company's id is then simply not found (404), like an id that does not exist."""
    if principal.is_staff:
        return true()
    return Company.id == principal.company_id


# The same rule with its principal as bound parameters (values: `visibility`), for statements built
# once: the hot reads build nothing per request, and SQLAlchemy reuses their compiled form.
VISIBLE_TO_BOUND = or_(
    bindparam("sees_all", type_=Boolean), Company.id == bindparam("own_company_id", required=False)
)


def visibility(principal: Principal) -> dict[str, object]:
    return {"sees_all": principal.is_staff, "own_company_id": principal.company_id}


_PROFILE = select(
    *(
        Company.__table__.c[f.name]
        for f in fields(CompanyProfile)
        if f.name not in ("sectors", "target_cities")
    )
).where(Company.id == bindparam("company_id"), VISIBLE_TO_BOUND)
# Sectors in their order (the first is primary), then target cities by id, as the ORM's relationships.
_SECTOR, _CITY = 0, 1
_sector_links = select(
    literal(_SECTOR).label("kind"),
    CompanySector.position.label("position"),
    CompanySector.code.label("value"),
).where(CompanySector.company_id == bindparam("company_id"))
_city_links = select(
    literal(_CITY).label("kind"), literal(0).label("position"), CompanyTargetCity.city_id.label("value")
).where(CompanyTargetCity.company_id == bindparam("company_id"))
_union = union_all(_sector_links, _city_links).subquery()
_PROFILE_LINKS = select(_union.c.kind, _union.c.value).order_by(
    _union.c.kind, _union.c.position, _union.c.value
)


class CompanyRepository(SQLAlchemyAsyncRepository[Company]):
    model_type = Company

    async def get_visible(self, company_id: UUID, principal: Principal) -> Company | None:
        company: Company | None = await self.session.scalar(
            select(Company).where(Company.id == company_id, visible_to(principal))
        )
        return company

    async def standing(self, company_id: UUID, principal: Principal) -> CompanyStanding | None:
        row = (
            await self.session.execute(
                select(Company.id, Company.name, Company.status, Company.status_reason).where(
                    Company.id == company_id, visible_to(principal)
                )
            )
        ).one_or_none()
        return None if row is None else CompanyStanding(*row)

    async def profile(self, company_id: UUID, principal: Principal) -> CompanyProfile | None:
        """The company's read in two round trips (its row; its sectors and target cities together)
        instead of the ORM's three."""
        connection = await self.session.connection()
        row = (
            await connection.execute(_PROFILE, {"company_id": company_id, **visibility(principal)})
        ).first()
        if row is None:
            return None
        links = (await connection.execute(_PROFILE_LINKS, {"company_id": company_id})).all()
        sectors = [value for kind, value in links if kind == _SECTOR]
        cities = [value for kind, value in links if kind == _CITY]
        columns: dict[str, Any] = dict(row._mapping)
        return CompanyProfile(**columns, sectors=sectors, target_cities=cities)

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

    async def first_approved(self) -> Company | None:
        company: Company | None = await self.session.scalar(
            select(Company)
            .where(Company.status == CompanyStatus.APPROVED.value)
            .order_by(Company.name, Company.id)
            .limit(1)
        )
        return company

    async def by_external_id(self, external_id: str) -> Company | None:
        return await self.get_one_or_none(external_id=external_id)
