from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, Principal, access, needs_verified_email
from partnermatch.companies.repository import SORTABLE, CompanyFilters
from partnermatch.companies.schemas import CompanyCreate, CompanyRead, CompanyUpdate, StatusChange
from partnermatch.companies.service import CompanyService
from partnermatch.enums import CompanyStatus, ExportExperience
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


async def provide_company_service(db_session: NamedDependency[AsyncSession]) -> CompanyService:
    return CompanyService(session=db_session)


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
        window = page_window(limit, offset)
        filters = CompanyFilters(
            sector=sector,
            city=city,
            status=status,
            export_experience=export_experience,
            q=q,
            **sort_order(order_by, SORTABLE),
            **window,
        )
        return await list_page(companies.search(filters), window, lambda row: read_as(row, CompanyRead))

    @post("/", summary="Register a company (starts as pending)")
    async def create_company(
        self, companies: NamedDependency[CompanyService], data: JSONBody[CompanyCreate]
    ) -> CompanyRead:
        return read_as(await companies.register(data), CompanyRead)

    @get("/{company_id:uuid}", summary="One company (members: their own)", opt=access(Access.MEMBER))
    async def get_company(
        self,
        companies: NamedDependency[CompanyService],
        principal: NamedDependency[Principal],
        company_id: FromPath[UUID],
    ) -> CompanyRead:
        return read_as(await companies.profile(company_id, principal), CompanyRead)

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
        return read_as(await companies.change(company_id, data, principal), CompanyRead)

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
        return read_as(await companies.set_status(company_id, data, principal), CompanyRead)

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
        return read_as(await companies.archive(company_id, principal), CompanyRead)
