from datetime import date
from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, access
from partnermatch.enums import MissionStatus, ParticipantStatus
from partnermatch.missions.repository import SORTABLE, MissionFilters, Participation
from partnermatch.missions.schemas import (
    MissionCreate,
    MissionRead,
    MissionStatusChange,
    MissionUpdate,
    ParticipantCounts,
    ParticipantCreate,
    ParticipantRead,
    ParticipantUpdate,
)
from partnermatch.missions.service import MissionService, MissionView, ParticipantService
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


async def provide_mission_service(db_session: NamedDependency[AsyncSession]) -> MissionService:
    return MissionService(session=db_session)


async def provide_participant_service(db_session: NamedDependency[AsyncSession]) -> ParticipantService:
    return ParticipantService(session=db_session)


def to_read(view: MissionView) -> MissionRead:
    m = view.mission
    return MissionRead(
        id=m.id,
        external_id=m.external_id,
        title=m.title,
        city=m.city_id,
        sectors=m.sectors,
        description=m.description,
        starts_on=m.starts_on,
        ends_on=m.ends_on,
        capacity=m.capacity,
        announced_at=m.announced_at,
        status=MissionStatus(m.status),
        participants=ParticipantCounts(**{s.value: view.counts.get(s, 0) for s in ParticipantStatus}),
        places_left=view.places_left,
        created_at=m.created_at,
        updated_at=m.updated_at,
    )


def participant_read(p: Participation) -> ParticipantRead:
    row = p.participant
    return ParticipantRead(
        id=row.id,
        mission_id=row.mission_id,
        company_id=row.company_id,
        company_name=p.company_name,
        status=ParticipantStatus(row.status),
        status_at=row.status_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class MissionController(Controller):
    path = "/api/v1/missions"
    tags = ["missions"]
    opt = access(Access.STAFF)
    dependencies = {"missions": Provide(provide_mission_service)}

    @get("/", summary="Search trade missions")
    async def list_missions(
        self,
        missions: NamedDependency[MissionService],
        sector: SectorFilter = None,
        city: Annotated[str | None, QueryParameter(description="Partner city id", max_length=64)] = None,
        status: FromQuery[MissionStatus | None] = None,
        starts_after: Annotated[
            date | None, QueryParameter(description="Missions starting on or after this day")
        ] = None,
        starts_before: Annotated[
            date | None, QueryParameter(description="Missions starting on or before this day")
        ] = None,
        q: TextQuery = None,
        order_by: OrderBy = "starts_on",
        limit: Limit = None,
        offset: Offset = 0,
    ) -> Page[MissionRead]:
        field, descending = parse_order(order_by, SORTABLE)
        filters = MissionFilters(
            sector=sector,
            city=city,
            status=status,
            starts_after=starts_after,
            starts_before=starts_before,
            q=q,
            order_by=field,
            descending=descending,
            limit=page_size(limit),
            offset=offset,
        )
        views, total = await missions.search(filters)
        return Page(items=[to_read(v) for v in views], total=total, limit=filters.limit, offset=offset)

    @post("/", summary="Plan a trade mission")
    async def create_mission(
        self, missions: NamedDependency[MissionService], data: JSONBody[MissionCreate]
    ) -> MissionRead:
        return to_read(await missions.create_mission(data))

    @get("/{mission_id:uuid}", summary="One mission, with its participants counted by status")
    async def get_mission(
        self, missions: NamedDependency[MissionService], mission_id: FromPath[UUID]
    ) -> MissionRead:
        return to_read(await missions.get_view(mission_id))

    @patch("/{mission_id:uuid}", summary="Change a mission")
    async def update_mission(
        self,
        missions: NamedDependency[MissionService],
        mission_id: FromPath[UUID],
        data: JSONBody[MissionUpdate],
    ) -> MissionRead:
        return to_read(await missions.change(mission_id, data))

    @post("/{mission_id:uuid}/status", summary="Archive a mission or plan it again")
    async def change_status(
        self,
        missions: NamedDependency[MissionService],
        mission_id: FromPath[UUID],
        data: JSONBody[MissionStatusChange],
    ) -> MissionRead:
        return to_read(await missions.set_status(mission_id, data.status))

    @delete("/{mission_id:uuid}", summary="Archive a mission (kept for history)", status_code=200)
    async def archive_mission(
        self, missions: NamedDependency[MissionService], mission_id: FromPath[UUID]
    ) -> MissionRead:
        return to_read(await missions.archive(mission_id))


class ParticipantController(Controller):
    path = "/api/v1/missions/{mission_id:uuid}/participants"
    tags = ["missions"]
    opt = access(Access.STAFF)
    dependencies = {"participants": Provide(provide_participant_service)}

    @get("/", summary="Companies on a mission, by name")
    async def list_participants(
        self,
        participants: NamedDependency[ParticipantService],
        mission_id: FromPath[UUID],
        status: FromQuery[ParticipantStatus | None] = None,
        limit: Limit = None,
        offset: Offset = 0,
    ) -> Page[ParticipantRead]:
        size = page_size(limit)
        rows, total = await participants.list_for_mission(
            mission_id, status=status, limit=size, offset=offset
        )
        return Page(items=[participant_read(p) for p in rows], total=total, limit=size, offset=offset)

    @post("/", summary="Add a company to a mission (invited or participating ones need a free place)")
    async def add_participant(
        self,
        participants: NamedDependency[ParticipantService],
        mission_id: FromPath[UUID],
        data: JSONBody[ParticipantCreate],
    ) -> ParticipantRead:
        return participant_read(await participants.add(mission_id, data))

    @get("/{company_id:uuid}", summary="One company's standing on a mission")
    async def get_participant(
        self,
        participants: NamedDependency[ParticipantService],
        mission_id: FromPath[UUID],
        company_id: FromPath[UUID],
    ) -> ParticipantRead:
        return participant_read(await participants.get_participation(mission_id, company_id))

    @patch("/{company_id:uuid}", summary="Change a company's standing on a mission")
    async def update_participant(
        self,
        participants: NamedDependency[ParticipantService],
        mission_id: FromPath[UUID],
        company_id: FromPath[UUID],
        data: JSONBody[ParticipantUpdate],
    ) -> ParticipantRead:
        return participant_read(await participants.change(mission_id, company_id, data))

    @delete("/{company_id:uuid}", summary="Remove a company from a mission")
    async def remove_participant(
        self,
        participants: NamedDependency[ParticipantService],
        mission_id: FromPath[UUID],
        company_id: FromPath[UUID],
    ) -> None:
        await participants.remove(mission_id, company_id)
