"""Loading a dataset folder: everything is validated first, then written in one transaction.

Dataset ids are external ids, kept in ``external_id`` beside the database's own UUIDs,
so importing the same folder again changes nothing and a changed row is updated in place.
"""

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from rich.progress import Progress
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from partnermatch.datasets import repository as repo
from partnermatch.datasets.format import (
    CITIES,
    COMPANIES,
    FILES,
    INTERACTIONS,
    LEADS,
    MAX_ERRORS,
    MISSIONS,
    PARTICIPANTS,
    CompanyRecord,
    Dataset,
    LeadRecord,
    MissionRecord,
    ParticipantRecord,
    Reference,
    validate_directory,
)
from partnermatch.db import refresh_statistics
from partnermatch.enums import CompanyStatus, LeadSource, LeadStatus, MissionStatus

R = TypeVar("R", CompanyRecord, LeadRecord, MissionRecord)


@dataclass
class FileReport:
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class ImportReport:
    """Per file; for mission_participants the counts are of (mission, company) pairs, not lines."""

    files: dict[str, FileReport] = field(default_factory=dict)

    def __getitem__(self, name: str) -> FileReport:
        return self.files[name]


@dataclass
class _Keys:
    companies: dict[str, UUID]
    leads: dict[str, UUID]
    missions: dict[str, UUID]


class _Ticker:
    def __init__(self, progress: Progress | None, name: str, total: int) -> None:
        self.progress = progress
        self.total = total
        self.task = progress.add_task(f"write {name}", total=total) if progress is not None else None

    def __call__(self, count: int) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task, count)

    def done(self) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=self.total)


async def validate_dataset(
    session: AsyncSession, directory: Path, progress: Progress | None = None, *, max_errors: int = MAX_ERRORS
) -> Dataset:
    """Only the checks of ``import_dataset`` (raising ``DatasetInvalid``): for a pre-flight of an upload."""
    reference, _ = await _reference(session)
    return await asyncio.to_thread(
        validate_directory, directory, reference, progress=progress, max_errors=max_errors
    )


async def _reference(session: AsyncSession) -> tuple[Reference, _Keys]:
    keys = _Keys(
        companies=await repo.keys(session, repo.COMPANIES),
        leads=await repo.keys(session, repo.LEADS),
        missions=await repo.keys(session, repo.MISSIONS),
    )
    cities = await repo.cities(session)
    reference = Reference(
        sectors=frozenset(await repo.sector_codes(session)),
        cities={city_id: city["status"] for city_id, city in cities.items()},
        companies=keys.companies,
        leads=keys.leads,
        missions=keys.missions,
    )
    return reference, keys


async def import_dataset(
    session: AsyncSession, directory: Path, progress: Progress | None = None, *, max_errors: int = MAX_ERRORS
) -> ImportReport:
    """Validate the folder completely (raising ``DatasetInvalid`` before any write), then write it.

    The writes run in a savepoint: a failure half-way leaves the caller's transaction as it was.
    The caller commits.
    """
    reference, keys = await _reference(session)
    # Checking half a million lines takes seconds of CPU; off the event loop, a server stays responsive.
    dataset = await asyncio.to_thread(
        validate_directory, directory, reference, progress=progress, max_errors=max_errors
    )
    async with session.begin_nested():
        report = await _write(session, dataset, keys, progress)
    await refresh_statistics(session)
    return report


async def _write(
    session: AsyncSession, dataset: Dataset, keys: _Keys, progress: Progress | None
) -> ImportReport:
    now = datetime.now(UTC)
    report = ImportReport({name: FileReport() for name in FILES if name in dataset.present})
    if CITIES in dataset.present:
        await _write_cities(session, dataset, report[CITIES], progress)
    await _write_entities(
        session,
        repo.COMPANY,
        dataset.companies,
        keys.companies,
        lambda c: {
            "name": c.name,
            "employees": c.employees,
            "founded": c.founded,
            "export_experience": c.export_experience,
            "languages": c.languages,
            "description": c.description,
            "registered_at": c.registered_at,
        },
        {
            "status": CompanyStatus.APPROVED.value,
            "status_reason": None,
            "contact_email": None,
            "website": None,
        },
        now,
        report[COMPANIES],
        _Ticker(progress, COMPANIES, len(dataset.companies)),
    )
    await _write_entities(
        session,
        repo.LEAD,
        dataset.leads,
        keys.leads,
        lambda lead: {
            "title": lead.title,
            "kind": lead.kind,
            "organization": lead.organization,
            "city_id": lead.city,
            "description": lead.description,
            "languages": lead.languages,
            "budget_eur": lead.budget_eur,
            "published_at": lead.published_at,
            "deadline": lead.deadline,
        },
        # Expiry is the deadline's business (read at query time), so an imported lead starts open.
        {"status": LeadStatus.OPEN.value, "source": LeadSource.IMPORT.value},
        now,
        report[LEADS],
        _Ticker(progress, LEADS, len(dataset.leads)),
    )
    if MISSIONS in dataset.present:
        await _write_entities(
            session,
            repo.MISSION,
            dataset.missions,
            keys.missions,
            lambda m: {
                "title": m.title,
                "city_id": m.city,
                "starts_on": m.starts_on,
                "ends_on": m.ends_on,
                "capacity": m.capacity,
                "announced_at": m.announced_at,
            },
            {"status": MissionStatus.PLANNED.value, "description": ""},
            now,
            report[MISSIONS],
            _Ticker(progress, MISSIONS, len(dataset.missions)),
        )
    if PARTICIPANTS in dataset.present:
        await _write_participants(session, dataset.participants, keys, now, report[PARTICIPANTS], progress)
    await _write_interactions(session, dataset, keys, report[INTERACTIONS], progress)
    return report


