"""Deadline sentences count calendar days in Berlin from the day they are read, not from training."""

from datetime import date, datetime

import pytest

from partnermatch.ranking.data import BERLIN, deadline_end
from partnermatch.ranking.reasons import (
    COUNTED,
    NO_STRONG_REASON,
    TEMPLATES,
    Reason,
    days_left,
    sentence,
    with_deadline,
)


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
    assert [sentence(Reason("deadline", {"days": n})) for n in (0, 1, 12)] == [
        "Deadline today",
        "Deadline tomorrow",
        "Deadline in 12 days",
    ]


def test_stored_deadlines_count_from_the_day_they_are_served() -> None:
    stored = [
        Reason("targets_city", {"city": "warsaw", "city_name": "Warsaw"}),
        Reason("deadline", {"days": 12}),
        Reason("shared_terms", {"terms": ["hydrogen"]}),
    ]
    served = with_deadline(
        [Reason.from_stored(r.stored()) for r in stored], date(2026, 12, 13), date(2026, 12, 11)
    )
    assert [sentence(r) for r in served] == [
        "You target Warsaw",
        "Deadline in 2 days",
        "Shared terms: hydrogen",
    ]
    assert with_deadline(stored, None, date(2026, 12, 11)) == tuple(stored)


def test_every_reason_has_an_english_sentence_from_its_evidence() -> None:
    """The sentences the API returns, each from its codes and numbers: sector and city names looked up,
    lead kinds worded for the sentence, counts in singular or plural."""
    said = [
        (Reason("same_sector", {"code": "62.01"}), "Same sector: 62.01 Computer programming activities"),
        (
            Reason("exporters_extensive", {"kind": "tender"}),
            "Tenders here favour exporters — you export extensively",
        ),
        (
            Reason("exporters_some", {"kind": "buyer"}),
            "Buyers here favour exporters — you export to some extent",
        ),
        (Reason("size_suits", {"kind": "joint_venture"}), "Your size suits joint-venture partners"),
        (Reason("interested", {"count": 1}), "1 company is already interested"),
        (Reason("interested", {"count": 4}), "4 companies are already interested"),
        (Reason("earlier_missions", {"count": 2}), "Took part in 2 earlier missions"),
        (
            Reason("division_place", {"division": "62", "place": 1, "places": 2}),
            "Division 62: place 1 of at most 2",
        ),
        (NO_STRONG_REASON, "No single strong signal: ranked by the model's overall fit"),
    ]
    for reason, text in said:
        assert sentence(reason) == text
    # Every sentence key is covered by the English templates (the portal's catalogs translate the same).
    assert {reason.key for reason, _ in said} <= set(TEMPLATES) | set(COUNTED)
