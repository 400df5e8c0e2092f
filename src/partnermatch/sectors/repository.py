from collections.abc import Iterable, Sequence

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from partnermatch.db import contains_text
from partnermatch.sectors.models import Sector
from partnermatch.sectors.nace import level_of


def code_matches(column: InstrumentedAttribute[str], prefix: str) -> ColumnElement[bool]:
    """`62` matches 62, 62.0 and 62.01; `62.0` matches 62.0 and 62.01; a section letter matches its codes."""
    level = level_of(prefix)
    if level == "section":
        return column.in_(select(Sector.code).where(Sector.section == prefix))
    if level == "division":
        return or_(column == prefix, column.like(f"{prefix}.%"))
    if level == "group":
        return column.like(f"{prefix}%")
    return column == prefix


class SectorRepository(SQLAlchemyAsyncRepository[Sector]):
    model_type = Sector

    async def existing_codes(self, codes: Iterable[str]) -> set[str]:
        wanted = set(codes)
        if not wanted:
            return set()
        rows = await self.session.scalars(select(Sector.code).where(Sector.code.in_(wanted)))
        return set(rows)

    async def by_codes(self, codes: Iterable[str]) -> Sequence[Sector]:
        wanted = set(codes)
        if not wanted:
            return []
        return (await self.session.scalars(select(Sector).where(Sector.code.in_(wanted)))).all()

    async def search(
        self, *, q: str | None, level: str | None, parent: str | None, limit: int, offset: int
    ) -> tuple[Sequence[Sector], int]:
        conditions: list[ColumnElement[bool]] = []
        if q:
            conditions.append(
                or_(contains_text(q, Sector.name, Sector.name_de), Sector.code.startswith(q, autoescape=True))
            )
        if level:
            conditions.append(Sector.level == level)
        if parent:
            conditions.append(Sector.parent_code == parent)
        total = await self.session.scalar(select(func.count()).select_from(Sector).where(*conditions))
        rows = await self.session.scalars(
            select(Sector).where(*conditions).order_by(Sector.code).limit(limit).offset(offset)
        )
        return rows.all(), total or 0
