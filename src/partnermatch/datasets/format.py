"""Reading and checking a dataset folder (shared/dataset-format.md, version 1), without the database.

The validator streams every file line by line and turns each valid line into a
plain record. What it needs from the database (NACE codes, cities, external ids
already stored) comes in as a ``Reference``, so tests can run it on in-memory sets.
"""

from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import msgspec
from rich.progress import Progress, TaskID

from partnermatch.enums import CityStatus, ExportExperience, InteractionKind, LeadKind, ParticipantStatus
from partnermatch.errors import FieldIssue, InvalidInput
from partnermatch.reference import ISO_639_1, ISO_3166_1_ALPHA_2
from partnermatch.sectors.nace import level_of

CITIES = "cities.jsonl"
COMPANIES = "companies.jsonl"
LEADS = "leads.jsonl"
MISSIONS = "missions.jsonl"
PARTICIPANTS = "mission_participants.jsonl"
INTERACTIONS = "interactions.jsonl"
# Reading order: every file refers only to files read before it.
FILES = (CITIES, COMPANIES, LEADS, MISSIONS, PARTICIPANTS, INTERACTIONS)
REQUIRED_FILES = frozenset({COMPANIES, LEADS, INTERACTIONS})

MAX_ERRORS = 20
# Column limits of the schema: a longer value would fail half-way through the write on PostgreSQL.
MAX_ID = 200
MAX_CITY_ID = 64
MAX_CITY_NAME = 200
MAX_NAME = 300
MAX_TITLE = 500
MAX_SECTORS = 5
MAX_MISSION_SECTORS = 10
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
FOUNDED_RANGE = (1600, 2200)


@dataclass(frozen=True, slots=True)
class Issue:
    file: str
    line: int | None
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"


class DatasetInvalid(InvalidInput):
    """The dataset breaks the format; raised before anything is written."""

    def __init__(self, issues: Sequence[Issue], *, truncated: bool = False) -> None:
        self.errors = [str(issue) for issue in issues]
        self.truncated = truncated
        more = f" (stopped after the first {len(issues)})" if truncated else ""
        detail = f"the dataset is invalid, nothing was imported; {len(issues)} errors{more}:\n" + "\n".join(
            self.errors
        )
        super().__init__(
            detail,
            issues=[
                FieldIssue(f"{i.file}:{i.line}: {i.field}" if i.field else f"{i.file}:{i.line}", i.reason)
                for i in issues
            ],
        )


@dataclass(frozen=True)
class Reference:
    """What the database already knows; ``cities`` maps id -> status."""

    sectors: Container[str]
    cities: Mapping[str, str]
    companies: Container[str] = frozenset()
    leads: Container[str] = frozenset()
    missions: Container[str] = frozenset()


@dataclass(slots=True)
class CityRecord:
    id: str
    name: str
    country: str
    languages: list[str]
    status: str


@dataclass(slots=True)
class CompanyRecord:
    id: str
    name: str
    sectors: list[str]
    employees: int
    founded: int
    export_experience: str
    languages: list[str]
    target_cities: list[str]
    description: str
    registered_at: datetime


@dataclass(slots=True)
class LeadRecord:
    id: str
    title: str
    kind: str
    organization: str
    city: str
    sectors: list[str]
    description: str
    languages: list[str]
    budget_eur: int | None
    published_at: datetime
    deadline: date | None


@dataclass(slots=True)
class MissionRecord:
    id: str
    title: str
    city: str
    sectors: list[str]
    starts_on: date
    ends_on: date
    capacity: int
    announced_at: datetime


@dataclass(slots=True)
class ParticipantRecord:
    mission_id: str
    company_id: str
    status: str
    at: datetime


# (company_id, lead_id, kind, at in UTC, position): a tuple, since there can be millions.
InteractionRecord = tuple[str, str, str, datetime, int | None]


