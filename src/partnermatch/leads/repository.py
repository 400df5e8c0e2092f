from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import ColumnElement, and_, exists, func, or_, select

from partnermatch.db import contains_text
from partnermatch.enums import LeadStatus
from partnermatch.leads.models import Lead, LeadSector
from partnermatch.sectors.repository import code_matches

SORTABLE = frozenset({"published_at", "deadline", "title", "budget_eur", "created_at", "updated_at"})


@dataclass(frozen=True)
class LeadFilters:
    sector: str | None = None
    city: str | None = None
    kind: str | None = None
    status: str | None = None
    source: str | None = None
    open_at: date | None = None
    # Set by the service from open_at: the instant that day ends in Berlin.
    published_before: datetime | None = None
    min_budget: int | None = None
    max_budget: int | None = None
    q: str | None = None
    order_by: str = "published_at"
    descending: bool = True
    limit: int = 20
    offset: int = 0


class LeadRepository(SQLAlchemyAsyncRepository[Lead]):
    model_type = Lead

    def _conditions(self, f: LeadFilters) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if f.sector:
            conditions.append(
                exists().where(LeadSector.lead_id == Lead.id, code_matches(LeadSector.code, f.sector))
            )
        if f.city:
            conditions.append(Lead.city_id == f.city)
        if f.kind:
            conditions.append(Lead.kind == f.kind)
        if f.status:
            conditions.append(Lead.status == f.status)
        if f.source:
            conditions.append(Lead.source == f.source)
        if f.open_at is not None:
            conditions.append(Lead.status == LeadStatus.OPEN.value)
            conditions.append(or_(Lead.deadline.is_(None), Lead.deadline >= f.open_at))
        if f.published_before is not None:
            conditions.append(Lead.published_at < f.published_before)
        if f.min_budget is not None:
            conditions.append(Lead.budget_eur >= f.min_budget)
        if f.max_budget is not None:
            conditions.append(Lead.budget_eur <= f.max_budget)
        if f.q:
            conditions.append(contains_text(f.q, Lead.title, Lead.organization, Lead.description))
        return conditions

    async def search(self, f: LeadFilters) -> tuple[Sequence[Lead], int]:
        conditions = self._conditions(f)
        total = await self.session.scalar(select(func.count()).select_from(Lead).where(*conditions))
        column = getattr(Lead, f.order_by)
        # Deadline and budget may be null; SQLite and PostgreSQL disagree on where nulls go unless told.
        ordering = (column.desc() if f.descending else column.asc()).nulls_last()
        statement = (
            select(Lead).where(*conditions).order_by(ordering, Lead.id).limit(f.limit).offset(f.offset)
        )
        rows = await self.session.scalars(statement)
        return rows.all(), total or 0

    async def by_external_id(self, external_id: str) -> Lead | None:
        return await self.get_one_or_none(external_id=external_id)

    async def any_expired(self, today: date) -> bool:
        """Whether an open lead's deadline lies before ``today`` (a Berlin date)."""
        found = await self.session.scalar(select(Lead.id).where(_expired(today)).limit(1))
        return found is not None

    async def expired_ids(self, today: date, limit: int) -> list[UUID]:
        """Up to ``limit`` open leads whose deadline lies before ``today``, oldest deadline first. On
        PostgreSQL they are locked, and leads another transaction holds are skipped (the next run takes
        them); SQLite has no row locks, its transaction holds the database."""
        rows = await self.session.scalars(
            select(Lead.id)
            .where(_expired(today))
            .order_by(Lead.deadline, Lead.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(rows.all())


def _expired(today: date) -> ColumnElement[bool]:
    # A deadline on day D holds through the end of D in Berlin (leads.service.deadline_passed).
    return and_(Lead.status == LeadStatus.OPEN.value, Lead.deadline < today)
