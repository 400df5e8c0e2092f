from datetime import date, datetime
from typing import Annotated
from uuid import UUID

import msgspec

from partnermatch.cities.schemas import CityId
from partnermatch.clock import Instant
from partnermatch.companies.schemas import Description, ExternalId, SectorCode
from partnermatch.enums import MissionStatus, ParticipantStatus
from partnermatch.leads.schemas import Title

# A mission's sector focus may be empty: a general delegation trip.
FocusSectors = Annotated[list[SectorCode], msgspec.Meta(max_length=5)]
Capacity = Annotated[int, msgspec.Meta(ge=1, le=100_000)]


class ParticipantCounts(msgspec.Struct):
    applied: int
    invited: int
    participated: int
    declined: int


class MissionRead(msgspec.Struct):
    id: UUID
    external_id: str | None
    title: str
    city: str
    sectors: list[str]
    description: str
    starts_on: date
    ends_on: date
    capacity: int
    announced_at: datetime
    status: MissionStatus
    participants: ParticipantCounts
    places_left: Annotated[
        int, msgspec.Meta(description="Capacity minus the companies invited or participating")
    ]
    created_at: datetime
    updated_at: datetime


class MissionCreate(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    city: CityId
    starts_on: date
    ends_on: date
    capacity: Capacity
    sectors: FocusSectors = []
    description: Description = ""
    announced_at: Instant | None = None
    external_id: ExternalId | None = None


class MissionUpdate(msgspec.Struct, forbid_unknown_fields=True):
    title: Title | msgspec.UnsetType = msgspec.UNSET
    city: CityId | msgspec.UnsetType = msgspec.UNSET
    starts_on: date | msgspec.UnsetType = msgspec.UNSET
    ends_on: date | msgspec.UnsetType = msgspec.UNSET
    capacity: Capacity | msgspec.UnsetType = msgspec.UNSET
    sectors: FocusSectors | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    announced_at: Instant | msgspec.UnsetType = msgspec.UNSET


class MissionStatusChange(msgspec.Struct, forbid_unknown_fields=True):
    status: MissionStatus


class ParticipantRead(msgspec.Struct):
    id: UUID
    mission_id: UUID
    company_id: UUID
    company_name: str
    status: ParticipantStatus
    status_at: datetime
    created_at: datetime
    updated_at: datetime


class ParticipantCreate(msgspec.Struct, forbid_unknown_fields=True):
    company_id: UUID
    status: ParticipantStatus = ParticipantStatus.APPLIED
    status_at: (
        Annotated[Instant, msgspec.Meta(description="When the status was reached; default now")] | None
    ) = None


class ParticipantUpdate(msgspec.Struct, forbid_unknown_fields=True):
    status: ParticipantStatus | msgspec.UnsetType = msgspec.UNSET
    status_at: Instant | msgspec.UnsetType = msgspec.UNSET
