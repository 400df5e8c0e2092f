"""Every query of the dataset import and export: Core statements in bulk, never one ORM object per row."""

from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast
from uuid import UUID

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from partnermatch.cities.models import City
from partnermatch.companies.models import Company, CompanySector, CompanyTargetCity
from partnermatch.interactions.models import Interaction
from partnermatch.leads.models import Lead, LeadSector
from partnermatch.missions.models import Mission, MissionParticipant, MissionSector
from partnermatch.sectors.models import Sector

T = TypeVar("T")
# Rows per executemany call: large enough to amortise round trips, small enough to keep memory flat.
CHUNK = 5000
# Ids per IN (...) list: well under SQLite's and asyncpg's parameter limits.
IN_CHUNK = 500
# Negative: KiB, as PRAGMA cache_size takes it.
SQLITE_CACHE_KIB = -128 * 1024

InteractionRow = tuple[UUID, UUID, str, datetime, int | None]


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


CITIES = _table(City)
COMPANIES = _table(Company)
COMPANY_SECTORS = _table(CompanySector)
COMPANY_TARGETS = _table(CompanyTargetCity)
LEADS = _table(Lead)
LEAD_SECTORS = _table(LeadSector)
MISSIONS = _table(Mission)
MISSION_SECTORS = _table(MissionSector)
PARTICIPANTS = _table(MissionParticipant)
INTERACTIONS = _table(Interaction)


@dataclass(frozen=True)
class Entity:
    """A table with an external id, the columns a dataset owns, and its ordered sector list."""

    table: Table
    columns: tuple[str, ...]
    sectors: Table
    owner: str
    targets: Table | None = None


COMPANY = Entity(
    COMPANIES,
    ("name", "employees", "founded", "export_experience", "languages", "description", "registered_at"),
    COMPANY_SECTORS,
    "company_id",
    COMPANY_TARGETS,
)
LEAD = Entity(
    LEADS,
    (
        "title",
        "kind",
        "organization",
        "city_id",
        "description",
        "languages",
        "budget_eur",
        "published_at",
        "deadline",
    ),
    LEAD_SECTORS,
    "lead_id",
)
MISSION = Entity(
    MISSIONS,
    ("title", "city_id", "starts_on", "ends_on", "capacity", "announced_at"),
    MISSION_SECTORS,
    "mission_id",
)


@dataclass
class Stored:
    values: dict[str, Any]
    sectors: list[str] = field(default_factory=list)
    targets: set[str] = field(default_factory=set)


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def sector_codes(session: AsyncSession) -> set[str]:
    # Sections (single letters) classify but are not codes a company or lead may carry.
    rows = await session.scalars(select(Sector.code).where(Sector.level != "section"))
    return set(rows)


async def cities(session: AsyncSession) -> dict[str, dict[str, Any]]:
    rows = await session.execute(
        select(CITIES.c.id, CITIES.c.name, CITIES.c.country, CITIES.c.languages, CITIES.c.status)
    )
    return {row.id: dict(row._mapping) for row in rows}


async def keys(session: AsyncSession, table: Table) -> dict[str, UUID]:
    """Dataset id -> row id; a row without an external id is known by its UUID, as the export writes it."""
    rows = await session.execute(select(table.c.id, table.c.external_id))
    return {external if external is not None else str(row_id): row_id for row_id, external in rows}


async def stored(session: AsyncSession, entity: Entity, ids: Sequence[UUID]) -> dict[UUID, Stored]:
    table, owner = entity.table, entity.owner
    found: dict[UUID, Stored] = {}
    for chunk in chunks(ids, IN_CHUNK):
        rows = await session.execute(
            select(table.c.id, *(table.c[name] for name in entity.columns)).where(table.c.id.in_(chunk))
        )
        for row in rows:
            values = dict(row._mapping)
            found[values.pop("id")] = Stored(values)
        sector_rows = await session.execute(
            select(entity.sectors.c[owner], entity.sectors.c.code)
            .where(entity.sectors.c[owner].in_(chunk))
            .order_by(entity.sectors.c[owner], entity.sectors.c.position)
        )
        for row_id, code in sector_rows:
            found[row_id].sectors.append(code)
        if entity.targets is not None:
            target_rows = await session.execute(
                select(entity.targets.c[owner], entity.targets.c.city_id).where(
                    entity.targets.c[owner].in_(chunk)
                )
            )
            for row_id, city_id in target_rows:
                found[row_id].targets.add(city_id)
    return found


