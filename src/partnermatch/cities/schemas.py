from typing import Annotated

import msgspec

from partnermatch.enums import CityStatus

CityId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)]
LanguageCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2}$")]
CountryCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]


class CityRead(msgspec.Struct):
    id: str
    name: str
    country: str
    languages: list[str]
    partner_since: int | None
    status: CityStatus


class CityCreate(msgspec.Struct, forbid_unknown_fields=True):
    id: CityId
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    country: CountryCode
    languages: list[LanguageCode] = []
    partner_since: Annotated[int, msgspec.Meta(ge=1900, le=2200)] | None = None
    status: CityStatus = CityStatus.ACTIVE


class CityUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | msgspec.UnsetType = msgspec.UNSET
    country: CountryCode | msgspec.UnsetType = msgspec.UNSET
    languages: list[LanguageCode] | msgspec.UnsetType = msgspec.UNSET
    partner_since: Annotated[int, msgspec.Meta(ge=1900, le=2200)] | msgspec.UnsetType | None = msgspec.UNSET
    status: CityStatus | msgspec.UnsetType = msgspec.UNSET
