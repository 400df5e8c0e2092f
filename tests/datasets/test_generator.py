"""The synthetic generator writes shared/dataset-format.md to the letter, reproducibly, with the structure the
ranking model is meant to learn (position bias, organic discovery, complementary sectors, both languages)."""

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from partnermatch.cities.data import BERLIN_PARTNER_CITIES
from partnermatch.sectors.nace import load_nace_rev2
from partnermatch.synthetic.generator import AFFINITY, GeneratorConfig, generate

BERLIN = ZoneInfo("Europe/Berlin")
FILES = (
    "cities.jsonl",
    "companies.jsonl",
    "leads.jsonl",
    "interactions.jsonl",
    "missions.jsonl",
    "mission_participants.jsonl",
)
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
LANGUAGE = re.compile(r"^[a-z]{2}$")
LEAD_KINDS = {"buyer", "distributor", "investor", "research_partner", "tender", "joint_venture"}
EVENT_KINDS = {"impression", "view", "interested", "declined", "contacted", "introduced", "deal"}
GRADE = {"interested": 1, "contacted": 2, "introduced": 3, "deal": 4}
FUNNEL = ("view", "interested", "contacted", "introduced", "deal")
FIELDS = {
    "cities.jsonl": {"id", "name", "country", "languages", "status"},
    "companies.jsonl": {
        "id", "name", "sectors", "employees", "founded", "export_experience", "languages", "target_cities",
        "description", "registered_at",
    },
    "leads.jsonl": {
        "id", "title", "kind", "organization", "city", "sectors", "description", "languages", "budget_eur",
        "published_at", "deadline",
    },
    "interactions.jsonl": {"company_id", "lead_id", "kind", "at", "position"},
    "missions.jsonl": {"id", "title", "city", "sectors", "starts_on", "ends_on", "capacity", "announced_at"},
    "mission_participants.jsonl": {"mission_id", "company_id", "status", "at"},
}  # fmt: skip
CONFIG = GeneratorConfig(companies=400, leads=250, weeks=20, seed=7, activity=3.0)


@dataclass
class Dataset:
    path: Path
    counts: dict[str, int]
    progress: list[tuple[str, int, int]]
    rows: dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    path = tmp_path_factory.mktemp("dataset")
    calls: list[tuple[str, int, int]] = []
    counts = generate(path, CONFIG, lambda stage, done, total: calls.append((stage, done, total)))
    rows = {
        name: [json.loads(line) for line in (path / name).read_text(encoding="utf-8").splitlines()]
        for name in FILES
    }
    return Dataset(path, counts, calls, rows)


@pytest.fixture(scope="module")
def nace() -> dict[str, str]:
    return {e.code: e.level for e in load_nace_rev2()}


def _time(value: Any) -> datetime:
    assert isinstance(value, str), value
    assert TIME.match(value), value
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    # The generator writes Berlin wall-clock time: the offset must be Berlin's at that instant.
    assert parsed.utcoffset() == parsed.astimezone(BERLIN).utcoffset(), value
    return parsed


def _date(value: Any) -> date:
    assert isinstance(value, str), value
    assert DATE.match(value), value
    return date.fromisoformat(value)


def _int(value: Any) -> int:
    assert isinstance(value, int), value
    assert not isinstance(value, bool), value
    return value


def _text(value: Any) -> str:
    assert isinstance(value, str), value
    assert value.strip(), value
    return value


def _languages(value: Any) -> None:
    assert isinstance(value, list), value
    assert value, value
    assert all(isinstance(x, str) and LANGUAGE.match(x) for x in value), value
    assert len(set(value)) == len(value), value


def _sectors(value: Any, nace: dict[str, str], most: int) -> None:
    assert isinstance(value, list), value
    assert 1 <= len(value) <= most, value
    assert len(set(value)) == len(value), value
    for code in value:
        assert isinstance(code, str), value
        assert nace.get(code) in {"division", "group", "class"}, code


def _unique_ids(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ids = [_text(r["id"]) for r in rows]
    assert len(set(ids)) == len(ids)
    return dict(zip(ids, rows, strict=True))


def _end_of_day(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), BERLIN)