async def insert_rows(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    on_progress: Callable[[int], None] | None = None,
) -> None:
    for chunk in chunks(rows, CHUNK):
        await session.execute(insert(table), list(chunk))
        if on_progress is not None:
            on_progress(len(chunk))


async def update_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Rows carry their primary key as ``_id`` and the changed columns; grouped so each executemany is uniform."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    for columns, group in groups.items():
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({name: bindparam(name) for name in columns if name != "_id"})
        )
        for chunk in chunks(group, CHUNK):
            await session.execute(statement, list(chunk))


async def delete_children(session: AsyncSession, table: Table, owner: str, ids: Sequence[UUID]) -> None:
    for chunk in chunks(ids, IN_CHUNK):
        await session.execute(delete(table).where(table.c[owner].in_(chunk)))


async def participants(
    session: AsyncSession, mission_ids: Sequence[UUID]
) -> dict[tuple[UUID, UUID], tuple[UUID, str, datetime]]:
    """(mission, company) -> (row id, status, status_at) for the given missions."""
    found: dict[tuple[UUID, UUID], tuple[UUID, str, datetime]] = {}
    table = PARTICIPANTS
    for chunk in chunks(mission_ids, IN_CHUNK):
        rows = await session.execute(
            select(
                table.c.mission_id, table.c.company_id, table.c.id, table.c.status, table.c.status_at
            ).where(table.c.mission_id.in_(chunk))
        )
        for mission_id, company_id, row_id, status, status_at in rows:
            found[mission_id, company_id] = (row_id, status, status_at)
    return found


async def insert_interactions(
    session: AsyncSession, rows: Iterable[InteractionRow], on_progress: Callable[[int], None] | None = None
) -> int:
    """Insert events, skipping those already stored (same company, lead, kind and time); returns the count added."""
    if session.get_bind().dialect.name == "postgresql":
        return await _copy_interactions(session, rows, on_progress)
    return await _sqlite_interactions(session, rows, on_progress)


def sqlite_time(value: datetime) -> str:
    """A UTC datetime as SQLAlchemy's SQLite DATETIME stores it (test_sqlite_encoding_matches_sqlalchemy)."""
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


_SQLITE_INSERT = (
    "INSERT INTO interactions (company_id, lead_id, kind, at, position) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (company_id, lead_id, kind, at) DO NOTHING"
)


async def _sqlite_interactions(
    session: AsyncSession, rows: Iterable[InteractionRow], on_progress: Callable[[int], None] | None
) -> int:
    # SQLAlchemy's per-value type processing (GUID, DateTimeUTC) would cost more than SQLite's own work
    # for half a million rows; the values are encoded here once, as those types would encode them.
    connection = await session.connection()
    # SQLite's default page cache (2 MB) is far smaller than the indexes being filled; random index
    # inserts would then re-read pages all the time.
    previous = (await connection.exec_driver_sql("PRAGMA cache_size")).scalar_one()
    await connection.exec_driver_sql(f"PRAGMA cache_size = {SQLITE_CACHE_KIB}")
    try:
        return await _sqlite_insert(connection, rows, on_progress)
    finally:
        await connection.exec_driver_sql(f"PRAGMA cache_size = {int(previous)}")


