"""`import_dataset` / `export_dataset` and the CLI commands, on SQLite and PostgreSQL."""

import asyncio
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.cli import cli
from partnermatch.datasets import repository as repo
from partnermatch.datasets.exporter import export_dataset
from partnermatch.datasets.format import (
    CITIES,
    COMPANIES,
    FILES,
    INTERACTIONS,
    LEADS,
    MISSIONS,
    PARTICIPANTS,
    DatasetInvalid,
)
from partnermatch.datasets.importer import import_dataset, validate_dataset
from partnermatch.db import migrate
from partnermatch.models import Company, Interaction, Lead, MissionParticipant
from partnermatch.settings import Settings, get_settings

Data = dict[str, list[dict[str, Any]]]
TABLES = [
    repo.CITIES,
    repo.COMPANIES,
    repo.COMPANY_SECTORS,
    repo.COMPANY_TARGETS,
    repo.LEADS,
    repo.LEAD_SECTORS,
    repo.MISSIONS,
    repo.MISSION_SECTORS,
    repo.PARTICIPANTS,
    repo.INTERACTIONS,
]


def sample() -> Data:
    return {
        CITIES: [
            {"id": "vienna", "name": "Wien", "country": "AT", "languages": ["de"], "status": "active"},
            {"id": "paris", "name": "Paris", "country": "FR", "languages": ["fr"], "status": "active"},
        ],
        COMPANIES: [
            {
                "id": "t-c1",
                "name": "Spreewerk Robotics GmbH",
                "sectors": ["28.99", "62.01"],
                "employees": 42,
                "founded": 2015,
                "export_experience": "some",
                "languages": ["de", "en"],
                "target_cities": ["warsaw", "vienna"],
                "description": "Roboter für die Lebensmittelindustrie.",
                "registered_at": "2025-01-10T09:30:00+01:00",
                "ignored_extra": {"anything": [1, 2]},
            },
            {
                "id": "t-c2",
                "name": "Kiezdaten UG",
                "sectors": ["62"],
                "employees": 3,
                "founded": 2022,
                "export_experience": "none",
                "languages": ["de"],
                "target_cities": [],
                "description": "",
                "registered_at": "2025-02-01T12:00:00Z",
            },
        ],
        LEADS: [
            {
                "id": "t-l1",
                "title": "Distributor for food robotics",
                "kind": "distributor",
                "organization": "Vienna Foods",
                "city": "vienna",
                "sectors": ["46.69", "28.93"],
                "description": "We distribute machinery.",
                "languages": ["de", "en"],
                "budget_eur": None,
                "published_at": "2025-03-01T08:00:00+01:00",
                "deadline": "2025-06-30",
            },
            {
                "id": "t-l2",
                "title": "Hospital software tender",
                "kind": "tender",
                "organization": "Hôpital Nord",
                "city": "paris",
                "sectors": ["86.10", "62.01"],
                "description": "Appel d'offres.",
                "languages": ["fr"],
                "budget_eur": 250000,
                "published_at": "2025-03-05T10:00:00+01:00",
                "deadline": None,
            },
        ],
        INTERACTIONS: [
            {
                "company_id": "t-c1",
                "lead_id": "t-l1",
                "kind": "impression",
                "at": "2025-03-02T09:00:00+01:00",
                "position": 1,
            },
            {
                "company_id": "t-c1",
                "lead_id": "t-l1",
                "kind": "view",
                "at": "2025-03-02T09:01:00+01:00",
                "position": 1,
            },
            {
                "company_id": "t-c1",
                "lead_id": "t-l1",
                "kind": "interested",
                "at": "2025-03-02T09:05:00+01:00",
                "position": None,
            },
            {
                "company_id": "t-c2",
                "lead_id": "t-l2",
                "kind": "impression",
                "at": "2025-03-06T10:00:00+01:00",
                "position": 3,
            },
            # The same event again, written with another offset: one fact, stored once.
            {
                "company_id": "t-c2",
                "lead_id": "t-l2",
                "kind": "impression",
                "at": "2025-03-06T09:00:00Z",
                "position": 3,
            },
        ],
        MISSIONS: [
            {
                "id": "t-m1",
                "title": "Food tech delegation to Vienna",
                "city": "vienna",
                "sectors": ["28.93", "10"],
                "starts_on": "2025-05-10",
                "ends_on": "2025-05-12",
                "capacity": 12,
                "announced_at": "2025-02-15T10:00:00+01:00",
            }
        ],
        PARTICIPANTS: [
            {
                "mission_id": "t-m1",
                "company_id": "t-c1",
                "status": "participated",
                "at": "2025-05-10T09:00:00+02:00",
            },
            {
                "mission_id": "t-m1",
                "company_id": "t-c1",
                "status": "applied",
                "at": "2025-03-01T09:00:00+01:00",
            },
            {
                "mission_id": "t-m1",
                "company_id": "t-c2",
                "status": "applied",
                "at": "2025-03-02T09:00:00+01:00",
            },
        ],
    }


