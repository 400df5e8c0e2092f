"""Deadline sentences count calendar days in Berlin from the day they are read, not from training."""

from datetime import date, datetime

import pytest

from partnermatch.ranking.data import BERLIN, deadline_end
from partnermatch.ranking.reasons import current_reasons, days_left, deadline_reason


def berlin(*parts: int) -> float:
    return datetime(*parts, tzinfo=BERLIN).timestamp()


@pytest.mark.parametrize(
    ("deadline", "now", "expected"),
    [
        ("2026-12-13", berlin(2026, 12, 1, 10, 0), 12),
        ("2026-12-13", berlin(2026, 12, 1, 0, 0), 12),  # midnight starts the day; it does not add one
        ("2026-12-13", berlin(2026, 12, 12, 23, 59), 1),
        ("2026-12-13", berlin(2026, 12, 13, 23, 59), 0),
        ("2026-03-30", berlin(2026, 3, 28, 10, 0), 2),  # across the switch to summer time
        ("2026-10-26", berlin(2026, 10, 24, 23, 30), 2),  # and back
    ],
)
def test_days_left_are_calendar_days_in_berlin(deadline: str, now: float, expected: int) -> None:
    assert days_left(deadline_end(deadline), now) == expected


def test_deadline_sentences() -> None:
    assert [deadline_reason(n) for n in (0, 1, 12)] == [
        "Deadline today",
        "Deadline tomorrow",
        "Deadline in 12 days",
    ]


def test_stored_deadline_sentences_are_rewritten_for_the_day_they_are_served() -> None:
    stored = ["You target Warsaw", "Deadline in 12 days", "Shared terms: hydrogen"]
    assert current_reasons(stored, date(2026, 12, 13), date(2026, 12, 11)) == (
        "You target Warsaw",
        "Deadline in 2 days",
        "Shared terms: hydrogen",
    )
    assert current_reasons(stored, None, date(2026, 12, 11)) == tuple(stored)
