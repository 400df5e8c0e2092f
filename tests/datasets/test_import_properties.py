"""Property tests of the dataset validator, in memory (no database, no files)."""

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partnermatch.datasets.format import (
    CITIES,
    COMPANIES,
    FILES,
    INTERACTIONS,
    LEADS,
    MISSIONS,
    PARTICIPANTS,
    Issue,
    Reference,
    Validator,
)

SECTORS = frozenset({"62", "62.0", "62.01", "62.02", "28", "28.9", "28.99", "72.1", "72.11", "86.10"})
REFERENCE = Reference(sectors=SECTORS, cities={"paris": "active", "london": "active", "moscow": "suspended"})
ACTIVE_CITIES = ["paris", "london", "vienna"]
ALL_CITIES = [*ACTIVE_CITIES, "moscow"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=30)
offsets = st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30))])
times = st.builds(
    lambda moment, zone: moment.replace(tzinfo=UTC).astimezone(zone).isoformat(),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)),
    offsets,
)
dates = st.dates(min_value=datetime(2000, 1, 1).date(), max_value=datetime(2030, 1, 1).date())
languages = st.lists(st.sampled_from(["de", "en", "fr", "pl", "zh"]), max_size=3)
sectors = st.lists(st.sampled_from(sorted(SECTORS)), min_size=1, max_size=5)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)
# Unknown fields must be ignored, whatever they hold.
extras = st.dictionaries(
    st.text("xyz_", min_size=1, max_size=5).map(lambda k: f"x_{k}"), json_values, max_size=2
)


def _city(index: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "id": st.just(f"extra-{index}"),
            "name": text,
            "country": st.sampled_from(["FR", "AT", "GB", "JP"]),
            "languages": languages,
            "status": st.just("active"),
        }
    )


def _company(index: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "id": st.just(f"c{index}"),
            "name": text,
            "sectors": sectors,
            "employees": st.integers(1, 2**31 - 1),
            "founded": st.integers(1600, 2200),
            "export_experience": st.sampled_from(["none", "some", "extensive"]),
            "languages": languages,
            "target_cities": st.lists(st.sampled_from(ALL_CITIES), max_size=3),
            "description": text,
            "registered_at": times,
        }
    )


def _lead(index: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "id": st.just(f"l{index}"),
            "title": text,
            "kind": st.sampled_from(["buyer", "tender", "investor"]),
            "organization": text,
            "city": st.sampled_from(ACTIVE_CITIES),
            "sectors": sectors,
            "description": text,
            "languages": languages,
            "budget_eur": st.none() | st.integers(0, 10**9),
            "published_at": times,
            "deadline": st.none() | dates.map(lambda d: d.isoformat()),
        }
    )


def _mission(index: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda start, days, rest: {
            "id": f"m{index}",
            "starts_on": start.isoformat(),
            "ends_on": (start + timedelta(days=days)).isoformat(),
            **rest,
        },
        dates,
        st.integers(0, 10),
        st.fixed_dictionaries(
            {
                "title": text,
                "city": st.sampled_from(ACTIVE_CITIES),
                "sectors": st.lists(st.sampled_from(sorted(SECTORS)), max_size=4),
                "capacity": st.integers(1, 100),
                "announced_at": times,
            }
        ),
    )


