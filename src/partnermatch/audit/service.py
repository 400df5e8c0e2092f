from collections.abc import Sequence
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.audit.models import AuditEvent
from partnermatch.audit.repository import AuditFilters, AuditRepository
from partnermatch.clock import parse_instant


class AuditService:
    def __init__(self, session: AsyncSession) -> None:
        self.repository = AuditRepository(session=session)

    async def search(
        self,
        *,
        entity: str | None,
        entity_id: str | None,
        actor: UUID | None,
        since: str | None,
        until: str | None,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[AuditEvent], int]:
        filters = AuditFilters(
            entity=entity,
            entity_id=entity_id,
            actor=actor,
            since=parse_instant("since", since),
            until=parse_instant("until", until),
            limit=limit,
            offset=offset,
        )
        return await self.repository.search(filters)