def test_writes_every_file_and_reports_its_rows(data: Dataset) -> None:
    assert set(data.counts) == set(FILES)
    for name in FILES:
        assert data.counts[name] == len(data.rows[name]), name
    assert sorted(p.name for p in data.path.iterdir()) == sorted(FILES)
    assert data.counts["companies.jsonl"] == CONFIG.companies
    assert data.counts["leads.jsonl"] == CONFIG.leads
    assert data.counts["missions.jsonl"] == CONFIG.mission_count
    assert data.counts["interactions.jsonl"] > 5 * CONFIG.companies
    assert data.counts["mission_participants.jsonl"] > 0
    assert {stage for stage, _, _ in data.progress} == {
        "companies",
        "leads",
        "interactions",
        "missions",
        "written",
    }
    assert ("interactions", CONFIG.companies, CONFIG.companies) in data.progress


def test_every_row_has_exactly_the_fields_of_its_file(data: Dataset) -> None:
    for name, fields in FIELDS.items():
        for line, row in enumerate(data.rows[name], 1):
            assert row.keys() == fields, (name, line)


def test_cities_are_the_built_in_list(data: Dataset) -> None:
    cities = _unique_ids(data.rows["cities.jsonl"])
    assert cities.keys() == {c.id for c in BERLIN_PARTNER_CITIES}
    for row in cities.values():
        _text(row["name"])
        assert re.match(r"^[A-Z]{2}$", row["country"]), row
        _languages(row["languages"])
        assert row["status"] in {"active", "suspended"}
    assert cities["moscow"]["status"] == "suspended"


def test_companies_follow_the_format(data: Dataset, nace: dict[str, str]) -> None:
    cities = {c["id"] for c in data.rows["cities.jsonl"]}
    for row in _unique_ids(data.rows["companies.jsonl"]).values():
        _text(row["name"])
        _sectors(row["sectors"], nace, 5)
        assert _int(row["employees"]) >= 1
        assert 1800 <= _int(row["founded"]) <= _time(row["registered_at"]).year
        assert row["export_experience"] in {"none", "some", "extensive"}
        _languages(row["languages"])
        assert isinstance(row["target_cities"], list)
        assert set(row["target_cities"]) <= cities
        assert len(set(row["target_cities"])) == len(row["target_cities"])
        _text(row["description"])


def test_leads_follow_the_format(data: Dataset, nace: dict[str, str]) -> None:
    active = {c["id"] for c in data.rows["cities.jsonl"] if c["status"] == "active"}
    for row in _unique_ids(data.rows["leads.jsonl"]).values():
        _text(row["title"])
        assert row["kind"] in LEAD_KINDS
        _text(row["organization"])
        assert row["city"] in active, row["city"]
        _sectors(row["sectors"], nace, 5)
        _text(row["description"])
        _languages(row["languages"])
        assert row["budget_eur"] is None or _int(row["budget_eur"]) > 0
        published = _time(row["published_at"])
        if row["deadline"] is None:
            assert row["kind"] != "tender"
        else:
            weeks = (_date(row["deadline"]) - published.astimezone(BERLIN).date()).days / 7
            assert 2 <= weeks <= 16, row


def test_missions_and_participants_follow_the_format(data: Dataset, nace: dict[str, str]) -> None:
    active = {c["id"] for c in data.rows["cities.jsonl"] if c["status"] == "active"}
    companies = _unique_ids(data.rows["companies.jsonl"])
    missions = _unique_ids(data.rows["missions.jsonl"])
    for row in missions.values():
        _text(row["title"])
        assert row["city"] in active
        _sectors(row["sectors"], nace, 3)
        announced = _time(row["announced_at"])
        assert announced.astimezone(BERLIN).date() < _date(row["starts_on"]) <= _date(row["ends_on"])
        assert 8 <= _int(row["capacity"]) <= 25
    pairs = Counter()
    statuses = Counter()
    for row in data.rows["mission_participants.jsonl"]:
        mission = missions[row["mission_id"]]
        company = companies[row["company_id"]]
        assert row["status"] in {"applied", "invited", "participated", "declined"}
        at = _time(row["at"])
        assert at > _time(mission["announced_at"])
        assert at > _time(company["registered_at"])
        pairs[row["mission_id"], row["company_id"]] += 1
        statuses[row["status"]] += 1
    assert max(pairs.values()) == 1, "one final row per (mission, company)"
    assert set(statuses) == {"applied", "invited", "participated", "declined"}
    participated = Counter(
        r["mission_id"] for r in data.rows["mission_participants.jsonl"] if r["status"] == "participated"
    )
    for mission_id, count in participated.items():
        assert count <= missions[mission_id]["capacity"]