def write(directory: Path, data: Data) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, rows in data.items():
        (directory / name).write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return directory


async def counts(session: AsyncSession) -> dict[str, int]:
    return {table.name: await repo.count(session, table) for table in TABLES}


async def snapshot(session: AsyncSession, table: Table) -> dict[Any, Any]:
    rows = await session.execute(select(table.c.id, table.c.updated_at))
    return dict(rows.tuples().all())


async def test_valid_import_writes_every_file(db_session: AsyncSession, tmp_path: Path) -> None:
    before = await counts(db_session)

    report = await import_dataset(db_session, write(tmp_path, sample()))

    after = await counts(db_session)
    assert {name: (f.rows, f.inserted, f.updated, f.unchanged) for name, f in report.files.items()} == {
        CITIES: (2, 1, 0, 1),
        COMPANIES: (2, 2, 0, 0),
        LEADS: (2, 2, 0, 0),
        MISSIONS: (1, 1, 0, 0),
        PARTICIPANTS: (3, 2, 0, 0),
        INTERACTIONS: (5, 4, 0, 1),
    }
    assert after["interactions"] - before["interactions"] == 4
    assert after["company_sectors"] - before["company_sectors"] == 3
    company = await db_session.scalar(select(Company).where(Company.external_id == "t-c1"))
    assert company is not None
    assert company.status == "approved"
    assert company.sectors == ["28.99", "62.01"]
    assert sorted(company.target_cities) == ["vienna", "warsaw"]
    assert company.registered_at == datetime(2025, 1, 10, 8, 30, tzinfo=UTC)
    lead = await db_session.scalar(select(Lead).where(Lead.external_id == "t-l1"))
    assert lead is not None
    assert (lead.source, lead.status, lead.deadline.isoformat() if lead.deadline else None) == (
        "import",
        "open",
        "2025-06-30",
    )
    statuses = await db_session.execute(
        select(MissionParticipant.company_id, MissionParticipant.status).where(
            MissionParticipant.company_id == company.id
        )
    )
    # The latest status wins, whatever the order of the lines.
    assert [status for _, status in statuses] == ["participated"]


async def test_reimport_changes_nothing(db_session: AsyncSession, tmp_path: Path) -> None:
    directory = write(tmp_path, sample())
    await import_dataset(db_session, directory)
    before = await counts(db_session)
    stamps = {
        table.name: await snapshot(db_session, table)
        for table in (repo.COMPANIES, repo.LEADS, repo.MISSIONS, repo.PARTICIPANTS)
    }

    report = await import_dataset(db_session, directory)

    assert await counts(db_session) == before
    assert all(f.inserted == 0 and f.updated == 0 and f.unchanged > 0 for f in report.files.values()), report
    for table in (repo.COMPANIES, repo.LEADS, repo.MISSIONS, repo.PARTICIPANTS):
        assert await snapshot(db_session, table) == stamps[table.name]


