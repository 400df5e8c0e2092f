from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import ColumnElement, func, insert, select

from partnermatch.interactions.models import Interaction


@dataclass(frozen=True)
class InteractionFilters:
    company_id: UUID | None = None
    lead_id: UUID | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 20
    offset: int = 0


class InteractionRepository(SQLAlchemyAsyncRepository[Interaction]):
    model_type = Interaction

    def _conditions(self, f: InteractionFilters) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if f.company_id is not None:
            conditions.append(Interaction.company_id == f.company_id)
        if f.lead_id is not None:
            conditions.append(Interaction.lead_id == f.lead_id)
        if f.kind:
            conditions.append(Interaction.kind == f.kind)
        if f.since is not None:
            conditions.append(Interaction.at >= f.since)
        if f.until is not None:
            conditions.append(Interaction.at < f.until)
        return conditions

    async def search(self, f: InteractionFilters) -> tuple[Sequence[Interaction], int]:
        conditions = self._conditions(f)
        total = await self.session.scalar(select(func.count()).select_from(Interaction).where(*conditions))
        statement = (
            select(Interaction)
            .where(*conditions)
            .order_by(Interaction.at.desc(), Interaction.id.desc())
            .limit(f.limit)
            .offset(f.offset)
        )
        rows = await self.session.scalars(statement)
        return rows.all(), total or 0

    async def leads_seen(
        self, company_ids: Collection[UUID], kind: str, since: datetime
    ) -> set[tuple[UUID, UUID]]:
        """(company, lead) of the events of ``kind`` of these companies since ``since``."""
        rows = await self.session.execute(
            select(Interaction.company_id, Interaction.lead_id).where(
                Interaction.company_id.in_(company_ids), Interaction.kind == kind, Interaction.at >= since
            )
        )
        return set(rows.tuples().all())

    async def insert_seen(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Impressions and views as one statement: Core rather than ORM objects, whose generated ids the
        ORM would fetch back row by row (a digest batch logs hundreds)."""
        if rows:
            await self.session.execute(insert(Interaction), list(rows))

    async def event_exists(self, company_id: UUID, lead_id: UUID, kind: str, at: datetime) -> bool:
        return await self.exists(company_id=company_id, lead_id=lead_id, kind=kind, at=at)