def test_interactions_follow_the_format_and_the_timeline(data: Dataset) -> None:
    companies = _unique_ids(data.rows["companies.jsonl"])
    leads = _unique_ids(data.rows["leads.jsonl"])
    for row in data.rows["interactions.jsonl"]:
        company, lead = companies[row["company_id"]], leads[row["lead_id"]]
        assert row["kind"] in EVENT_KINDS
        at = _time(row["at"])
        assert at > _time(lead["published_at"]), row
        assert at > _time(company["registered_at"]), row
        if lead["deadline"] is not None:
            assert at < _end_of_day(_date(lead["deadline"])), row
        position = row["position"]
        if row["kind"] == "impression":
            assert 1 <= _int(position) <= CONFIG.list_size
        elif row["kind"] == "view":
            assert position is None or 1 <= _int(position) <= CONFIG.list_size
        else:
            assert position is None, row
    history_end = datetime.combine(CONFIG.start + timedelta(weeks=CONFIG.weeks), datetime.min.time(), BERLIN)
    times = [_time(r["at"]) for r in data.rows["interactions.jsonl"]]
    assert min(times) >= datetime.combine(CONFIG.start, datetime.min.time(), BERLIN)
    assert max(times) < history_end
    assert times == sorted(times), "oldest first"


def test_each_pair_goes_through_the_funnel_in_order(data: Dataset) -> None:
    events: dict[tuple[str, str], list[tuple[datetime, str, int | None]]] = defaultdict(list)
    for row in data.rows["interactions.jsonl"]:
        events[row["company_id"], row["lead_id"]].append((_time(row["at"]), row["kind"], row["position"]))
    for pair, evs in events.items():
        kinds = [k for _, k, _ in sorted(evs, key=lambda e: e[0])]
        non_impressions = [k for k in kinds if k != "impression"]
        # Impressions only before the view; every other kind at most once.
        assert kinds[: len(kinds) - len(non_impressions)] == ["impression"] * (
            len(kinds) - len(non_impressions)
        )
        assert len(set(non_impressions)) == len(non_impressions), pair
        if non_impressions:
            assert non_impressions[0] == "view", pair
        if "declined" in non_impressions:
            assert non_impressions == ["view", "declined"], pair
        else:
            assert non_impressions == list(FUNNEL[: len(non_impressions)]), pair
        view = [e for e in evs if e[1] == "view"]
        shown = [e for e in evs if e[1] == "impression"]
        if view and view[0][2] is not None:
            # A view from the list carries the position of the impression it came from.
            assert view[0][2] in {p for _, _, p in shown}, pair
    kinds_seen = Counter(k for evs in events.values() for _, k, _ in evs)
    assert set(kinds_seen) == EVENT_KINDS
    assert kinds_seen["impression"] > kinds_seen["view"] > kinds_seen["interested"] > kinds_seen["contacted"]
    assert kinds_seen["contacted"] > kinds_seen["introduced"] > kinds_seen["deal"]


def test_same_seed_same_bytes_other_seed_other_data(data: Dataset, tmp_path: Path) -> None:
    again = tmp_path / "again"
    other = tmp_path / "other"
    generate(again, CONFIG)
    generate(other, replace(CONFIG, seed=CONFIG.seed + 1))
    for name in FILES:
        assert (again / name).read_bytes() == (data.path / name).read_bytes(), name
    for name in ("companies.jsonl", "leads.jsonl", "interactions.jsonl", "missions.jsonl"):
        assert (other / name).read_bytes() != (data.path / name).read_bytes(), name