async def test_changed_rows_are_updated_in_place(db_session: AsyncSession, tmp_path: Path) -> None:
    data = sample()
    await import_dataset(db_session, write(tmp_path / "v1", data))
    before = await counts(db_session)
    stamps = await snapshot(db_session, repo.COMPANIES)
    changed = copy.deepcopy(data)
    changed[COMPANIES][0].update(
        name="Spreewerk Robotics AG", sectors=["62.01", "28.99"], target_cities=["paris"]
    )
    changed[LEADS][1]["deadline"] = "2025-09-30"
    changed[PARTICIPANTS].append(
        {"mission_id": "t-m1", "company_id": "t-c2", "status": "invited", "at": "2025-04-01T09:00:00+02:00"}
    )

    report = await import_dataset(db_session, write(tmp_path / "v2", changed))

    assert (report[COMPANIES].updated, report[COMPANIES].unchanged) == (1, 1)
    assert (report[LEADS].updated, report[LEADS].unchanged) == (1, 1)
    assert (report[PARTICIPANTS].updated, report[PARTICIPANTS].unchanged) == (1, 1)
    after = await counts(db_session)
    assert after["companies"] == before["companies"]
    assert after["company_target_cities"] == before["company_target_cities"] - 1
    company = await db_session.scalar(select(Company).where(Company.external_id == "t-c1"))
    assert company is not None
    await db_session.refresh(company)
    assert (company.name, company.sectors, company.target_cities) == (
        "Spreewerk Robotics AG",
        ["62.01", "28.99"],
        ["paris"],
    )
    new_stamps = await snapshot(db_session, repo.COMPANIES)
    assert new_stamps[company.id] > stamps[company.id]
    assert {k: v for k, v in new_stamps.items() if k != company.id} == {
        k: v for k, v in stamps.items() if k != company.id
    }


def _set(file: str, index: int, **fields: Any) -> Any:
    def change(data: Data) -> None:
        data[file][index].update(fields)

    return change


def _drop(file: str, index: int, name: str) -> Any:
    def change(data: Data) -> None:
        del data[file][index][name]

    return change


def _append(file: str, row: Any) -> Any:
    def change(data: Data) -> None:
        data[file].append(row)

    return change


