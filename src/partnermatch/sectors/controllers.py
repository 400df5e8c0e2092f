from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, access
from partnermatch.mapping import read_as
from partnermatch.pagination import MAX_PAGE_SIZE, Offset, Page, list_page, page_window
from partnermatch.sectors.schemas import SectorRead
from partnermatch.sectors.service import SectorService


async def provide_sector_service(db_session: NamedDependency[AsyncSession]) -> SectorService:
    return SectorService(session=db_session)


class SectorController(Controller):
    path = "/api/v1/sectors"
    tags = ["reference data"]
    opt = access(Access.PUBLIC)
    dependencies = {"sectors": Provide(provide_sector_service)}

    @get("/", summary="Search NACE Rev. 2 sectors (for a sector picker)")
    async def list_sectors(
        self,
        sectors: NamedDependency[SectorService],
        q: Annotated[
            str | None,
            QueryParameter(
                description="Words of the English or German name, or a code prefix", max_length=100
            ),
        ] = None,
        level: Annotated[str | None, QueryParameter(pattern="^(section|division|group|class)$")] = None,
        parent: Annotated[
            str | None, QueryParameter(description="Children of this code", max_length=5)
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE)] = 50,
        offset: Offset = 0,
    ) -> Page[SectorRead]:
        window = page_window(limit, offset)
        found = sectors.search(q, level=level, parent=parent, **window)
        return await list_page(found, window, lambda row: read_as(row, SectorRead))

    @get("/{code:str}", summary="One NACE Rev. 2 sector")
    async def get_sector(self, sectors: NamedDependency[SectorService], code: FromPath[str]) -> SectorRead:
        return read_as(await sectors.get_by_code(code), SectorRead)
