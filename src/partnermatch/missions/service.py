from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import msgspec
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService

from partnermatch.cities.service import CityService
from partnermatch.clock import check_plausible, parse_instant
from partnermatch.companies.service import CompanyService
from partnermatch.enums import HOLDS_PLACE, CompanyStatus, MissionStatus, ParticipantStatus
from partnermatch.errors import Conflict, InvalidInput, NotFound
from partnermatch.missions.models import Mission, MissionParticipant, MissionSector
from partnermatch.missions.repository import (
    MissionFilters,
    MissionRepository,
    ParticipantRepository,
    Participation,
)
from partnermatch.missions.schemas import MissionCreate, MissionUpdate, ParticipantCreate, ParticipantUpdate
from partnermatch.sectors.service import SectorService, replace_sector_links, sector_links


@dataclass(frozen=True)
class MissionView:
    mission: Mission
    counts: Mapping[str, int]

    @property
    def taken(self) -> int:
        return sum(self.counts.get(status, 0) for status in HOLDS_PLACE)

    @property
    def places_left(self) -> int:
        return self.mission.capacity - self.taken


def _check_dates(starts_on: date, ends_on: date) -> None:
    check_plausible("starts_on", starts_on)
    check_plausible("ends_on", ends_on)
    if ends_on < starts_on:
        raise InvalidInput.for_field("ends_on", f"must not be before starts_on ({starts_on})")


class MissionService(SQLAlchemyAsyncRepositoryService[Mission, MissionRepository]):
    repository_type = MissionRepository

    async def get_mission(self, mission_id: UUID) -> Mission:
        mission = await self.repository.get_one_or_none(id=mission_id)
        if mission is None:
            raise NotFound.for_id("mission", mission_id)
        return mission

    async def view(self, mission: Mission) -> MissionView:
        counts = await self.repository.participant_counts([mission.id])
        return MissionView(mission, counts.get(mission.id, {}))

    async def get_view(self, mission_id: UUID) -> MissionView:
        return await self.view(await self.get_mission(mission_id))

    async def search(self, filters: MissionFilters) -> tuple[list[MissionView], int]:
        if (
            filters.starts_after is not None
            and filters.starts_before is not None
            and filters.starts_after > filters.starts_before
        ):
            raise InvalidInput.for_field("starts_before", "must not be before starts_after")
        rows, total = await self.repository.search(filters)
        counts = await self.repository.participant_counts(m.id for m in rows)
        return [MissionView(m, counts.get(m.id, {})) for m in rows], total

    async def create_mission(self, data: MissionCreate) -> MissionView:
        await self._validate(city=data.city, sectors=data.sectors)
        _check_dates(data.starts_on, data.ends_on)
        if data.external_id and await self.repository.by_external_id(data.external_id):
            raise Conflict(f"a mission with external_id {data.external_id!r} exists")
        fields = msgspec.structs.asdict(data)
        sectors, city = fields.pop("sectors"), fields.pop("city")
        fields["announced_at"] = parse_instant("announced_at", data.announced_at) or datetime.now(UTC)
        mission = Mission(**fields, city_id=city, status=MissionStatus.PLANNED.value)
        mission.sector_links = sector_links(MissionSector, sectors)
        return MissionView(await self.repository.add(mission), {})

    async def change(self, mission_id: UUID, data: MissionUpdate) -> MissionView:
        view = await self.get_view(mission_id)
        mission = view.mission
        changes: dict[str, Any] = {
            k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET
        }
        # A mission may stay in a city suspended after it was planned; it may not move into one.
        moved_to = changes.get("city") if changes.get("city") != mission.city_id else None
        await self._validate(city=moved_to, sectors=changes.get("sectors"))
        _check_dates(changes.get("starts_on", mission.starts_on), changes.get("ends_on", mission.ends_on))
        if "announced_at" in changes:
            changes["announced_at"] = parse_instant("announced_at", changes["announced_at"])
        if changes.get("capacity", mission.capacity) < view.taken:
            raise InvalidInput.for_field(
                "capacity", f"must be at least {view.taken}, the companies invited or participating"
            )
        if "sectors" in changes:
            await replace_sector_links(
                self.repository.session, mission, MissionSector, changes.pop("sectors")
            )
        if "city" in changes:
            mission.city_id = changes.pop("city")
        for key, value in changes.items():
            setattr(mission, key, value)
        return MissionView(await self.repository.update(mission), view.counts)

    async def set_status(self, mission_id: UUID, status: MissionStatus) -> MissionView:
        mission = await self.get_mission(mission_id)
        if status == MissionStatus.PLANNED:
            # Taking a mission out of the archive is new activity in its city.
            await self._validate(city=mission.city_id, sectors=None)
        mission.status = status.value
        return await self.view(await self.repository.update(mission))

    async def archive(self, mission_id: UUID) -> MissionView:
        return await self.set_status(mission_id, MissionStatus.ARCHIVED)

    async def _validate(self, *, city: str | None, sectors: Sequence[str] | None) -> None:
        if city is not None:
            await CityService(session=self.repository.session).require_active("city", [city])
        if sectors is not None:
            await SectorService(session=self.repository.session).validate_codes(
                "sectors", sectors, min_count=0
            )


