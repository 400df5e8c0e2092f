from datetime import date, datetime
from typing import Annotated
from uuid import UUID

import msgspec

from partnermatch.cities.schemas import CityId, LanguageCode
from partnermatch.clock import Instant
from partnermatch.companies.schemas import Description, ExternalId, Sectors
from partnermatch.enums import LeadKind, LeadSource, LeadStatus

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Organization = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
BudgetEur = Annotated[int, msgspec.Meta(ge=0, le=10**15)]


class LeadRead(msgspec.Struct):
    id: UUID
    external_id: str | None
    title: str
    kind: LeadKind
    organization: str
    city: str
    sectors: list[str]
    description: str
    languages: list[str]
    budget_eur: int | None
    published_at: datetime
    deadline: date | None
    status: LeadStatus
    source: LeadSource
    is_open: Annotated[
        bool, msgspec.Meta(description="Status open and the deadline (end of day, Berlin) not passed")
    ]
    days_to_deadline: Annotated[
        int | None,
        msgspec.Meta(
            description="Days from today (Berlin) to the deadline; 0 is the last day, negative past"
        ),
    ]
    created_at: datetime
    updated_at: datetime


class LeadCreate(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    kind: LeadKind
    organization: Organization
    city: CityId
    sectors: Sectors
    description: Description = ""
    languages: list[LanguageCode] = []
    budget_eur: BudgetEur | None = None
    published_at: Instant | None = None
    deadline: date | None = None
    status: LeadStatus = LeadStatus.OPEN
    source: LeadSource = LeadSource.STAFF
    external_id: ExternalId | None = None


class LeadUpdate(msgspec.Struct, forbid_unknown_fields=True):
    title: Title | msgspec.UnsetType = msgspec.UNSET
    kind: LeadKind | msgspec.UnsetType = msgspec.UNSET
    organization: Organization | msgspec.UnsetType = msgspec.UNSET
    city: CityId | msgspec.UnsetType = msgspec.UNSET
    sectors: Sectors | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    languages: list[LanguageCode] | msgspec.UnsetType = msgspec.UNSET
    budget_eur: BudgetEur | msgspec.UnsetType | None = msgspec.UNSET
    published_at: Instant | msgspec.UnsetType = msgspec.UNSET
    deadline: date | msgspec.UnsetType | None = msgspec.UNSET
    source: LeadSource | msgspec.UnsetType = msgspec.UNSET


class LeadStatusChange(msgspec.Struct, forbid_unknown_fields=True):
    status: LeadStatus