async def _write_cities(
    session: AsyncSession, dataset: Dataset, report: FileReport, progress: Progress | None
) -> None:
    ticker = _Ticker(progress, CITIES, len(dataset.cities))
    stored = await repo.cities(session)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    report.rows = len(dataset.cities)
    for city in dataset.cities:
        values = {
            "name": city.name,
            "country": city.country,
            "languages": city.languages,
            "status": city.status,
        }
        current = stored.get(city.id)
        if current is None:
            inserts.append({"id": city.id, **values, "partner_since": None})
            report.inserted += 1
            continue
        changed = {name: value for name, value in values.items() if current[name] != value}
        if changed:
            updates.append({"_id": city.id, **changed})
            report.updated += 1
        else:
            report.unchanged += 1
    await repo.insert_rows(session, repo.CITIES, inserts)
    await repo.update_rows(session, repo.CITIES, updates)
    ticker.done()


async def _write_entities(
    session: AsyncSession,
    entity: repo.Entity,
    records: Sequence[R],
    keys: dict[str, UUID],
    values_of: Callable[[R], dict[str, Any]],
    insert_only: dict[str, Any],
    now: datetime,
    report: FileReport,
    ticker: _Ticker,
) -> None:
    report.rows = len(records)
    known = [keys[record.id] for record in records if record.id in keys]
    stored = await repo.stored(session, entity, known) if known else {}
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    replaced_sectors: list[UUID] = []
    replaced_targets: list[UUID] = []
    sector_rows: list[dict[str, Any]] = []
    target_rows: list[dict[str, Any]] = []
    owner = entity.owner
    for record in records:
        values = values_of(record)
        targets: list[str] | None = record.target_cities if isinstance(record, CompanyRecord) else None
        row_id = keys.get(record.id)
        if row_id is None:
            row_id = uuid7()
            keys[record.id] = row_id
            # Core inserts skip the ORM's defaults, so audit columns are filled here.
            inserts.append(
                {
                    "id": row_id,
                    "external_id": record.id,
                    **insert_only,
                    **values,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            sector_rows.extend(
                {owner: row_id, "position": i, "code": c} for i, c in enumerate(record.sectors)
            )
            if targets is not None:
                target_rows.extend({owner: row_id, "city_id": city} for city in targets)
            report.inserted += 1
            continue
        current = stored[row_id]
        changed = {name: value for name, value in values.items() if current.values[name] != value}
        sectors_changed = current.sectors != record.sectors
        targets_changed = targets is not None and current.targets != set(targets)
        if not (changed or sectors_changed or targets_changed):
            report.unchanged += 1
            continue
        updates.append({"_id": row_id, **changed, "updated_at": now})
        if sectors_changed:
            replaced_sectors.append(row_id)
            sector_rows.extend(
                {owner: row_id, "position": i, "code": c} for i, c in enumerate(record.sectors)
            )
        if targets_changed and targets is not None:
            replaced_targets.append(row_id)
            target_rows.extend({owner: row_id, "city_id": city} for city in targets)
        report.updated += 1
    await repo.insert_rows(session, entity.table, inserts, ticker)
    await repo.update_rows(session, entity.table, updates)
    await repo.delete_children(session, entity.sectors, owner, replaced_sectors)
    await repo.insert_rows(session, entity.sectors, sector_rows)
    if entity.targets is not None:
        await repo.delete_children(session, entity.targets, owner, replaced_targets)
        await repo.insert_rows(session, entity.targets, target_rows)
    ticker.done()


async def _write_participants(
    session: AsyncSession,
    records: Sequence[ParticipantRecord],
    keys: _Keys,
    now: datetime,
    report: FileReport,
    progress: Progress | None,
) -> None:
    ticker = _Ticker(progress, PARTICIPANTS, len(records))
    report.rows = len(records)
    # One row per (mission, company): the latest status wins; on a tie, the later line.
    latest: dict[tuple[UUID, UUID], ParticipantRecord] = {}
    for record in records:
        pair = (keys.missions[record.mission_id], keys.companies[record.company_id])
        previous = latest.get(pair)
        if previous is None or record.at >= previous.at:
            latest[pair] = record
    stored = await repo.participants(session, list({mission for mission, _ in latest}))
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for (mission_id, company_id), record in latest.items():
        current = stored.get((mission_id, company_id))
        if current is None:
            inserts.append(
                {
                    "id": uuid7(),
                    "mission_id": mission_id,
                    "company_id": company_id,
                    "status": record.status,
                    "status_at": record.at,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            report.inserted += 1
            continue
        row_id, status, status_at = current
        if status_at > record.at or (status_at == record.at and status == record.status):
            report.unchanged += 1
            continue
        updates.append({"_id": row_id, "status": record.status, "status_at": record.at, "updated_at": now})
        report.updated += 1
    await repo.insert_rows(session, repo.PARTICIPANTS, inserts)
    await repo.update_rows(session, repo.PARTICIPANTS, updates)
    ticker.done()


async def _write_interactions(
    session: AsyncSession, dataset: Dataset, keys: _Keys, report: FileReport, progress: Progress | None
) -> None:
    records = dataset.interactions
    ticker = _Ticker(progress, INTERACTIONS, len(records))
    companies, leads = keys.companies, keys.leads
    rows = ((companies[c], leads[lead], kind, at, position) for c, lead, kind, at, position in records)
    added = await repo.insert_interactions(session, rows, ticker)
    report.rows = len(records)
    report.inserted = added
    # Events already stored, or repeated within the file, are the same fact and are skipped.
    report.unchanged = len(records) - added
    ticker.done()