class ParticipantService(SQLAlchemyAsyncRepositoryService[MissionParticipant, ParticipantRepository]):
    repository_type = ParticipantRepository

    @property
    def _missions(self) -> MissionService:
        return MissionService(session=self.repository.session)

    async def list_for_mission(
        self, mission_id: UUID, *, status: ParticipantStatus | None, limit: int, offset: int
    ) -> tuple[list[Participation], int]:
        await self._missions.get_mission(mission_id)
        return await self.repository.for_mission(mission_id, status=status, limit=limit, offset=offset)

    async def statuses_of(self, company_id: UUID, mission_ids: Sequence[UUID]) -> dict[UUID, str]:
        """The company's participation status in each of the missions it takes part in."""
        return await self.repository.statuses_of(company_id, mission_ids)

    async def get_participation(self, mission_id: UUID, company_id: UUID) -> Participation:
        await self._missions.get_mission(mission_id)
        found = await self.repository.pair(mission_id, company_id)
        if found is None:
            raise NotFound(f"company {company_id} is not a participant of mission {mission_id}")
        return found

    async def add(self, mission_id: UUID, data: ParticipantCreate) -> Participation:
        status_at = parse_instant("status_at", data.status_at)
        mission = await self._lock_mission(mission_id)
        company = await CompanyService(session=self.repository.session).get_one_or_none(id=data.company_id)
        if company is None:
            raise InvalidInput.for_field("company_id", f"no company with id {data.company_id}")
        if company.status == CompanyStatus.ARCHIVED:
            raise InvalidInput.for_field("company_id", f"company {company.name!r} is archived")
        if await self.repository.pair(mission_id, data.company_id) is not None:
            raise Conflict(f"company {data.company_id} already takes part in mission {mission_id}")
        if data.status in HOLDS_PLACE:
            await self._require_place(mission)
        participant = MissionParticipant(
            mission_id=mission_id,
            company_id=data.company_id,
            status=data.status.value,
            status_at=status_at or datetime.now(UTC),
        )
        return Participation(await self.repository.add(participant), company.name)

    async def change(self, mission_id: UUID, company_id: UUID, data: ParticipantUpdate) -> Participation:
        mission = await self._lock_mission(mission_id)
        participant, company_name = await self.get_participation(mission_id, company_id)
        if data.status is not msgspec.UNSET and data.status != participant.status:
            if data.status in HOLDS_PLACE and participant.status not in HOLDS_PLACE:
                await self._require_place(mission)
            participant.status = data.status.value
            participant.status_at = datetime.now(UTC)
        if data.status_at is not msgspec.UNSET:
            participant.status_at = parse_instant("status_at", data.status_at) or participant.status_at
        return Participation(await self.repository.update(participant), company_name)

    async def remove(self, mission_id: UUID, company_id: UUID) -> None:
        participant, _ = await self.get_participation(mission_id, company_id)
        await self.repository.delete(participant.id)

    async def _lock_mission(self, mission_id: UUID) -> Mission:
        mission = await self._missions.repository.lock(mission_id)
        if mission is None:
            raise NotFound.for_id("mission", mission_id)
        return mission

    async def _require_place(self, mission: Mission) -> None:
        view = await self._missions.view(mission)
        if view.places_left <= 0:
            raise Conflict(
                f"the mission is full: all {mission.capacity} places are taken by invited "
                "or participating companies"
            )
