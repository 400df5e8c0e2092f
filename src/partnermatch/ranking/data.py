"""A dataset folder (shared/dataset-format.md) as compact numpy arrays, for ranking.

This reader trusts its input: ``partnermatch import`` is the validator. Times are
float64 seconds since the epoch (UTC); a deadline becomes the end of its day in
Berlin, so "open at T" is simply ``T < deadline_end``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import numpy as np
import numpy.typing as npt

from partnermatch.cities.data import BERLIN_PARTNER_CITIES

__all__ = [
    "EVENT_KINDS",
    "EXPORT_LEVELS",
    "GRADE",
    "LEAD_KINDS",
    "PARTICIPANT_GRADE",
    "Companies",
    "Dataset",
    "Interactions",
    "Leads",
    "Missions",
    "Participants",
    "default_cutoff",
    "load_dataset",
    "parse_time",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

BERLIN = ZoneInfo("Europe/Berlin")
LEAD_KINDS = ("buyer", "distributor", "investor", "research_partner", "tender", "joint_venture")
EXPORT_LEVELS = ("none", "some", "extensive")
EVENT_KINDS = ("impression", "view", "interested", "declined", "contacted", "introduced", "deal")
IMPRESSION, VIEW, INTERESTED, DECLINED, CONTACTED, INTRODUCED, DEAL = range(7)
# Graded relevance of the protocol, indexed by event kind.
GRADE = np.array([0, 0, 1, 0, 2, 3, 4], dtype=np.int64)
PARTICIPANT_STATUSES = ("applied", "invited", "participated", "declined")
PARTICIPANT_GRADE = np.array([1, 1, 2, 0], dtype=np.int64)


@cache
def _parse_cached(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def parse_time(value: str) -> float:
    """An ISO 8601 time with an offset, as epoch seconds. Cached: logs repeat their timestamps."""
    return _parse_cached(value)


def deadline_end(value: str | None) -> float:
    """End of the deadline day in Berlin (epoch seconds); inf when open-ended."""
    if value is None:
        return math.inf
    day = date.fromisoformat(value) + timedelta(days=1)
    return datetime.combine(day, time(), BERLIN).timestamp()


def berlin_date(at: float) -> date:
    return datetime.fromtimestamp(at, BERLIN).date()


def describe_time(at: float) -> str:
    """Epoch seconds as an ISO 8601 time in UTC (reports and artifact metadata)."""
    return datetime.fromtimestamp(at, UTC).isoformat()


@dataclass
class Companies:
    ids: list[str]
    names: list[str]
    sectors: list[list[str]]
    employees: FloatArray
    founded: FloatArray
    export: IntArray
    languages: list[list[str]]
    targets: list[list[str]]
    descriptions: list[str]
    registered: FloatArray

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: Sequence[int] | IntArray) -> Companies:
        idx = np.asarray(rows, dtype=np.int64)
        return Companies(
            [self.ids[i] for i in idx],
            [self.names[i] for i in idx],
            [self.sectors[i] for i in idx],
            self.employees[idx],
            self.founded[idx],
            self.export[idx],
            [self.languages[i] for i in idx],
            [self.targets[i] for i in idx],
            [self.descriptions[i] for i in idx],
            self.registered[idx],
        )


@dataclass
class Leads:
    ids: list[str]
    titles: list[str]
    kinds: IntArray
    cities: list[str]
    sectors: list[list[str]]
    descriptions: list[str]
    languages: list[list[str]]
    budget: FloatArray
    published: FloatArray
    deadline_end: FloatArray

    def __len__(self) -> int:
        return len(self.ids)

    def texts(self) -> list[str]:
        return [f"{t}. {d}" for t, d in zip(self.titles, self.descriptions, strict=True)]

    def take(self, rows: Sequence[int] | IntArray) -> Leads:
        idx = np.asarray(rows, dtype=np.int64)
        return Leads(
            [self.ids[i] for i in idx],
            [self.titles[i] for i in idx],
            self.kinds[idx],
            [self.cities[i] for i in idx],
            [self.sectors[i] for i in idx],
            [self.descriptions[i] for i in idx],
            [self.languages[i] for i in idx],
            self.budget[idx],
            self.published[idx],
            self.deadline_end[idx],
        )


@dataclass
class Interactions:
    company: IntArray
    lead: IntArray
    kind: IntArray
    at: FloatArray
    position: FloatArray
    """NaN when the lead was not shown in a ranked list (organic discovery)."""

    def __len__(self) -> int:
        return len(self.at)

    def take(self, mask: npt.NDArray[np.bool_]) -> Interactions:
        return Interactions(
            self.company[mask], self.lead[mask], self.kind[mask], self.at[mask], self.position[mask]
        )

    @property
    def grade(self) -> IntArray:
        return GRADE[self.kind]


@dataclass
class Missions:
    ids: list[str]
    titles: list[str]
    cities: list[str]
    sectors: list[list[str]]
    capacity: IntArray
    announced: FloatArray

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: Sequence[int] | IntArray) -> Missions:
        idx = np.asarray(rows, dtype=np.int64)
        return Missions(
            [self.ids[i] for i in idx],
            [self.titles[i] for i in idx],
            [self.cities[i] for i in idx],
            [self.sectors[i] for i in idx],
            self.capacity[idx],
            self.announced[idx],
        )


@dataclass
class Participants:
    mission: IntArray
    company: IntArray
    status: IntArray
    at: FloatArray

    def __len__(self) -> int:
        return len(self.at)

    def take(self, mask: npt.NDArray[np.bool_]) -> Participants:
        return Participants(self.mission[mask], self.company[mask], self.status[mask], self.at[mask])


@dataclass
class Dataset:
    companies: Companies
    leads: Leads
    interactions: Interactions
    missions: Missions
    participants: Participants
    city_languages: dict[str, list[str]] = field(default_factory=dict)
    city_names: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    def before(self, cutoff: float) -> Dataset:
        """What existed before ``cutoff``, as a blind-ranking folder holds it.

        Missions announced at or after the cutoff stay (they are the mission queries), without participants.
        """
        crows = np.flatnonzero(self.companies.registered < cutoff)
        lrows = np.flatnonzero(self.leads.published < cutoff)
        cmap = np.full(len(self.companies), -1, dtype=np.int64)
        cmap[crows] = np.arange(len(crows))
        lmap = np.full(len(self.leads), -1, dtype=np.int64)
        lmap[lrows] = np.arange(len(lrows))
        it = self.interactions
        keep = (it.at < cutoff) & (cmap[it.company] >= 0) & (lmap[it.lead] >= 0)
        inter = it.take(keep)
        inter = replace(inter, company=cmap[inter.company], lead=lmap[inter.lead])
        pa = self.participants
        pkeep = (pa.at < cutoff) & (cmap[pa.company] >= 0)
        parts = pa.take(pkeep)
        parts = replace(parts, company=cmap[parts.company])
        return Dataset(
            self.companies.take(crows),
            self.leads.take(lrows),
            inter,
            self.missions,
            parts,
            self.city_languages,
            self.city_names,
            self.files,
        )


def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = [line for line in data.splitlines() if line.strip()]
    # One decode of a JSON array is several times faster than a decode per line.
    result: list[dict[str, Any]] = msgspec.json.decode(b"[" + b",".join(lines) + b"]")
    return result


def _index(ids: Iterable[str]) -> dict[str, int]:
    return {value: i for i, value in enumerate(ids)}


def load_dataset(directory: Path | str) -> Dataset:
    """Read a dataset folder; rows that refer to unknown ids are skipped."""
    directory = Path(directory)
    files = {
        name: directory / name
        for name in (
            "cities.jsonl",
            "companies.jsonl",
            "leads.jsonl",
            "interactions.jsonl",
            "missions.jsonl",
            "mission_participants.jsonl",
        )
        if (directory / name).exists()
    }
    city_rows = _read_lines(directory / "cities.jsonl")
    if city_rows:
        city_languages = {r["id"]: list(r.get("languages") or []) for r in city_rows}
        city_names = {r["id"]: str(r.get("name", r["id"])) for r in city_rows}
    else:
        city_languages = {c.id: list(c.languages) for c in BERLIN_PARTNER_CITIES}
        city_names = {c.id: c.name for c in BERLIN_PARTNER_CITIES}

    rows = _read_lines(directory / "companies.jsonl")
    export_index = {v: i for i, v in enumerate(EXPORT_LEVELS)}
    companies = Companies(
        [r["id"] for r in rows],
        [r.get("name", "") for r in rows],
        [list(r.get("sectors") or []) for r in rows],
        np.array([float(r.get("employees", 1)) for r in rows], dtype=np.float64),
        np.array([float(r.get("founded", 2000)) for r in rows], dtype=np.float64),
        np.array([export_index.get(r.get("export_experience", "none"), 0) for r in rows], dtype=np.int64),
        [list(r.get("languages") or []) for r in rows],
        [list(r.get("target_cities") or []) for r in rows],
        [r.get("description", "") for r in rows],
        np.array([parse_time(r["registered_at"]) for r in rows], dtype=np.float64),
    )
    rows = _read_lines(directory / "leads.jsonl")
    kind_index = {v: i for i, v in enumerate(LEAD_KINDS)}
    leads = Leads(
        [r["id"] for r in rows],
        [r.get("title", "") for r in rows],
        np.array([kind_index.get(r.get("kind", ""), 0) for r in rows], dtype=np.int64),
        [r.get("city", "") for r in rows],
        [list(r.get("sectors") or []) for r in rows],
        [r.get("description", "") for r in rows],
        [list(r.get("languages") or []) for r in rows],
        np.array(
            [math.nan if r.get("budget_eur") is None else float(r["budget_eur"]) for r in rows],
            dtype=np.float64,
        ),
        np.array([parse_time(r["published_at"]) for r in rows], dtype=np.float64),
        np.array([deadline_end(r.get("deadline")) for r in rows], dtype=np.float64),
    )
    cidx, lidx = _index(companies.ids), _index(leads.ids)
    event_index = {v: i for i, v in enumerate(EVENT_KINDS)}
    rows = _read_lines(directory / "interactions.jsonl")
    rows = [r for r in rows if r["company_id"] in cidx and r["lead_id"] in lidx and r["kind"] in event_index]
    interactions = Interactions(
        np.array([cidx[r["company_id"]] for r in rows], dtype=np.int64),
        np.array([lidx[r["lead_id"]] for r in rows], dtype=np.int64),
        np.array([event_index[r["kind"]] for r in rows], dtype=np.int64),
        np.array([parse_time(r["at"]) for r in rows], dtype=np.float64),
        np.array(
            [math.nan if r.get("position") is None else float(r["position"]) for r in rows], dtype=np.float64
        ),
    )
    order = np.argsort(interactions.at, kind="stable")
    interactions = Interactions(
        interactions.company[order],
        interactions.lead[order],
        interactions.kind[order],
        interactions.at[order],
        interactions.position[order],
    )
    rows = _read_lines(directory / "missions.jsonl")
    missions = Missions(
        [r["id"] for r in rows],
        [r.get("title", "") for r in rows],
        [r.get("city", "") for r in rows],
        [list(r.get("sectors") or []) for r in rows],
        np.array([int(r.get("capacity", 1)) for r in rows], dtype=np.int64),
        np.array([parse_time(r["announced_at"]) for r in rows], dtype=np.float64),
    )
    midx = _index(missions.ids)
    status_index = {v: i for i, v in enumerate(PARTICIPANT_STATUSES)}
    rows = _read_lines(directory / "mission_participants.jsonl")
    rows = [r for r in rows if r["mission_id"] in midx and r["company_id"] in cidx]
    participants = Participants(
        np.array([midx[r["mission_id"]] for r in rows], dtype=np.int64),
        np.array([cidx[r["company_id"]] for r in rows], dtype=np.int64),
        np.array([status_index.get(r["status"], 3) for r in rows], dtype=np.int64),
        np.array([parse_time(r["at"]) for r in rows], dtype=np.float64),
    )
    return Dataset(companies, leads, interactions, missions, participants, city_languages, city_names, files)


def default_cutoff(interactions: Interactions) -> float:
    """The protocol's cutoff: time of the positive interaction at 0-based index floor(0.8 N)."""
    times = np.sort(interactions.at[interactions.grade >= 1])
    if len(times) == 0:
        raise ValueError("the dataset has no positive interactions, so there is no default cutoff")
    return float(times[math.floor(0.8 * len(times))])