@st.composite
def datasets(draw: st.DrawFn) -> dict[str, list[dict[str, Any]]]:
    def with_extras(record: dict[str, Any]) -> dict[str, Any]:
        return {**draw(extras), **record}

    cities = [with_extras(draw(_city(i))) for i in range(draw(st.integers(1, 2)))]
    # "vienna" is referenced by the strategies above: it comes from the file.
    cities.append({"id": "vienna", "name": "Wien", "country": "AT", "languages": ["de"], "status": "active"})
    companies = [with_extras(draw(_company(i))) for i in range(draw(st.integers(1, 3)))]
    leads = [with_extras(draw(_lead(i))) for i in range(draw(st.integers(1, 3)))]
    missions = [with_extras(draw(_mission(i))) for i in range(draw(st.integers(1, 2)))]
    company_ids = st.sampled_from([c["id"] for c in companies])
    lead_ids = st.sampled_from([lead["id"] for lead in leads])
    participants = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "mission_id": st.sampled_from([m["id"] for m in missions]),
                    "company_id": company_ids,
                    "status": st.sampled_from(["applied", "invited", "participated", "declined"]),
                    "at": times,
                }
            ),
            min_size=1,
            max_size=3,
        )
    )
    interactions = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "company_id": company_ids,
                    "lead_id": lead_ids,
                    "kind": st.sampled_from(["impression", "view", "interested", "deal"]),
                    "at": times,
                    "position": st.none() | st.integers(1, 50),
                }
            ),
            min_size=1,
            max_size=4,
        )
    )
    return {
        CITIES: cities,
        COMPANIES: companies,
        LEADS: leads,
        MISSIONS: missions,
        PARTICIPANTS: participants,
        INTERACTIONS: interactions,
    }


def validate(data: dict[str, list[Any]], raw: dict[str, list[bytes]] | None = None) -> Validator:
    validator = Validator(REFERENCE)
    for name in FILES:
        lines = (raw or {}).get(name) or [json.dumps(record).encode() + b"\n" for record in data[name]]
        validator.check_file(name, lines)
    return validator


# Per field: values that break it, and the fields that may be corrupted (never ids: other lines refer to them).
_not_string = st.integers() | st.booleans() | st.lists(st.integers(), max_size=2) | st.just({"a": 1})
_bad_int = st.booleans() | st.floats(allow_nan=False) | text.map(str) | st.none()
_naive = st.datetimes().map(lambda moment: moment.isoformat())
_bad_time = _naive | st.text(max_size=10).filter(lambda s: not _parses(s)) | st.integers() | st.none()
_bad_date = st.text(max_size=6).filter(lambda s: not _parses_date(s)) | st.integers() | st.none()
_bad_codes = st.lists(st.sampled_from(["99.99", "J", "62.1", "6201", ""]), min_size=1, max_size=5).map(
    lambda bad: ["62", *bad][:5]
)
_bad_sector_list = (
    _bad_codes
    | st.just([])
    | st.just(["62", "28", "72.1", "62.01", "86.10", "28.9"])
    | _not_string.filter(lambda v: not isinstance(v, list))
)
_bad_languages = st.lists(st.sampled_from(["xx", "DE", "deu", "", 5]), min_size=1, max_size=2)
_missing = st.just(...)

CORRUPTIONS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    CITIES: {
        "name": _not_string | _missing,
        "country": st.sampled_from(["XX", "fr", "FRA", ""]) | _not_string,
        "languages": _bad_languages,
        "status": text.filter(lambda s: s not in {"active", "suspended"}) | _not_string,
    },
    COMPANIES: {
        "name": _not_string | _missing | st.just("n" * 301),
        "sectors": _bad_sector_list,
        "employees": _bad_int | st.integers(max_value=0) | st.integers(min_value=2**31) | _missing,
        "founded": st.integers(max_value=1599) | st.integers(min_value=2201) | _bad_int,
        "export_experience": text.filter(lambda s: s not in {"none", "some", "extensive"}) | _not_string,
        "languages": _bad_languages,
        "target_cities": st.just(["atlantis"]) | st.just("paris"),
        "description": _not_string | _missing | st.just("with \x00 NUL"),
        "registered_at": _bad_time | _missing,
    },
    LEADS: {
        "kind": text.filter(lambda s: s not in {"buyer", "tender", "investor", "distributor"}) | _missing,
        "city": st.just("moscow") | st.just("atlantis") | _not_string,
        "sectors": _bad_sector_list,
        "budget_eur": st.integers(max_value=-1) | st.booleans() | st.floats(allow_nan=False),
        "published_at": _bad_time,
        "deadline": _bad_date.filter(lambda v: v is not None),
    },
    MISSIONS: {
        "city": st.just("moscow") | st.just("atlantis"),
        "capacity": st.integers(max_value=0) | _bad_int,
        "starts_on": _bad_date | st.just("2999-01-01"),
        "announced_at": _bad_time,
        "sectors": _bad_codes,
    },
    PARTICIPANTS: {
        "mission_id": st.just("m-unknown") | _not_string | _missing,
        "company_id": st.just("c-unknown") | _not_string,
        "status": text.filter(lambda s: s not in {"applied", "invited", "participated", "declined"}),
        "at": _bad_time,
    },
    INTERACTIONS: {
        "company_id": st.just("c-unknown") | _not_string | _missing,
        "lead_id": st.just("l-unknown") | _not_string,
        "kind": text.filter(lambda s: s not in {"impression", "view", "interested", "declined", "deal"})
        | _not_string,
        "at": _bad_time | _missing,
        "position": st.integers(max_value=0) | st.booleans() | st.floats(allow_nan=False) | text,
    },
}