@dataclass
class Dataset:
    cities: list[CityRecord] = field(default_factory=list)
    companies: list[CompanyRecord] = field(default_factory=list)
    leads: list[LeadRecord] = field(default_factory=list)
    missions: list[MissionRecord] = field(default_factory=list)
    participants: list[ParticipantRecord] = field(default_factory=list)
    interactions: list[InteractionRecord] = field(default_factory=list)
    present: set[str] = field(default_factory=set)


class _Stop(Exception):
    pass


_MISSING: Any = object()
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def show(value: Any) -> str:
    """A value as it would read in the file, shortened so a huge field doesn't flood the report."""
    text = repr(value) if isinstance(value, str) else _encoder.encode(value).decode()
    return text if len(text) <= 60 else text[:57] + "..."


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _choices(enum: Iterable[str]) -> dict[str, str]:
    # Mapping a value to the one canonical str object keeps millions of rows from holding copies.
    return {str(value): str(value) for value in enum}


_LEAD_KINDS = _choices(LeadKind)
_EXPERIENCE = _choices(ExportExperience)
_INTERACTION_KINDS = _choices(InteractionKind)
_PARTICIPANT_STATUSES = _choices(ParticipantStatus)
_CITY_STATUSES = _choices(CityStatus)


def parse_time(value: Any) -> tuple[datetime | None, str]:
    """A time with an offset, converted to UTC; or None and the reason."""
    if not isinstance(value, str):
        return None, f"expected an ISO 8601 time string, got {_json_kind(value)}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None, f"{show(value)} is not an ISO 8601 time"
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return (
            None,
            f"{show(value)} has no UTC offset (write e.g. {parsed.date().isoformat()}T09:30:00+01:00)",
        )
    try:
        return parsed.astimezone(UTC), ""
    except OverflowError:
        return None, f"{show(value)} is out of range"


_NO_TIME = datetime.min.replace(tzinfo=UTC)


