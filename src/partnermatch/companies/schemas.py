from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from partnermatch.cities.schemas import CityId, LanguageCode
from partnermatch.enums import CompanyStatus, ExportExperience

SectorCode = Annotated[
    str, msgspec.Meta(pattern=r"^(\d{2}|\d{2}\.\d|\d{2}\.\d{2})$", description="NACE Rev. 2")
]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
Email = Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)]
Website = Annotated[str, msgspec.Meta(pattern=r"^https?://\S+$", max_length=500)]
Employees = Annotated[int, msgspec.Meta(ge=1, le=10_000_000)]
Founded = Annotated[int, msgspec.Meta(ge=1600, le=2200)]
Description = Annotated[str, msgspec.Meta(max_length=20_000)]
ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Sectors = Annotated[list[SectorCode], msgspec.Meta(min_length=1, max_length=5)]


class CompanyRead(msgspec.Struct):
    id: UUID
    external_id: str | None
    name: str
    status: CompanyStatus
    status_reason: str | None
    sectors: list[str]
    employees: int
    founded: int
    export_experience: ExportExperience
    languages: list[str]
    target_cities: list[str]
    description: str
    contact_email: str | None
    website: str | None
    registered_at: datetime
    created_at: datetime
    updated_at: datetime


class CompanyCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    sectors: Sectors
    employees: Employees
    founded: Founded
    export_experience: ExportExperience
    languages: list[LanguageCode] = []
    target_cities: list[CityId] = []
    description: Description = ""
    contact_email: Email | None = None
    website: Website | None = None
    external_id: ExternalId | None = None


class CompanyUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    sectors: Sectors | msgspec.UnsetType = msgspec.UNSET
    employees: Employees | msgspec.UnsetType = msgspec.UNSET
    founded: Founded | msgspec.UnsetType = msgspec.UNSET
    export_experience: ExportExperience | msgspec.UnsetType = msgspec.UNSET
    languages: list[LanguageCode] | msgspec.UnsetType = msgspec.UNSET
    target_cities: list[CityId] | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    contact_email: Email | msgspec.UnsetType | None = msgspec.UNSET
    website: Website | msgspec.UnsetType | None = msgspec.UNSET


class StatusChange(msgspec.Struct, forbid_unknown_fields=True):
    status: CompanyStatus
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