def _parses(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _parses_date(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        return _parses(value) and len(value) <= 10
    return True


def _field_matches(issue: Issue, name: str) -> bool:
    # "sectors[2]" belongs to "sectors"; ends_on is named when starts_on moves after it.
    return issue.field in {name, "ends_on"} or (issue.field or "").startswith(f"{name}[")


@SETTINGS
@given(datasets())
def test_valid_datasets_pass(data: dict[str, list[dict[str, Any]]]) -> None:
    validator = validate(data)
    assert validator.issues == []
    dataset = validator.result()
    assert len(dataset.companies) == len(data[COMPANIES])
    assert len(dataset.interactions) == len(data[INTERACTIONS])
    assert all(at.tzinfo is UTC for *_, at, _ in dataset.interactions)


@SETTINGS
@given(datasets(), st.data())
def test_one_corrupted_field_is_reported_exactly(
    data: dict[str, list[dict[str, Any]]], draw: st.DataObject
) -> None:
    file = draw.draw(st.sampled_from(sorted(CORRUPTIONS)))
    name = draw.draw(st.sampled_from(sorted(CORRUPTIONS[file])))
    index = draw.draw(st.integers(0, len(data[file]) - 1))
    value = draw.draw(CORRUPTIONS[file][name])
    if value is ...:
        del data[file][index][name]
    else:
        data[file][index][name] = value

    issues = validate(data).issues

    assert len(issues) >= 1, (file, index, name, value)
    assert all(i.file == file and i.line == index + 1 and _field_matches(i, name) for i in issues), issues
    assert str(issues[0]).startswith(f"{file}:{index + 1}: {issues[0].field}: ")


@SETTINGS
@given(datasets(), st.data(), json_values)
def test_arbitrary_json_in_a_field_never_crashes(
    data: dict[str, list[dict[str, Any]]], draw: st.DataObject, value: Any
) -> None:
    file = draw.draw(st.sampled_from(FILES))
    index = draw.draw(st.integers(0, len(data[file]) - 1))
    name = draw.draw(st.sampled_from(sorted(data[file][index])))
    data[file][index][name] = value

    validator = validate(data)

    # Ids are referred to elsewhere, so a broken id may also be reported where it is used.
    if name not in {"id"}:
        assert all(i.file == file and i.line == index + 1 for i in validator.issues), validator.issues


@SETTINGS
@given(datasets(), st.sampled_from(FILES), st.lists(st.binary(max_size=40), min_size=1, max_size=5))
def test_arbitrary_lines_never_crash(
    data: dict[str, list[dict[str, Any]]], file: str, junk: list[bytes]
) -> None:
    lines = [json.dumps(record).encode() + b"\n" for record in data[file]]
    raw = {file: [*lines, *(line.replace(b"\n", b" ") + b"\n" for line in junk)]}

    validator = validate(data, raw)

    assert all(i.file == file and (i.line or 0) > len(lines) for i in validator.issues), validator.issues
    assert len(validator.issues) <= 20
