from typing import Annotated
from uuid import UUID

from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, access
from partnermatch.clock import RFC_3339, parse_instant
from partnermatch.enums import InteractionKind
from partnermatch.interactions.models import Interaction
from partnermatch.interactions.repository import InteractionFilters
from partnermatch.interactions.schemas import InteractionCreate, InteractionRead
from partnermatch.interactions.service import InteractionService
from partnermatch.pagination import Limit, Offset, Page, page_size

# Strings, parsed strictly: Litestar's lax datetime parsing would read `0.5` as a Unix timestamp.
Since = Annotated[
    str | None,
    QueryParameter(
        description="From this time on (inclusive), RFC 3339", pattern=RFC_3339, format="date-time"
    ),
]
Until = Annotated[
    str | None,
    QueryParameter(
        description="Before this time (exclusive), RFC 3339", pattern=RFC_3339, format="date-time"
    ),
]


async def provide_interaction_service(db_session: NamedDependency[AsyncSession]) -> InteractionService:
    return InteractionService(session=db_session)


def to_read(i: Interaction) -> InteractionRead:
    return InteractionRead(
        id=i.id,
        company_id=i.company_id,
        lead_id=i.lead_id,
        kind=InteractionKind(i.kind),
        at=i.at,
        position=i.position,
    )


class InteractionController(Controller):
    path = "/api/v1/interactions"
    tags = ["interactions"]
    opt = access(Access.STAFF)
    dependencies = {"interactions": Provide(provide_interaction_service)}

    @get("/", summary="What companies did with leads, newest first")
    async def list_interactions(
        self,
        interactions: NamedDependency[InteractionService],
        company_id: FromQuery[UUID | None] = None,
        lead_id: FromQuery[UUID | None] = None,
        kind: FromQuery[InteractionKind | None] = None,
        since: Since = None,
        until: Until = None,
        limit: Limit = None,
        offset: Offset = 0,
    ) -> Page[InteractionRead]:
        filters = InteractionFilters(
            company_id=company_id,
            lead_id=lead_id,
            kind=kind,
            since=parse_instant("since", since),
            until=parse_instant("until", until),
            limit=page_size(limit),
            offset=offset,
        )
        rows, total = await interactions.search(filters)
        return Page(items=[to_read(i) for i in rows], total=total, limit=filters.limit, offset=offset)

    @post("/", summary="Record what a company did with a lead")
    async def record_interaction(
        self, interactions: NamedDependency[InteractionService], data: JSONBody[InteractionCreate]
    ) -> InteractionRead:
        return to_read(await interactions.record(data))
