from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import ColumnElement, func, select

from partnermatch.audit.models import AuditEvent


@dataclass(frozen=True)
class AuditFilters:
    entity: str | None = None
    entity_id: str | None = None
    actor: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 20
    offset: int = 0


class AuditRepository(SQLAlchemyAsyncRepository[AuditEvent]):
    model_type = AuditEvent

    async def search(self, f: AuditFilters) -> tuple[Sequence[AuditEvent], int]:
        conditions: list[ColumnElement[bool]] = []
        if f.entity:
            conditions.append(AuditEvent.entity == f.entity)
        if f.entity_id:
            conditions.append(AuditEvent.entity_id == f.entity_id)
        if f.actor:
            conditions.append(AuditEvent.actor_user_id == f.actor)
        if f.since:
            conditions.append(AuditEvent.at >= f.since)
        if f.until:
            conditions.append(AuditEvent.at < f.until)
        total = await self.session.scalar(select(func.count()).select_from(AuditEvent).where(*conditions))
        rows = await self.session.scalars(
            select(AuditEvent)
            .where(*conditions)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(f.limit)
            .offset(f.offset)
        )
        return rows.all(), total or 0