CASES = {
    "unknown NACE code": (
        _set(LEADS, 0, sectors=["46.69", "99.99"]),
        "leads.jsonl:1: sectors[1]: '99.99' is not a NACE Rev. 2 code",
    ),
    "NACE section letter": (
        _set(COMPANIES, 1, sectors=["J"]),
        "companies.jsonl:2: sectors[0]: 'J' is a NACE section; use a division, group or class code",
    ),
    "too many sectors": (
        _set(COMPANIES, 0, sectors=["62", "28", "10", "46", "86", "72"]),
        "companies.jsonl:1: sectors: expected 1 to 5 codes, got 6",
    ),
    "bool is not an int": (
        _set(COMPANIES, 0, employees=True),
        "companies.jsonl:1: employees: expected an integer, got a boolean true",
    ),
    "employees below 1": (
        _set(COMPANIES, 1, employees=0),
        "companies.jsonl:2: employees: must be at least 1, got 0",
    ),
    "missing required field": (_drop(LEADS, 1, "title"), "leads.jsonl:2: title: required field is missing"),
    "unknown enum value": (
        _set(LEADS, 0, kind="partner"),
        "leads.jsonl:1: kind: 'partner' is not one of buyer, distributor, investor, research_partner, tender, joint_venture",
    ),
    "language code": (
        _set(COMPANIES, 0, languages=["de", "german"]),
        "companies.jsonl:1: languages[1]: 'german' is not an ISO 639-1 language code",
    ),
    "country code": (
        _set(CITIES, 0, country="AUT"),
        "cities.jsonl:1: country: 'AUT' is not an ISO 3166-1 alpha-2 code (like 'FR')",
    ),
    "naive time": (
        _set(COMPANIES, 1, registered_at="2025-02-01T12:00:00"),
        "companies.jsonl:2: registered_at: '2025-02-01T12:00:00' has no UTC offset (write e.g. 2025-02-01T09:30:00+01:00)",
    ),
    "naive interaction time": (
        _set(INTERACTIONS, 2, at="2025-03-02 09:05"),
        "interactions.jsonl:3: at: '2025-03-02 09:05' has no UTC offset (write e.g. 2025-03-02T09:30:00+01:00)",
    ),
    "bad date": (
        _set(LEADS, 0, deadline="30.06.2025"),
        "leads.jsonl:1: deadline: '30.06.2025' is not an ISO 8601 date (YYYY-MM-DD)",
    ),
    "duplicate id": (
        lambda data: data[LEADS].append(dict(data[LEADS][0])),
        "leads.jsonl:3: id: 't-l1' is a duplicate of line 1",
    ),
    "unknown company": (
        _set(INTERACTIONS, 0, company_id="t-nope"),
        "interactions.jsonl:1: company_id: 't-nope' is not a company in companies.jsonl or the database",
    ),
    "unknown city": (
        _set(LEADS, 1, city="atlantis"),
        "leads.jsonl:2: city: 'atlantis' is not a city in cities.jsonl or the database",
    ),
    "suspended city": (
        _set(LEADS, 1, city="moscow"),
        "leads.jsonl:2: city: the partnership with 'moscow' is suspended; no leads may be created there",
    ),
    "city suspended by the file": (
        _set(CITIES, 1, status="suspended"),
        "leads.jsonl:2: city: the partnership with 'paris' is suspended; no leads may be created there",
    ),
    "capacity below 1": (
        _set(MISSIONS, 0, capacity=0),
        "missions.jsonl:1: capacity: must be at least 1, got 0",
    ),
    "ends before it starts": (
        _set(MISSIONS, 0, ends_on="2025-05-01"),
        "missions.jsonl:1: ends_on: 2025-05-01 is before starts_on 2025-05-10",
    ),
    "position 0": (
        _set(INTERACTIONS, 0, position=0),
        "interactions.jsonl:1: position: must be at least 1, got 0",
    ),
    "position as string": (
        _set(INTERACTIONS, 1, position="1"),
        "interactions.jsonl:2: position: expected an integer, got a string '1'",
    ),
    "unknown mission": (
        _set(PARTICIPANTS, 2, mission_id="t-m9"),
        "mission_participants.jsonl:3: mission_id: 't-m9' is not a mission in missions.jsonl or the database",
    ),
    "not an object": (_append(LEADS, [1, 2]), "leads.jsonl:3: expected a JSON object, got an array"),
}


@pytest.mark.parametrize(("change", "expected"), CASES.values(), ids=CASES.keys())
async def test_each_error_is_reported_and_nothing_written(
    db_session: AsyncSession, tmp_path: Path, change: Any, expected: str
) -> None:
    data = sample()
    change(data)
    before = await counts(db_session)

    with pytest.raises(DatasetInvalid) as raised:
        await import_dataset(db_session, write(tmp_path, data))

    assert raised.value.errors == [expected]
    assert raised.value.status_code == 422
    assert await counts(db_session) == before


async def test_invalid_json_and_missing_files(db_session: AsyncSession, tmp_path: Path) -> None:
    directory = write(tmp_path / "a", sample())
    with (directory / LEADS).open("a") as file:
        file.write('{"id": "t-l3", \n\n')
    with pytest.raises(DatasetInvalid) as raised:
        await import_dataset(db_session, directory)
    assert len(raised.value.errors) == 1
    assert raised.value.errors[0].startswith("leads.jsonl:3: invalid JSON: ")

    data = sample()
    del data[COMPANIES], data[INTERACTIONS]
    with pytest.raises(DatasetInvalid) as raised:
        await import_dataset(db_session, write(tmp_path / "b", data))
    assert raised.value.errors == [
        "companies.jsonl: required file is missing",
        "interactions.jsonl: required file is missing",
    ]


async def test_errors_stop_after_twenty(db_session: AsyncSession, tmp_path: Path) -> None:
    data = sample()
    good = data[INTERACTIONS][0]
    data[INTERACTIONS] = [{**good, "kind": "clicked"} for _ in range(50)]
    with pytest.raises(DatasetInvalid) as raised:
        await import_dataset(db_session, write(tmp_path, data))
    assert len(raised.value.errors) == 20
    assert raised.value.truncated
    assert raised.value.errors[-1].startswith("interactions.jsonl:20: kind: ")


