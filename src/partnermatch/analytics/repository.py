"""Analytics queries: every figure is a GROUP BY in the database, the same on SQLite and PostgreSQL."""

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Date, Select, case, cast, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.analytics.schemas import FunnelGroup
from partnermatch.companies.models import Company, CompanySector, CompanyTargetCity
from partnermatch.enums import CompanyStatus, LeadStatus
from partnermatch.interactions.models import Interaction
from partnermatch.leads.models import Lead, LeadSector

FUNNEL = ("impression", "view", "interested", "contacted", "introduced", "deal")

# key -> (companies, leads, open leads)
Counts = dict[str, tuple[int, int, int]]


def division(code: Any) -> ColumnElement[str]:
    """NACE Rev. 2 division: the first two digits of a code ("62.01" -> "62")."""
    return func.substr(code, 1, 2)


def _open(lead_id: Any) -> ColumnElement[Any]:
    return func.count(distinct(case((Lead.status == LeadStatus.OPEN.value, lead_id))))


def _merge(companies: Sequence[Any], leads: Sequence[Any]) -> Counts:
    merged: dict[str, list[int]] = {}
    for key, n in companies:
        merged.setdefault(str(key), [0, 0, 0])[0] = int(n)
    for key, n, open_n in leads:
        row = merged.setdefault(str(key), [0, 0, 0])
        row[1], row[2] = int(n), int(open_n)
    return {key: (c, n, o) for key, (c, n, o) in sorted(merged.items())}


class AnalyticsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _rows(self, statement: Select[Any]) -> Sequence[Any]:
        return (await self.session.execute(statement)).all()

    async def by_city(self) -> Counts:
        companies = await self._rows(
            select(CompanyTargetCity.city_id, func.count(distinct(Company.id)))
            .join(Company, Company.id == CompanyTargetCity.company_id)
            .where(Company.status == CompanyStatus.APPROVED.value)
            .group_by(CompanyTargetCity.city_id)
        )
        leads = await self._rows(
            select(Lead.city_id, func.count(distinct(Lead.id)), _open(Lead.id)).group_by(Lead.city_id)
        )
        return _merge(companies, leads)

    async def by_division(self) -> Counts:
        company_division = division(CompanySector.code)
        companies = await self._rows(
            select(company_division, func.count(distinct(Company.id)))
            .join(Company, Company.id == CompanySector.company_id)
            .where(Company.status == CompanyStatus.APPROVED.value)
            .group_by(company_division)
        )
        lead_division = division(LeadSector.code)
        leads = await self._rows(
            select(lead_division, func.count(distinct(Lead.id)), _open(Lead.id))
            .join(Lead, Lead.id == LeadSector.lead_id)
            .group_by(lead_division)
        )
        return _merge(companies, leads)

    async def by_lead_kind(self) -> Counts:
        leads = await self._rows(
            select(Lead.kind, func.count(distinct(Lead.id)), _open(Lead.id)).group_by(Lead.kind)
        )
        return _merge([], leads)

    def _week(self) -> ColumnElement[Any]:
        """The Monday (UTC) of an interaction's ISO week."""
        if self.session.get_bind().dialect.name == "sqlite":
            return func.date(Interaction.at, "weekday 0", "-6 days")
        return cast(func.date_trunc("week", func.timezone("UTC", Interaction.at)), Date)

    async def funnel(
        self, group: FunnelGroup, since: date | None, until: date | None
    ) -> dict[str, dict[str, int]]:
        """Per group and stage: the company-lead pairs with at least one event of that kind."""
        statement = select(Interaction.kind, Interaction.company_id, Interaction.lead_id)
        if group is FunnelGroup.WEEK:
            key: ColumnElement[Any] = self._week()
        elif group is FunnelGroup.CITY:
            key = Lead.city_id.expression
            statement = statement.join(Lead, Lead.id == Interaction.lead_id)
        else:
            # The company's first sector: each pair falls into exactly one division.
            key = division(CompanySector.code)
            statement = statement.join(
                CompanySector,
                (CompanySector.company_id == Interaction.company_id) & (CompanySector.position == 0),
            )
        conditions: list[ColumnElement[bool]] = [Interaction.kind.in_(FUNNEL)]
        if since is not None:
            conditions.append(Interaction.at >= datetime.combine(since, time(), UTC))
        # The last representable day has no next day: it bounds nothing anyway.
        if until is not None and until < date.max:
            conditions.append(Interaction.at < datetime.combine(until + timedelta(days=1), time(), UTC))
        pairs = statement.add_columns(key.label("key")).where(*conditions).distinct().subquery()
        rows = await self._rows(
            select(pairs.c.key, pairs.c.kind, func.count())
            .group_by(pairs.c.key, pairs.c.kind)
            .order_by(pairs.c.key)
        )
        found: dict[str, dict[str, int]] = {}
        for group_key, kind, n in rows:
            text = str(group_key)[:10] if group is FunnelGroup.WEEK else str(group_key)
            found.setdefault(text, dict.fromkeys(FUNNEL, 0))[kind] = int(n)
        return found
