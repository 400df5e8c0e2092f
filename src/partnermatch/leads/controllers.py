from datetime import UTC, date, datetime
from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, access
from partnermatch.enums import LeadKind, LeadSource, LeadStatus
from partnermatch.leads.models import Lead
from partnermatch.leads.repository import SORTABLE, LeadFilters
from partnermatch.leads.schemas import LeadCreate, LeadRead, LeadStatusChange, LeadUpdate
from partnermatch.leads.service import LeadService, days_to_deadline, is_open
from partnermatch.mapping import read_as
from partnermatch.pagination import (
    Limit,
    Offset,
    OrderBy,
    Page,
    SectorFilter,
    TextQuery,
    list_page,
    page_window,
    sort_order,
)

Budget = Annotated[int | None, QueryParameter(ge=0, le=10**15)]


async def provide_lead_service(db_session: NamedDependency[AsyncSession]) -> LeadService:
    return LeadService(session=db_session)


def lead_read(lead: Lead, now: datetime) -> LeadRead:
    return read_as(
        lead,
        LeadRead,
        city=lead.city_id,
        is_open=is_open(lead, now),
        days_to_deadline=days_to_deadline(lead, now),
    )


def now() -> datetime:
    return datetime.now(UTC)


class LeadController(Controller):
    path = "/api/v1/leads"
    tags = ["leads"]
    opt = access(Access.STAFF)
    dependencies = {"leads": Provide(provide_lead_service)}

    @get("/", summary="Search business leads")
    async def list_leads(
        self,
        leads: NamedDependency[LeadService],
        sector: SectorFilter = None,
        city: Annotated[str | None, QueryParameter(description="Partner city id", max_length=64)] = None,
        kind: FromQuery[LeadKind | None] = None,
        status: FromQuery[LeadStatus | None] = None,
        source: FromQuery[LeadSource | None] = None,
        open_at: Annotated[
            date | None,
            QueryParameter(
                description="Leads open on this day: status open, published by its end and "
                "deadline (if any) not before it; days are Berlin days"
            ),
        ] = None,
        min_budget: Budget = None,
        max_budget: Budget = None,
        q: TextQuery = None,
        order_by: OrderBy = "-published_at",
        limit: Limit = None,
        offset: Offset = 0,
    ) -> Page[LeadRead]:
        window = page_window(limit, offset)
        filters = LeadFilters(
            sector=sector,
            city=city,
            kind=kind,
            status=status,
            source=source,
            open_at=open_at,
            min_budget=min_budget,
            max_budget=max_budget,
            q=q,
            **sort_order(order_by, SORTABLE),
            **window,
        )
        moment = now()
        return await list_page(leads.search(filters), window, lambda row: lead_read(row, moment))

    @post("/", summary="Register a lead (published now unless published_at is given)")
    async def create_lead(self, leads: NamedDependency[LeadService], data: JSONBody[LeadCreate]) -> LeadRead:
        return lead_read(await leads.create_lead(data), now())

    @get("/{lead_id:uuid}", summary="One lead")
    async def get_lead(self, leads: NamedDependency[LeadService], lead_id: FromPath[UUID]) -> LeadRead:
        return lead_read(await leads.get_lead(lead_id), now())

    @patch("/{lead_id:uuid}", summary="Change a lead")
    async def update_lead(
        self, leads: NamedDependency[LeadService], lead_id: FromPath[UUID], data: JSONBody[LeadUpdate]
    ) -> LeadRead:
        return lead_read(await leads.change(lead_id, data), now())

    @post(
        "/{lead_id:uuid}/status", summary="Close or reopen a lead (reopening needs a deadline not yet passed)"
    )
    async def change_status(
        self,
        leads: NamedDependency[LeadService],
        lead_id: FromPath[UUID],
        data: JSONBody[LeadStatusChange],
    ) -> LeadRead:
        return lead_read(await leads.set_status(lead_id, data.status), now())

    @delete("/{lead_id:uuid}", summary="Archive a lead: it is closed and kept for history", status_code=200)
    async def archive_lead(self, leads: NamedDependency[LeadService], lead_id: FromPath[UUID]) -> LeadRead:
        return lead_read(await leads.archive(lead_id), now())
