from datetime import date
from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, access
from partnermatch.enums import MissionStatus, ParticipantStatus
from partnermatch.mapping import read_as
from partnermatch.missions.repository import SORTABLE, MissionFilters, Participation
from partnermatch.missions.schemas import (
    MissionCreate,
    MissionRead,
    MissionStatusChange,
    MissionUpdate,
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
    list_page,
    page_window,
    sort_order,
)


async def provide_mission_service(db_session: NamedDependency[AsyncSession]) -> MissionService:
    return MissionService(session=db_session)


async def provide_participant_service(db_session: NamedDependency[AsyncSession]) -> ParticipantService:
    return ParticipantService(session=db_session)


def mission_read(view: MissionView) -> MissionRead:
    return read_as(
        view.mission,
        MissionRead,
        city=view.mission.city_id,
        participants={status.value: view.counts.get(status, 0) for status in ParticipantStatus},
        places_left=view.places_left,
    )


def participant_read(participation: Participation) -> ParticipantRead:
    return read_as(participation.participant, ParticipantRead, company_name=participation.company_name)


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
        window = page_window(limit, offset)
        filters = MissionFilters(
            sector=sector,
            city=city,
            status=status,
            starts_after=starts_after,
            starts_before=starts_before,
            q=q,
            **sort_order(order_by, SORTABLE),
            **window,
        )
        return await list_page(missions.search(filters), window, mission_read)

    @post("/", summary="Plan a trade mission")
    async def create_mission(
        self, missions: NamedDependency[MissionService], data: JSONBody[MissionCreate]
    ) -> MissionRead:
        return mission_read(await missions.create_mission(data))

    @get("/{mission_id:uuid}", summary="One mission, with its participants counted by status")
    async def get_mission(
        self, missions: NamedDependency[MissionService], mission_id: FromPath[UUID]
    ) -> MissionRead:
        return mission_read(await missions.get_view(mission_id))

    @patch("/{mission_id:uuid}", summary="Change a mission")
    async def update_mission(
        self,
        missions: NamedDependency[MissionService],
        mission_id: FromPath[UUID],
        data: JSONBody[MissionUpdate],
    ) -> MissionRead:
        return mission_read(await missions.change(mission_id, data))

    @post("/{mission_id:uuid}/status", summary="Archive a mission or plan it again")
    async def change_status(
        self,
        missions: NamedDependency[MissionService],
        mission_id: FromPath[UUID],
        data: JSONBody[MissionStatusChange],
    ) -> MissionRead:
        return mission_read(await missions.set_status(mission_id, data.status))

    @delete("/{mission_id:uuid}", summary="Archive a mission (kept for history)", status_code=200)
    async def archive_mission(
        self, missions: NamedDependency[MissionService], mission_id: FromPath[UUID]
    ) -> MissionRead:
        return mission_read(await missions.archive(mission_id))


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
        window = page_window(limit, offset)
        found = participants.list_for_mission(mission_id, status=status, **window)
        return await list_page(found, window, participant_read)

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