def test_views_per_impression_fall_with_position(data: Dataset) -> None:
    impressions = Counter(r["position"] for r in data.rows["interactions.jsonl"] if r["kind"] == "impression")
    views = Counter(
        r["position"] for r in data.rows["interactions.jsonl"] if r["kind"] == "view" and r["position"]
    )

    def rate(positions: range) -> float:
        return sum(views[p] for p in positions) / sum(impressions[p] for p in positions)

    top, middle, bottom = rate(range(1, 3)), rate(range(4, 7)), rate(range(8, 11))
    assert top > 1.5 * middle > 0
    assert middle > bottom > 0


def _positive_pairs(data: Dataset) -> dict[tuple[str, str], int]:
    best: dict[tuple[str, str], int] = {}
    for r in data.rows["interactions.jsonl"]:
        if r["kind"] in GRADE:
            pair = (r["company_id"], r["lead_id"])
            best[pair] = max(best.get(pair, 0), GRADE[r["kind"]])
    return best


def test_organic_discovery_is_a_real_share_of_positive_interactions(data: Dataset) -> None:
    view_position = {
        (r["company_id"], r["lead_id"]): r["position"]
        for r in data.rows["interactions.jsonl"]
        if r["kind"] == "view"
    }
    positives = _positive_pairs(data)
    organic = [p for p in positives if view_position[p] is None]
    assert 0.15 <= len(organic) / len(positives) <= 0.5
    # Organic finds are not things the list showed first.
    shown = {
        (r["company_id"], r["lead_id"]) for r in data.rows["interactions.jsonl"] if r["kind"] == "impression"
    }
    assert any(p not in shown for p in organic)


def test_positive_interactions_follow_sectors_including_complementary_ones(data: Dataset) -> None:
    companies = {c["id"]: {s[:2] for s in c["sectors"]} for c in data.rows["companies.jsonl"]}
    leads = {row["id"]: row for row in data.rows["leads.jsonl"]}
    positives = list(_positive_pairs(data))
    every_pair = [(c, lead) for c in companies for lead in leads]

    def shares_division(pair: tuple[str, str]) -> bool:
        return bool(companies[pair[0]] & {s[:2] for s in leads[pair[1]]["sectors"]})

    def complements(pair: tuple[str, str]) -> bool:
        code = leads[pair[1]]["sectors"][0]
        return bool(companies[pair[0]] & set(AFFINITY.get(code[:4]) or AFFINITY.get(code[:2]) or {}))

    def share(pairs: list[tuple[str, str]], test: Callable[[tuple[str, str]], bool]) -> float:
        return sum(map(test, pairs)) / len(pairs)

    assert share(positives, shares_division) > 3 * share(every_pair, shares_division)
    # Positives across divisions (a hospital and a maker of surgical instruments) follow the
    # affinity map far more often than chance would have it.
    across = [p for p in positives if not shares_division(p)]
    assert len(across) >= 20
    assert share(across, complements) > 1.5 * share(
        [p for p in every_pair if not shares_division(p)], complements
    )


def test_descriptions_mix_german_and_english(data: Dataset) -> None:
    german = [c for c in data.rows["companies.jsonl"] if "Wir suchen" in c["description"]]
    english = [c for c in data.rows["companies.jsonl"] if "We are looking for" in c["description"]]
    assert len(german) + len(english) == CONFIG.companies
    assert 0.35 <= len(german) / CONFIG.companies <= 0.65
    lead_text = " ".join(r["description"] for r in data.rows["leads.jsonl"])
    assert "looking for" in lead_text


