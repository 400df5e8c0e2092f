"""Time rules shared by every domain: instants come with an offset, days are Berlin days."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import msgspec

from partnermatch.errors import InvalidInput
from partnermatch.settings import get_settings

# Incoming times are RFC 3339 strings with an offset (a naive time would be read in an unknown zone),
# parsed strictly by the services: Litestar converts request data leniently and would read a bare
# number as a Unix timestamp.
RFC_3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
Instant = Annotated[
    str,
    msgspec.Meta(
        pattern=RFC_3339,
        description="RFC 3339 date-time with an offset",
        examples=["2026-03-14T09:30:00+01:00"],
    ),
]


EARLIEST, LATEST = date(1900, 1, 1), date(2199, 12, 31)


def local_zone() -> ZoneInfo:
    """The zone deadlines are read and times shown in (PARTNERMATCH_TIMEZONE, Europe/Berlin)."""
    return ZoneInfo(get_settings().timezone)


def local_date(moment: datetime) -> date:
    """The calendar date of an instant in the zone deadlines are read in (Europe/Berlin)."""
    return moment.astimezone(local_zone()).date()


def end_of_day(day: date) -> datetime:
    """The first instant after `day` in Berlin, in UTC: a deadline on `day` holds until just before it."""
    zone = local_zone()
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)


def check_plausible(field: str, value: date | None) -> None:
    """Keeps dates and times where time zone arithmetic cannot overflow (Python's years end at 9999)."""
    if value is not None:
        day = value.date() if isinstance(value, datetime) else value
        if not EARLIEST <= day <= LATEST:
            raise InvalidInput.for_field(field, f"must lie between {EARLIEST} and {LATEST}")


def parse_instant(field: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        raise InvalidInput.for_field(field, "is not an RFC 3339 date-time") from None
    check_plausible(field, moment)
    return moment