async def test_references_into_the_database(db_session: AsyncSession, tmp_path: Path) -> None:
    await import_dataset(db_session, write(tmp_path / "base", sample()))
    later: Data = {
        COMPANIES: [],
        LEADS: [],
        INTERACTIONS: [
            {"company_id": "t-c2", "lead_id": "t-l1", "kind": "view", "at": "2025-04-01T10:00:00+02:00"},
        ],
        PARTICIPANTS: [
            {
                "mission_id": "t-m1",
                "company_id": "t-c2",
                "status": "declined",
                "at": "2025-04-02T10:00:00+02:00",
            },
        ],
    }
    before = await counts(db_session)

    report = await import_dataset(db_session, write(tmp_path / "later", later))

    assert (report[INTERACTIONS].inserted, report[PARTICIPANTS].updated) == (1, 1)
    after = await counts(db_session)
    assert after["interactions"] == before["interactions"] + 1
    assert after["companies"] == before["companies"]


async def test_validate_only_writes_nothing(db_session: AsyncSession, tmp_path: Path) -> None:
    before = await counts(db_session)
    dataset = await validate_dataset(db_session, write(tmp_path, sample()))
    assert (len(dataset.companies), len(dataset.interactions)) == (2, 5)
    assert await counts(db_session) == before


async def test_failure_while_writing_rolls_back(
    db_session: AsyncSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await counts(db_session)

    async def broken(*_: Any, **__: Any) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(repo, "insert_interactions", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        await import_dataset(db_session, write(tmp_path, sample()))

    # Companies, leads and missions were written before the failure; the savepoint took them back.
    assert await counts(db_session) == before


def _normalise(data: Data) -> dict[str, list[str]]:
    def row(record: dict[str, Any]) -> str:
        clean = {k: v for k, v in record.items() if k != "ignored_extra"}
        for key, value in clean.items():
            if isinstance(value, str) and "T" in value and value[:4].isdigit() and len(value) > 10:
                clean[key] = datetime.fromisoformat(value).astimezone(UTC).isoformat()
        if "target_cities" in clean:
            clean["target_cities"] = sorted(clean["target_cities"])
        if "lead_id" in clean:
            clean.setdefault("position", None)
        return json.dumps(clean, sort_keys=True)

    return {name: sorted({row(r) for r in rows}) for name, rows in data.items()}


def _read(directory: Path) -> Data:
    return {
        name: [json.loads(line) for line in (directory / name).read_text().splitlines()] for name in FILES
    }


async def test_round_trip_through_export(db_session: AsyncSession, tmp_path: Path) -> None:
    data = sample()
    await import_dataset(db_session, write(tmp_path / "in", data))

    exported = await export_dataset(db_session, tmp_path / "out")

    files = _read(tmp_path / "out")
    assert exported == {name: len(rows) for name, rows in files.items()}
    ours = {
        name: [r for r in rows if str(r.get("id", r.get("company_id", ""))).startswith("t-")]
        for name, rows in files.items()
    }
    expected = copy.deepcopy(data)
    # One participation per (mission, company): the latest line's.
    expected[PARTICIPANTS] = [expected[PARTICIPANTS][0], expected[PARTICIPANTS][2]]
    expected[CITIES] = [c for c in files[CITIES] if c["id"] in {"vienna", "paris"}]
    ours[CITIES] = expected[CITIES]
    assert _normalise(ours) == _normalise(expected)
    assert all(r["registered_at"].endswith("+00:00") for r in files[COMPANIES])

    # The export re-imports into an emptied database with the same counts.
    before = await counts(db_session)
    for table in reversed(TABLES[1:]):
        await db_session.execute(delete(table))
    report = await import_dataset(db_session, tmp_path / "out")
    assert await counts(db_session) == before
    assert report[INTERACTIONS].inserted == before["interactions"]

    # And into the database it came from, as a no-op.
    again = await import_dataset(db_session, tmp_path / "out")
    assert all(f.inserted == 0 and f.updated == 0 for f in again.files.values())


def test_cli_import_and_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    asyncio.run(migrate(Settings(database_url=url, var_dir=tmp_path)))
    monkeypatch.setenv("PARTNERMATCH_DATABASE_URL", url)
    monkeypatch.setenv("PARTNERMATCH_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        directory = write(tmp_path / "in", sample())
        first = runner.invoke(cli, ["import", str(directory)])
        assert first.exit_code == 0, first.output
        assert "interactions.jsonl" in first.stdout

        bad = sample()
        bad[LEADS][0]["sectors"] = ["46.69", "99.99"]
        failed = runner.invoke(cli, ["import", str(write(tmp_path / "bad", bad))])
        assert failed.exit_code == 1
        assert "leads.jsonl:1: sectors[1]: '99.99' is not a NACE Rev. 2 code\n" in failed.stderr
        assert "nothing was imported" in failed.stderr

        exported = runner.invoke(cli, ["export", str(tmp_path / "out")])
        assert exported.exit_code == 0, exported.output
        assert len((tmp_path / "out" / INTERACTIONS).read_text().splitlines()) == 4
    finally:
        get_settings.cache_clear()


def test_cli_refuses_an_unmigrated_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARTNERMATCH_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["import", str(write(tmp_path / "in", sample()))])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "partnermatch db upgrade" in result.stderr


async def test_sqlite_encoding_matches_sqlalchemy(db_session: AsyncSession) -> None:
    # The SQLite bulk path encodes times itself; it must match what the ORM stores, or the
    # uniqueness of (company, lead, kind, at) would not hold across both.
    dialect = db_session.get_bind().dialect
    if dialect.name != "sqlite":
        pytest.skip("SQLite only")
    column = Interaction.__table__.c.at
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    moment = datetime.fromisoformat("2025-03-02T09:05:00.5+01:00").astimezone(UTC)
    wrapped = column.type.process_bind_param(moment, dialect)
    assert process is not None
    assert repo.sqlite_time(moment) == process(wrapped)


async def test_generated_dataset_imports(db_session: AsyncSession, tmp_path: Path) -> None:
    from partnermatch.synthetic.generator import GeneratorConfig, generate

    written = await asyncio.to_thread(generate, tmp_path, GeneratorConfig(companies=60, leads=30, seed=5))

    report = await import_dataset(db_session, tmp_path)

    assert {name: f.rows for name, f in report.files.items()} == written
    assert report[COMPANIES].inserted == written[COMPANIES]
    again = await import_dataset(db_session, tmp_path)
    assert all(f.inserted == 0 and f.updated == 0 for f in again.files.values())


async def test_rows_without_external_id_round_trip_by_uuid(db_session: AsyncSession, tmp_path: Path) -> None:
    from partnermatch.models import CompanySector

    company = Company(
        name="Registered via the API GmbH",
        status="pending",
        employees=5,
        founded=2020,
        export_experience="none",
        languages=["de"],
        description="",
        registered_at=datetime(2025, 1, 2, tzinfo=UTC),
    )
    company.sector_links = [CompanySector(position=0, code="62.01")]
    db_session.add(company)
    await db_session.flush()
    await import_dataset(db_session, write(tmp_path / "in", sample()))

    await export_dataset(db_session, tmp_path / "out")

    exported = [r for r in _read(tmp_path / "out")[COMPANIES] if r["id"] == str(company.id)]
    assert [r["name"] for r in exported] == ["Registered via the API GmbH"]
    before = await counts(db_session)
    report = await import_dataset(db_session, tmp_path / "out")
    assert report[COMPANIES].inserted == 0
    assert report[COMPANIES].updated == 0
    assert await counts(db_session) == before
    await db_session.refresh(company)
    # The import does not override moderation: the company stays pending, without an external id.
    assert (company.status, company.external_id) == ("pending", None)