def test_history_can_be_split_at_the_evaluation_cutoff(data: Dataset) -> None:
    rows = data.rows["interactions.jsonl"]
    positives = sorted(_time(r["at"]) for r in rows if r["kind"] in GRADE)
    cutoff = positives[int(0.8 * len(positives))]
    registered = {c["id"]: _time(c["registered_at"]) for c in data.rows["companies.jsonl"]}
    start = datetime.combine(CONFIG.start, datetime.min.time(), BERLIN)
    assert any(t < start for t in registered.values()), "some companies predate the history"
    assert sum(t > start for t in registered.values()) > CONFIG.companies / 2, "most arrive during it"
    published_weeks = {(_time(r["published_at"]) - start).days // 7 for r in data.rows["leads.jsonl"]}
    assert set(range(CONFIG.weeks)) <= published_weeks, "leads arrive every week"
    queries = {r["company_id"] for r in rows if r["kind"] in GRADE and _time(r["at"]) >= cutoff}
    assert len({c for c in queries if registered[c] < cutoff}) >= 20
    cutoff_day = cutoff.astimezone(BERLIN).date()
    open_at_cutoff = [
        r
        for r in data.rows["leads.jsonl"]
        if _time(r["published_at"]) < cutoff and (r["deadline"] is None or cutoff_day <= _date(r["deadline"]))
    ]
    assert len(open_at_cutoff) >= 20


def test_activity_scales_the_interactions(tmp_path: Path) -> None:
    small = GeneratorConfig(companies=150, leads=80, weeks=8, seed=3)
    counts = [
        generate(tmp_path / str(a), replace(small, activity=a))["interactions.jsonl"] for a in (0.0, 1.0, 4.0)
    ]
    assert counts[0] == 0
    assert 0 < counts[1] < counts[2]


@dataclass(frozen=True)
class Exposure:
    top_decile_share: float
    """Of all impressions, the share of the tenth of leads shown most."""
    sharing_division: float
    """Of all impressions, the share whose company and lead share a NACE division."""
    leads_shown: int


def _exposure(data: Dataset) -> Exposure:
    companies = {c["id"]: {s[:2] for s in c["sectors"]} for c in data.rows["companies.jsonl"]}
    leads = {row["id"]: {s[:2] for s in row["sectors"]} for row in data.rows["leads.jsonl"]}
    shown = [r for r in data.rows["interactions.jsonl"] if r["kind"] == "impression"]
    per_lead = sorted(Counter(r["lead_id"] for r in shown).values(), reverse=True)
    return Exposure(
        top_decile_share=sum(per_lead[: len(leads) // 10]) / len(shown),
        sharing_division=sum(bool(companies[r["company_id"]] & leads[r["lead_id"]]) for r in shown)
        / len(shown),
        leads_shown=len(per_lead),
    )


@pytest.fixture(scope="module")
def other_policies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Dataset]:
    found = {}
    for policy in ("popularity", "text"):
        path = tmp_path_factory.mktemp(policy)
        counts = generate(path, replace(CONFIG, logging_policy=policy))
        rows = {name: [json.loads(line) for line in (path / name).read_text().splitlines()] for name in FILES}
        found[policy] = Dataset(path, counts, [], rows)
    return found


def test_a_popularity_policy_shows_everyone_the_same_few_leads(
    data: Dataset, other_policies: dict[str, Dataset]
) -> None:
    rules, popularity = _exposure(data), _exposure(other_policies["popularity"])
    assert popularity.top_decile_share > 1.8 * rules.top_decile_share
    assert popularity.leads_shown < rules.leads_shown
    # It knows no sectors: the lists follow them no more than the leads on offer do.
    assert popularity.sharing_division < 0.5 * rules.sharing_division


def test_a_text_policy_spreads_exposure_and_ignores_sector_codes(
    data: Dataset, other_policies: dict[str, Dataset]
) -> None:
    rules, text = _exposure(data), _exposure(other_policies["text"])
    assert text.sharing_division < 0.7 * rules.sharing_division
    assert text.top_decile_share < _exposure(other_policies["popularity"]).top_decile_share / 2
    # The rest of the world (companies, leads, missions) is the same: only the logs differ.
    for name in ("companies.jsonl", "leads.jsonl", "missions.jsonl"):
        assert (other_policies["text"].path / name).read_bytes() == (data.path / name).read_bytes(), name
    assert other_policies["text"].rows["interactions.jsonl"] != data.rows["interactions.jsonl"]


@pytest.mark.parametrize(
    "change",
    [
        {"companies": 0},
        {"leads": 0},
        {"weeks": 0},
        {"activity": -1.0},
        {"dormant_share": 1.0},
        {"logging_policy": "random"},
    ],
)
def test_rejects_impossible_configurations(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(change))):
        GeneratorConfig(**change)