async def _sqlite_insert(
    connection: AsyncConnection, rows: Iterable[InteractionRow], on_progress: Callable[[int], None] | None
) -> int:
    added = 0
    batch: list[tuple[bytes, bytes, str, str, int | None]] = []
    for company_id, lead_id, kind, at, position in rows:
        batch.append((company_id.bytes, lead_id.bytes, kind, sqlite_time(at), position))
        if len(batch) == CHUNK:
            added += (await connection.exec_driver_sql(_SQLITE_INSERT, batch)).rowcount
            if on_progress is not None:
                on_progress(len(batch))
            batch = []
    if batch:
        added += (await connection.exec_driver_sql(_SQLITE_INSERT, batch)).rowcount
        if on_progress is not None:
            on_progress(len(batch))
    return added


_COPY_TABLE = "partnermatch_import_interactions"


async def _copy_interactions(
    session: AsyncSession, rows: Iterable[InteractionRow], on_progress: Callable[[int], None] | None
) -> int:
    # COPY is several times faster than any INSERT; it cannot skip conflicts, so it fills a temporary
    # table that one INSERT ... SELECT ... ON CONFLICT DO NOTHING then moves over.
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.execute(
        f"CREATE TEMPORARY TABLE {_COPY_TABLE} "
        "(company_id uuid, lead_id uuid, kind varchar(16), at timestamptz, position integer)"
    )
    batch: list[InteractionRow] = []
    columns = ["company_id", "lead_id", "kind", "at", "position"]
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK * 4:
            await driver.copy_records_to_table(_COPY_TABLE, records=batch, columns=columns)
            if on_progress is not None:
                on_progress(len(batch))
            batch = []
    if batch:
        await driver.copy_records_to_table(_COPY_TABLE, records=batch, columns=columns)
        if on_progress is not None:
            on_progress(len(batch))
    status: str = await driver.execute(
        "INSERT INTO interactions (company_id, lead_id, kind, at, position) "
        f"SELECT company_id, lead_id, kind, at, position FROM {_COPY_TABLE} "
        "ON CONFLICT (company_id, lead_id, kind, at) DO NOTHING"
    )
    await driver.execute(f"DROP TABLE {_COPY_TABLE}")
    return int(status.rsplit(" ", 1)[-1])


async def count(session: AsyncSession, table: Table) -> int:
    return int(await session.scalar(select(func.count()).select_from(table)) or 0)


# Export


async def export_cities(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(CITIES.c.id, CITIES.c.name, CITIES.c.country, CITIES.c.languages, CITIES.c.status).order_by(
            CITIES.c.id
        )
    )
    return [dict(row._mapping) for row in rows]


async def export_names(session: AsyncSession, table: Table) -> dict[UUID, str]:
    return {row_id: name for name, row_id in (await keys(session, table)).items()}


async def entity_batches(
    session: AsyncSession, entity: Entity, batch: int = 2000
) -> AsyncIterator[list[tuple[UUID, Stored]]]:
    """All rows of an entity in id order, a batch at a time (keyset pagination, so memory stays flat)."""
    table = entity.table
    last: UUID | None = None
    while True:
        statement = select(table.c.id).order_by(table.c.id).limit(batch)
        if last is not None:
            statement = statement.where(table.c.id > last)
        ids = list(await session.scalars(statement))
        if not ids:
            return
        found = await stored(session, entity, ids)
        yield [(row_id, found[row_id]) for row_id in ids]
        last = ids[-1]


async def stream_participants(session: AsyncSession) -> AsyncIterator[Sequence[Any]]:
    table = PARTICIPANTS
    result = await session.stream(
        select(table.c.mission_id, table.c.company_id, table.c.status, table.c.status_at)
        .order_by(table.c.status_at, table.c.id)
        .execution_options(yield_per=CHUNK)
    )
    async for partition in result.partitions():
        yield partition


async def stream_interactions(session: AsyncSession) -> AsyncIterator[Sequence[Any]]:
    table = INTERACTIONS
    result = await session.stream(
        select(table.c.company_id, table.c.lead_id, table.c.kind, table.c.at, table.c.position)
        .order_by(table.c.at, table.c.id)
        .execution_options(yield_per=CHUNK)
    )
    async for partition in result.partitions():
        yield partition
