from datetime import date
from enum import StrEnum

import msgspec


class FunnelGroup(StrEnum):
    WEEK = "week"
    CITY = "city"
    DIVISION = "division"


class CountRow(msgspec.Struct):
    key: str
    companies: int
    leads: int
    open_leads: int


class FunnelRow(msgspec.Struct):
    key: str
    impression: int
    view: int
    interested: int
    contacted: int
    introduced: int
    deal: int


class Analytics(msgspec.Struct):
    by_city: list[CountRow]
    by_division: list[CountRow]
    by_lead_kind: list[CountRow]
    funnel_group: FunnelGroup
    since: date | None
    until: date | None
    funnel: list[FunnelRow]
