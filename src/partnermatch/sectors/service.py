from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session

from partnermatch.errors import FieldIssue, InvalidInput, NotFound
from partnermatch.sectors.models import Sector
from partnermatch.sectors.nace import level_of
from partnermatch.sectors.repository import SectorRepository

MAX_SECTORS = 5


class SectorService(SQLAlchemyAsyncRepositoryService[Sector, SectorRepository]):
    repository_type = SectorRepository

    async def get_by_code(self, code: str) -> Sector:
        sector = await self.repository.get_one_or_none(code=code)
        if sector is None:
            raise NotFound.for_id("NACE Rev. 2 sector", code)
        return sector

    async def search(
        self,
        q: str | None,
        *,
        level: str | None = None,
        parent: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[Sequence[Sector], int]:
        return await self.repository.search(q=q, level=level, parent=parent, limit=limit, offset=offset)

    async def names_of(self, codes: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Code -> (English title, German title) of the given codes that exist."""
        return {s.code: (s.name, s.name_de) for s in await self.repository.by_codes(codes)}

    async def validate_codes(self, field: str, codes: Sequence[str], *, min_count: int = 1) -> list[str]:
        """Codes a company, lead or mission may carry: 1..5 known division, group or class codes, no repeats."""
        issues: list[FieldIssue] = []
        if not min_count <= len(codes) <= MAX_SECTORS:
            issues.append(FieldIssue(field, f"must hold {min_count} to {MAX_SECTORS} NACE Rev. 2 codes"))
        if len(set(codes)) != len(codes):
            issues.append(FieldIssue(field, "must not repeat a code"))
        known = await self.repository.existing_codes(codes)
        for index, code in enumerate(codes):
            level = level_of(code)
            if level == "section":
                issues.append(
                    FieldIssue(f"{field}[{index}]", f"{code} is a section; give a division, group or class")
                )
            elif code not in known:
                issues.append(FieldIssue(f"{field}[{index}]", f"{code!r} is not a NACE Rev. 2 code"))
        if issues:
            raise InvalidInput("; ".join(f"{i.field}: {i.rule}" for i in issues), issues=issues)
        return list(codes)


class SectorLink(Protocol):
    """A row that gives a company, lead or mission one of its ordered sector codes (0 is the primary)."""

    position: int
    code: str


Link = TypeVar("Link", bound=SectorLink)


class HasSectorLinks(Protocol[Link]):
    sector_links: list[Link]


def sector_links(link: Callable[..., Link], codes: Sequence[str]) -> list[Link]:
    """The link rows of ``codes`` in their order."""
    return [link(position=position, code=code) for position, code in enumerate(codes)]


async def replace_sector_links(
    session: AsyncSession | async_scoped_session[AsyncSession],
    owner: HasSectorLinks[Link],
    link: Callable[..., Link],
    codes: Sequence[str],
) -> None:
    # The removal is flushed first: reordering codes would otherwise collide on (owner, code).
    owner.sector_links.clear()
    await session.flush()
    owner.sector_links = sector_links(link, codes)