class _Row:
    """The fields of one line. Each accessor records its own error and then returns a placeholder:
    a record is built only when ``ok`` is still true at the end of the line."""

    __slots__ = ("file", "line", "obj", "ok", "validator")

    def __init__(self, validator: "Validator", file: str, line: int, obj: dict[str, Any]) -> None:
        self.validator = validator
        self.file = file
        self.line = line
        self.obj = obj
        self.ok = True

    def error(self, name: str, reason: str) -> None:
        self.ok = False
        self.validator.add(Issue(self.file, self.line, name, reason))

    def value(self, name: str, *, nullable: bool = False) -> Any:
        value = self.obj.get(name, _MISSING)
        if value is _MISSING:
            if nullable:
                # Writers that leave out nulls are common; an absent nullable field means null.
                return None
            self.error(name, "required field is missing")
        elif value is None and not nullable:
            self.error(name, "must not be null")
            return _MISSING
        return value

    def string(self, name: str, *, max_length: int | None = None, nonempty: bool = False) -> str:
        value = self.value(name)
        if value is _MISSING:
            return ""
        return self.check_string(name, value, max_length=max_length, nonempty=nonempty) or ""

    def check_string(
        self, name: str, value: Any, *, max_length: int | None = None, nonempty: bool = False
    ) -> str | None:
        if not isinstance(value, str):
            self.error(name, f"expected a string, got {_json_kind(value)} {show(value)}")
            return None
        if nonempty and not value.strip():
            self.error(name, "must not be empty")
            return None
        if max_length is not None and len(value) > max_length:
            self.error(name, f"longer than {max_length} characters")
            return None
        if "\x00" in value:
            # PostgreSQL text cannot hold NUL.
            self.error(name, "contains a NUL character")
            return None
        return value

    def identifier(self, name: str, seen: dict[str, int], max_length: int = MAX_ID) -> str:
        value = self.string(name, max_length=max_length, nonempty=True)
        if not value:
            return ""
        first = seen.get(value)
        if first is not None:
            self.error(name, f"{show(value)} is a duplicate of line {first}")
            return ""
        seen[value] = self.line
        return value

    def integer(self, name: str, *, minimum: int, maximum: int = INT32_MAX) -> int:
        value = self.optional_integer(name, minimum=minimum, maximum=maximum, nullable=False)
        return 0 if value is None else value

    def optional_integer(
        self, name: str, *, minimum: int, maximum: int = INT32_MAX, nullable: bool = True
    ) -> int | None:
        value = self.value(name, nullable=nullable)
        if value is _MISSING or value is None:
            return None
        # bool is an int subclass in Python, but true is not a number in JSON.
        if type(value) is not int:
            self.error(name, f"expected an integer, got {_json_kind(value)} {show(value)}")
            return None
        if value < minimum:
            self.error(name, f"must be at least {minimum}, got {value}")
            return None
        if value > maximum:
            self.error(name, f"must be at most {maximum}, got {value}")
            return None
        return value

    def code(self, name: str, allowed: Container[str], kind: str) -> str:
        value = self.value(name)
        text = None if value is _MISSING else self.check_string(name, value)
        if text is None:
            return ""
        if text not in allowed:
            self.error(name, f"{show(text)} is not {kind}")
            return ""
        return text

    def choice(self, name: str, allowed: Mapping[str, str]) -> str:
        value = self.value(name)
        if value is _MISSING:
            return ""
        canonical = allowed.get(value) if isinstance(value, str) else None
        if canonical is None:
            self.error(name, f"{show(value)} is not one of {', '.join(allowed)}")
            return ""
        return canonical

    def time(self, name: str) -> datetime:
        value = self.value(name)
        if value is _MISSING:
            return _NO_TIME
        parsed, reason = parse_time(value)
        if parsed is None:
            self.error(name, reason)
            return _NO_TIME
        return parsed

    def date(self, name: str, *, nullable: bool = False) -> date | None:
        value = self.value(name, nullable=nullable)
        if value is _MISSING or value is None:
            return None
        if not isinstance(value, str):
            self.error(name, f"expected an ISO 8601 date string, got {_json_kind(value)} {show(value)}")
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.error(name, f"{show(value)} is not an ISO 8601 date (YYYY-MM-DD)")
            return None

    def strings(self, name: str, *, nullable: bool = False) -> list[tuple[str, str]]:
        """The list's valid string items with their field names; item errors are recorded."""
        value = self.value(name, nullable=nullable)
        if value is _MISSING or value is None:
            return []
        if not isinstance(value, list):
            self.error(name, f"expected an array, got {_json_kind(value)} {show(value)}")
            return []
        items: list[tuple[str, str]] = []
        for index, item in enumerate(value):
            label = f"{name}[{index}]"
            text = self.check_string(label, item)
            if text is not None:
                items.append((label, text))
        return items

    def sectors(self, name: str, *, minimum: int, maximum: int, nullable: bool = False) -> list[str]:
        raw = self.obj.get(name)
        items = self.strings(name, nullable=nullable)
        if not isinstance(raw, list):
            return []
        if not minimum <= len(raw) <= maximum:
            self.error(name, f"expected {minimum} to {maximum} codes, got {len(raw)}")
            return []
        known = self.validator.reference.sectors
        codes: dict[str, None] = {}
        for label, code in items:
            if code in known:
                # A repeated code adds nothing; the first occurrence keeps its rank.
                codes.setdefault(code)
            elif level_of(code) == "section":
                self.error(label, f"{show(code)} is a NACE section; use a division, group or class code")
            else:
                self.error(label, f"{show(code)} is not a NACE Rev. 2 code")
        return list(codes)

    def languages(self, name: str) -> list[str]:
        items = self.strings(name)
        for label, code in items:
            if code not in ISO_639_1:
                self.error(label, f"{show(code)} is not an ISO 639-1 language code")
        return [code for _, code in items]

    def city(self, name: str, *, created: str | None) -> str:
        value = self.string(name, max_length=MAX_CITY_ID, nonempty=True)
        if not value:
            return ""
        return self.check_city(name, value, created=created) or ""

    def check_city(self, name: str, city: str, *, created: str | None = None) -> str | None:
        status = self.validator.city_status.get(city)
        if status is None:
            self.error(name, f"{show(city)} is not a city in {CITIES} or the database")
            return None
        if created and status == CityStatus.SUSPENDED:
            self.error(
                name, f"the partnership with {show(city)} is suspended; no {created} may be created there"
            )
            return None
        return city


