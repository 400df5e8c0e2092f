from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, access
from partnermatch.audit.service import AuditService
from partnermatch.clock import RFC_3339
from partnermatch.mapping import read_as
from partnermatch.pagination import Limit, Offset, Page, list_page, page_window


class AuditEventRead(msgspec.Struct):
    id: UUID
    at: datetime
    actor_user_id: UUID
    actor_token_id: UUID | None
    request: str
    entity: str
    entity_id: str
    operation: str
    changes: dict[str, Any]


async def provide_audit_service(db_session: NamedDependency[AsyncSession]) -> AuditService:
    return AuditService(db_session)


InstantQuery = Annotated[
    str | None, QueryParameter(pattern=RFC_3339, description="RFC 3339 date-time with an offset")
]


class AuditController(Controller):
    """Read only: there is no route that writes, changes or deletes audit events."""

    path = "/api/v1/admin/audit"
    tags = ["admin: audit"]
    opt = access(Access.STAFF)
    dependencies = {"audit": Provide(provide_audit_service)}

    @get("/", summary="Who changed what and when (before/after per changed field), newest first")
    async def list_events(
        self,
        audit: NamedDependency[AuditService],
        entity: Annotated[
            str | None, QueryParameter(description="Table, e.g. `companies`", max_length=64)
        ] = None,
        entity_id: Annotated[str | None, QueryParameter(max_length=200)] = None,
        actor: FromQuery[UUID | None] = None,
        since: InstantQuery = None,
        until: InstantQuery = None,
        limit: Limit = None,
        offset: Offset = 0,
    ) -> Page[AuditEventRead]:
        window = page_window(limit, offset)
        found = audit.search(
            entity=entity, entity_id=entity_id, actor=actor, since=since, until=until, **window
        )
        return await list_page(found, window, lambda row: read_as(row, AuditEventRead))
