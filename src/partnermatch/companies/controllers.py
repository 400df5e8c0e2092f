from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, Principal, access, needs_verified_email
from partnermatch.companies.models import Company
from partnermatch.companies.repository import SORTABLE, CompanyFilters
from partnermatch.companies.schemas import CompanyCreate, CompanyRead, CompanyUpdate, StatusChange
from partnermatch.companies.service import CompanyService
from partnermatch.enums import CompanyStatus, ExportExperience
from partnermatch.mail import mailer_for
from partnermatch.pagination import (
    Limit,
    Offset,
    OrderBy,
    Page,
    SectorFilter,
    TextQuery,
    page_size,
    parse_order,
)
from partnermatch.settings import Settings


async def provide_company_service(
    db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> CompanyService:
    return CompanyService(session=db_session, mailer=mailer_for(settings))


def to_read(c: Company) -> CompanyRead:
    return CompanyRead(
        id=c.id,
        external_id=c.external_id,
        name=c.name,
        status=CompanyStatus(c.status),
        status_reason=c.status_reason,
        sectors=c.sectors,
        employees=c.employees,
        founded=c.founded,
        export_experience=ExportExperience(c.export_experience),
        languages=list(c.languages),
        target_cities=c.target_cities,
        description=c.description,
        contact_email=c.contact_email,
        website=c.website,
        registered_at=c.registered_at,
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


class CompanyController(Controller):
    path = "/api/v1/companies"
    tags = ["companies"]
    # Members reach their own company only: see repository.visible_to.
    opt = access(Access.STAFF)
    dependencies = {"companies": Provide(provide_company_service)}

    @get("/", summary="Search Berlin companies")
    async def list_companies(
        self,
        companies: NamedDependency[CompanyService],
        sector: SectorFilter = None,
        city: Annotated[
            str | None, QueryParameter(description="Target partner city id", max_length=64)
        ] = None,
        status: FromQuery[CompanyStatus | None] = None,
        export_experience: FromQuery[ExportExperience | None] = None,
        q: TextQuery = None,
        order_by: OrderBy = "name",
        limit: Limit = None,
        offset: Offset = 0,
    ) -> Page[CompanyRead]:
        field, descending = parse_order(order_by, SORTABLE)
        filters = CompanyFilters(
            sector=sector,
            city=city,
            status=status,
            export_experience=export_experience,
            q=q,
            order_by=field,
            descending=descending,
            limit=page_size(limit),
            offset=offset,
        )
        rows, total = await companies.search(filters)
        return Page(items=[to_read(c) for c in rows], total=total, limit=filters.limit, offset=offset)

    @post("/", summary="Register a company (starts as pending)")
    async def create_company(
        self, companies: NamedDependency[CompanyService], data: JSONBody[CompanyCreate]
    ) -> CompanyRead:
        return to_read(await companies.register(data))

    @get("/{company_id:uuid}", summary="One company (members: their own)", opt=access(Access.MEMBER))
    async def get_company(
        self,
        companies: NamedDependency[CompanyService],
        principal: NamedDependency[Principal],
        company_id: FromPath[UUID],
    ) -> CompanyRead:
        return to_read(await companies.get_company(company_id, principal))

    @patch(
        "/{company_id:uuid}",
        summary="Change a company's profile (members: their own, with a verified email address)",
        opt={**access(Access.MEMBER), **needs_verified_email()},
    )
    async def update_company(
        self,
        companies: NamedDependency[CompanyService],
        principal: NamedDependency[Principal],
        company_id: FromPath[UUID],
        data: JSONBody[CompanyUpdate],
    ) -> CompanyRead:
        return to_read(await companies.change(company_id, data, principal))

    @post(
        "/{company_id:uuid}/status",
        summary="Approve, reject (archive with a reason; the members are told by email) or reopen a company",
    )
    async def change_status(
        self,
        companies: NamedDependency[CompanyService],
        principal: NamedDependency[Principal],
        company_id: FromPath[UUID],
        data: JSONBody[StatusChange],
    ) -> CompanyRead:
        return to_read(await companies.set_status(company_id, data, principal))

    @delete(
        "/{company_id:uuid}",
        summary="Archive a company (kept for history, hidden from matching)",
        status_code=200,
    )
    async def archive_company(
        self,
        companies: NamedDependency[CompanyService],
        principal: NamedDependency[Principal],
        company_id: FromPath[UUID],
    ) -> CompanyRead:
        return to_read(await companies.archive(company_id, principal))
