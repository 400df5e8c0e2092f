from typing import Annotated
from uuid import UUID

from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, Principal, access, needs_verified_email
from partnermatch.clock import RFC_3339, parse_instant
from partnermatch.enums import InteractionKind
from partnermatch.interactions.repository import InteractionFilters
from partnermatch.interactions.schemas import FeedbackCreate, FeedbackRead, InteractionCreate, InteractionRead
from partnermatch.interactions.service import InteractionService
from partnermatch.mapping import read_as
from partnermatch.pagination import Limit, Offset, Page, list_page, page_window

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
        window = page_window(limit, offset)
        filters = InteractionFilters(
            company_id=company_id,
            lead_id=lead_id,
            kind=kind,
            since=parse_instant("since", since),
            until=parse_instant("until", until),
            **window,
        )
        return await list_page(
            interactions.search(filters), window, lambda row: read_as(row, InteractionRead)
        )

    @post("/", summary="Record what a company did with a lead")
    async def record_interaction(
        self, interactions: NamedDependency[InteractionService], data: JSONBody[InteractionCreate]
    ) -> InteractionRead:
        return read_as(await interactions.record(data), InteractionRead)


class FeedbackController(Controller):
    """A company's own record of what it did with its recommendations."""

    path = "/api/v1/companies"
    # Documented with the recommendations the feedback is about.
    tags = ["recommendations"]
    # Members reach their own company only: the service looks it up through repository.visible_to.
    opt = access(Access.MEMBER)
    dependencies = {"interactions": Provide(provide_interaction_service)}

    @post(
        "/{company_id:uuid}/feedback",
        summary="Record what the company did with a recommended lead (members: with a verified email)",
        opt=needs_verified_email(),
    )
    async def feedback(
        self,
        interactions: NamedDependency[InteractionService],
        principal: NamedDependency[Principal],
        company_id: FromPath[UUID],
        data: JSONBody[FeedbackCreate],
    ) -> FeedbackRead:
        return read_as(await interactions.record_feedback(company_id, principal, data), FeedbackRead)
