from datetime import UTC, date, datetime

import pytest

from partnermatch.clock import end_of_day, local_date
from partnermatch.leads.models import Lead
from partnermatch.leads.service import days_to_deadline, is_open


def lead(deadline: date | None, status: str = "open") -> Lead:
    return Lead(deadline=deadline, status=status)


@pytest.mark.parametrize(
    ("day", "end"),
    [
        (date(2026, 1, 15), datetime(2026, 1, 15, 23, 0, tzinfo=UTC)),
        (date(2026, 7, 15), datetime(2026, 7, 15, 22, 0, tzinfo=UTC)),
        # The clocks go forward in the night to 29 March and back in the night to 25 October 2026.
        (date(2026, 3, 28), datetime(2026, 3, 28, 23, 0, tzinfo=UTC)),
        (date(2026, 3, 29), datetime(2026, 3, 29, 22, 0, tzinfo=UTC)),
        (date(2026, 10, 24), datetime(2026, 10, 24, 22, 0, tzinfo=UTC)),
        (date(2026, 10, 25), datetime(2026, 10, 25, 23, 0, tzinfo=UTC)),
    ],
)
def test_a_berlin_day_ends_at_local_midnight(day: date, end: datetime) -> None:
    assert end_of_day(day) == end


def test_deadline_holds_until_the_last_berlin_second() -> None:
    deadline = date(2026, 3, 14)
    last_second = datetime(2026, 3, 14, 22, 59, 59, tzinfo=UTC)
    midnight = datetime(2026, 3, 14, 23, 0, tzinfo=UTC)
    assert is_open(lead(deadline), last_second)
    assert days_to_deadline(lead(deadline), last_second) == 0
    assert not is_open(lead(deadline), midnight)
    assert days_to_deadline(lead(deadline), midnight) == -1


def test_open_needs_status_open_and_allows_no_deadline() -> None:
    now = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
    assert is_open(lead(None), now)
    assert days_to_deadline(lead(None), now) is None
    assert not is_open(lead(date(2026, 4, 1), status="closed"), now)
    assert days_to_deadline(lead(date(2026, 4, 1)), now) == 18


def test_local_date_is_the_berlin_calendar_day() -> None:
    assert local_date(datetime(2026, 3, 14, 23, 30, tzinfo=UTC)) == date(2026, 3, 15)
    assert local_date(datetime(2026, 3, 14, 22, 30, tzinfo=UTC)) == date(2026, 3, 14)