class Validator:
    """Checks files in ``FILES`` order and collects the records of valid lines."""

    def __init__(self, reference: Reference, *, max_errors: int = MAX_ERRORS) -> None:
        self.reference = reference
        self.max_errors = max_errors
        self.issues: list[Issue] = []
        self.truncated = False
        self.dataset = Dataset()
        self.city_status: dict[str, str] = dict(reference.cities)
        self._city_ids: dict[str, int] = {}
        self._company_ids: dict[str, int] = {}
        self._lead_ids: dict[str, int] = {}
        self._mission_ids: dict[str, int] = {}
        # Canonical id strings, shared by every row that refers to them.
        self._companies: dict[str, str] = {}
        self._leads: dict[str, str] = {}
        self._missions: dict[str, str] = {}
        self._handlers: dict[str, Callable[[_Row], None]] = {
            CITIES: self._city,
            COMPANIES: self._company,
            LEADS: self._lead,
            MISSIONS: self._mission,
            PARTICIPANTS: self._participant,
            INTERACTIONS: self._interaction,
        }

    def add(self, issue: Issue) -> None:
        self.issues.append(issue)
        if len(self.issues) >= self.max_errors:
            self.truncated = True
            raise _Stop

    def check_file(
        self, name: str, lines: Iterable[bytes], on_line: Callable[[int], None] | None = None
    ) -> None:
        """Validate one file's lines (in ``FILES`` order); stops quietly once enough errors are collected."""
        self.dataset.present.add(name)
        with suppress(_Stop):
            if name == INTERACTIONS:
                self._interactions(lines, on_line)
            else:
                self._lines(name, lines, self._handlers[name], on_line)

    def result(self) -> Dataset:
        if self.issues:
            raise DatasetInvalid(self.issues, truncated=self.truncated)
        return self.dataset

    def missing_file(self, name: str) -> None:
        with suppress(_Stop):
            self.add(Issue(name, None, None, "required file is missing"))

    def _objects(
        self, name: str, lines: Iterable[bytes], on_line: Callable[[int], None] | None
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        for number, raw in enumerate(lines, 1):
            if on_line is not None:
                on_line(len(raw))
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                # Blank lines carry nothing; tolerating them (a trailing one above all) costs nothing.
                continue
            try:
                obj = _decoder.decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                self.add(Issue(name, number, None, f"invalid JSON: {error}"))
                continue
            if not isinstance(obj, dict):
                self.add(Issue(name, number, None, f"expected a JSON object, got {_json_kind(obj)}"))
                continue
            yield number, obj

    def _lines(
        self,
        name: str,
        lines: Iterable[bytes],
        handler: Callable[[_Row], None],
        on_line: Callable[[int], None] | None,
    ) -> None:
        for number, obj in self._objects(name, lines, on_line):
            handler(_Row(self, name, number, obj))

    def _city(self, row: _Row) -> None:
        city_id = row.identifier("id", self._city_ids, MAX_CITY_ID)
        name = row.string("name", max_length=MAX_CITY_NAME)
        country = row.code("country", ISO_3166_1_ALPHA_2, "an ISO 3166-1 alpha-2 code (like 'FR')")
        languages = row.languages("languages")
        status = row.choice("status", _CITY_STATUSES)
        if city_id:
            # Known even with an invalid status, so references to it don't pile up more errors.
            self.city_status[city_id] = status or CityStatus.ACTIVE.value
        if row.ok:
            self.dataset.cities.append(CityRecord(city_id, name, country, languages, status))

    def _company(self, row: _Row) -> None:
        company_id = row.identifier("id", self._company_ids)
        if company_id:
            # Known even if the line has other errors, so references to it don't pile up more errors.
            self._companies[company_id] = company_id
        name = row.string("name", max_length=MAX_NAME)
        sectors = row.sectors("sectors", minimum=1, maximum=MAX_SECTORS)
        employees = row.integer("employees", minimum=1)
        founded = row.integer("founded", minimum=FOUNDED_RANGE[0], maximum=FOUNDED_RANGE[1])
        experience = row.choice("export_experience", _EXPERIENCE)
        languages = row.languages("languages")
        cities: dict[str, None] = {}
        for label, city in row.strings("target_cities"):
            if row.check_city(label, city) is not None:
                cities.setdefault(city)
        description = row.string("description")
        registered_at = row.time("registered_at")
        if row.ok:
            self.dataset.companies.append(
                CompanyRecord(
                    company_id,
                    name,
                    sectors,
                    employees,
                    founded,
                    experience,
                    languages,
                    list(cities),
                    description,
                    registered_at,
                )
            )

    def _lead(self, row: _Row) -> None:
        lead_id = row.identifier("id", self._lead_ids)
        if lead_id:
            self._leads[lead_id] = lead_id
        title = row.string("title", max_length=MAX_TITLE)
        kind = row.choice("kind", _LEAD_KINDS)
        organization = row.string("organization", max_length=MAX_NAME)
        # A lead already stored is updated, not created: its city may have been suspended since.
        existing = bool(lead_id) and lead_id in self.reference.leads
        city = row.city("city", created=None if existing else "leads")
        sectors = row.sectors("sectors", minimum=1, maximum=MAX_SECTORS)
        description = row.string("description")
        languages = row.languages("languages")
        budget = row.optional_integer("budget_eur", minimum=0, maximum=INT64_MAX)
        published_at = row.time("published_at")
        deadline = row.date("deadline", nullable=True)
        if row.ok:
            self.dataset.leads.append(
                LeadRecord(
                    lead_id,
                    title,
                    kind,
                    organization,
                    city,
                    sectors,
                    description,
                    languages,
                    budget,
                    published_at,
                    deadline,
                )
            )

    def _mission(self, row: _Row) -> None:
        mission_id = row.identifier("id", self._mission_ids)
        if mission_id:
            self._missions[mission_id] = mission_id
        title = row.string("title", max_length=MAX_TITLE)
        existing = bool(mission_id) and mission_id in self.reference.missions
        city = row.city("city", created=None if existing else "missions")
        # The evaluation protocol speaks of missions "whose sectors are given": absent or empty is allowed.
        sectors = row.sectors("sectors", minimum=0, maximum=MAX_MISSION_SECTORS, nullable=True)
        starts_on = row.date("starts_on")
        ends_on = row.date("ends_on")
        if starts_on is not None and ends_on is not None and ends_on < starts_on:
            row.error("ends_on", f"{ends_on.isoformat()} is before starts_on {starts_on.isoformat()}")
        capacity = row.integer("capacity", minimum=1)
        announced_at = row.time("announced_at")
        if row.ok and starts_on is not None and ends_on is not None:
            self.dataset.missions.append(
                MissionRecord(mission_id, title, city, sectors, starts_on, ends_on, capacity, announced_at)
            )

    def _reference(
        self, row: _Row, name: str, canonical: dict[str, str], stored: Container[str], what: str, file: str
    ) -> str:
        value = row.string(name, max_length=MAX_ID, nonempty=True)
        if not value:
            return ""
        found = canonical.get(value)
        if found is not None:
            return found
        if value in stored:
            canonical[value] = value
            return value
        row.error(name, f"{show(value)} is not a {what} in {file} or the database")
        return ""

    def _participant(self, row: _Row) -> None:
        mission = self._reference(
            row, "mission_id", self._missions, self.reference.missions, "mission", MISSIONS
        )
        company = self._reference(
            row, "company_id", self._companies, self.reference.companies, "company", COMPANIES
        )
        status = row.choice("status", _PARTICIPANT_STATUSES)
        at = row.time("at")
        if row.ok:
            self.dataset.participants.append(ParticipantRecord(mission, company, status, at))

    def _interactions(self, lines: Iterable[bytes], on_line: Callable[[int], None] | None) -> None:
        # The hot loop (hundreds of thousands of lines): the common valid case is checked inline,
        # anything unusual goes through the general path for a precise message.
        companies, leads, kinds = self._companies, self._leads, _INTERACTION_KINDS
        append = self.dataset.interactions.append
        fromisoformat = datetime.fromisoformat
        for number, obj in self._objects(INTERACTIONS, lines, on_line):
            company_id, lead_id, kind_name = obj.get("company_id"), obj.get("lead_id"), obj.get("kind")
            company = companies.get(company_id) if type(company_id) is str else None
            lead = leads.get(lead_id) if type(lead_id) is str else None
            kind = kinds.get(kind_name) if type(kind_name) is str else None
            at_text = obj.get("at")
            position = obj.get("position")
            if (
                company is not None
                and lead is not None
                and kind is not None
                and isinstance(at_text, str)
                and (position is None or (type(position) is int and 1 <= position <= INT32_MAX))
            ):
                try:
                    at = fromisoformat(at_text)
                    if at.tzinfo is not None and at.utcoffset() is not None:
                        append((company, lead, kind, at.astimezone(UTC), position))
                        continue
                except (ValueError, OverflowError):
                    pass
            self._interaction(_Row(self, INTERACTIONS, number, obj))

    def _interaction(self, row: _Row) -> None:
        company = self._reference(
            row, "company_id", self._companies, self.reference.companies, "company", COMPANIES
        )
        lead = self._reference(row, "lead_id", self._leads, self.reference.leads, "lead", LEADS)
        kind = row.choice("kind", _INTERACTION_KINDS)
        at = row.time("at")
        position = row.optional_integer("position", minimum=1)
        if row.ok:
            self.dataset.interactions.append((company, lead, kind, at, position))


def validate_directory(
    directory: Path, reference: Reference, *, progress: Progress | None = None, max_errors: int = MAX_ERRORS
) -> Dataset:
    """Validate the whole folder; raises ``DatasetInvalid`` with up to ``max_errors`` issues."""
    validator = Validator(reference, max_errors=max_errors)
    if not directory.is_dir():
        raise DatasetInvalid([Issue(str(directory), None, None, "not a directory")])
    missing = sorted(name for name in REQUIRED_FILES if not (directory / name).is_file())
    if missing:
        for name in missing:
            validator.missing_file(name)
        return validator.result()
    for name in FILES:
        path = directory / name
        if not path.is_file():
            continue
        task: TaskID | None = None
        on_line: Callable[[int], None] | None = None
        if progress is not None:
            task = progress.add_task(f"check {name}", total=path.stat().st_size)
            on_line = _byte_counter(progress, task)
        with path.open("rb") as lines:
            validator.check_file(name, lines, on_line)
        if progress is not None and task is not None:
            progress.update(task, completed=path.stat().st_size)
        if validator.truncated:
            break
    return validator.result()


def _byte_counter(progress: Progress, task: TaskID) -> Callable[[int], None]:
    # Updating rich on every line would cost more than checking the line.
    pending = [0]

    def advance(size: int) -> None:
        pending[0] += size
        if pending[0] >= 1 << 20:
            progress.advance(task, pending[0])
            pending[0] = 0

    return advance
