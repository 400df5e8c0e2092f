from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import ColumnElement, exists, func, select

from partnermatch.companies.models import Company
from partnermatch.db import contains_text
from partnermatch.missions.models import Mission, MissionParticipant, MissionSector
from partnermatch.sectors.repository import code_matches

SORTABLE = frozenset(
    {"starts_on", "ends_on", "title", "capacity", "announced_at", "created_at", "updated_at"}
)


@dataclass(frozen=True)
class MissionFilters:
    sector: str | None = None
    city: str | None = None
    status: str | None = None
    starts_after: date | None = None
    starts_before: date | None = None
    q: str | None = None
    order_by: str = "starts_on"
    descending: bool = False
    limit: int = 20
    offset: int = 0


class Participation(NamedTuple):
    participant: MissionParticipant
    company_name: str


class MissionRepository(SQLAlchemyAsyncRepository[Mission]):
    model_type = Mission

    def _conditions(self, f: MissionFilters) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if f.sector:
            conditions.append(
                exists().where(
                    MissionSector.mission_id == Mission.id, code_matches(MissionSector.code, f.sector)
                )
            )
        if f.city:
            conditions.append(Mission.city_id == f.city)
        if f.status:
            conditions.append(Mission.status == f.status)
        if f.starts_after is not None:
            conditions.append(Mission.starts_on >= f.starts_after)
        if f.starts_before is not None:
            conditions.append(Mission.starts_on <= f.starts_before)
        if f.q:
            conditions.append(contains_text(f.q, Mission.title, Mission.description))
        return conditions

    async def search(self, f: MissionFilters) -> tuple[Sequence[Mission], int]:
        conditions = self._conditions(f)
        total = await self.session.scalar(select(func.count()).select_from(Mission).where(*conditions))
        column = getattr(Mission, f.order_by)
        statement = (
            select(Mission)
            .where(*conditions)
            .order_by(column.desc() if f.descending else column.asc(), Mission.id)
            .limit(f.limit)
            .offset(f.offset)
        )
        rows = await self.session.scalars(statement)
        return rows.all(), total or 0

    async def by_external_id(self, external_id: str) -> Mission | None:
        return await self.get_one_or_none(external_id=external_id)

    async def lock(self, mission_id: UUID) -> Mission | None:
        # Serialises capacity checks of concurrent invitations (PostgreSQL; SQLite has one writer anyway).
        statement = select(Mission).where(Mission.id == mission_id).with_for_update()
        return (await self.session.scalars(statement)).one_or_none()

    async def participant_counts(self, mission_ids: Iterable[UUID]) -> dict[UUID, dict[str, int]]:
        wanted = set(mission_ids)
        if not wanted:
            return {}
        rows = await self.session.execute(
            select(MissionParticipant.mission_id, MissionParticipant.status, func.count())
            .where(MissionParticipant.mission_id.in_(wanted))
            .group_by(MissionParticipant.mission_id, MissionParticipant.status)
        )
        counts: dict[UUID, dict[str, int]] = {}
        for mission_id, status, count in rows.tuples():
            counts.setdefault(mission_id, {})[status] = count
        return counts


class ParticipantRepository(SQLAlchemyAsyncRepository[MissionParticipant]):
    model_type = MissionParticipant

    async def for_mission(
        self, mission_id: UUID, *, status: str | None, limit: int, offset: int
    ) -> tuple[list[Participation], int]:
        conditions: list[ColumnElement[bool]] = [MissionParticipant.mission_id == mission_id]
        if status:
            conditions.append(MissionParticipant.status == status)
        total = await self.session.scalar(
            select(func.count()).select_from(MissionParticipant).where(*conditions)
        )
        rows = await self.session.execute(
            select(MissionParticipant, Company.name)
            .join(Company, Company.id == MissionParticipant.company_id)
            .where(*conditions)
            .order_by(Company.name, MissionParticipant.company_id)
            .limit(limit)
            .offset(offset)
        )
        return [Participation(p, name) for p, name in rows.tuples()], total or 0

    async def statuses_of(self, company_id: UUID, mission_ids: Sequence[UUID]) -> dict[UUID, str]:
        if not mission_ids:
            return {}
        rows = await self.session.execute(
            select(MissionParticipant.mission_id, MissionParticipant.status).where(
                MissionParticipant.company_id == company_id, MissionParticipant.mission_id.in_(mission_ids)
            )
        )
        return dict(rows.tuples().all())

    async def pair(self, mission_id: UUID, company_id: UUID) -> Participation | None:
        row = (
            await self.session.execute(
                select(MissionParticipant, Company.name)
                .join(Company, Company.id == MissionParticipant.company_id)
                .where(
                    MissionParticipant.mission_id == mission_id, MissionParticipant.company_id == company_id
                )
            )
        ).first()
        return None if row is None else Participation(row[0], row[1])
