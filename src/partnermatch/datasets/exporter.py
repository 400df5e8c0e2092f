"""Writing the whole database as a dataset folder (shared/dataset-format.md), streaming.

Ids are external ids where a row has one, else its UUID: importing the export into the
same database matches every row again, and into a fresh one recreates it.
"""

import asyncio
from collections.abc import Callable, Iterable
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import msgspec
from rich.progress import Progress
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.datasets import repository as repo
from partnermatch.datasets.format import CITIES, COMPANIES, INTERACTIONS, LEADS, MISSIONS, PARTICIPANTS

_encoder = msgspec.json.Encoder()


def _time(value: datetime) -> str:
    # Stored in UTC; isoformat() of an aware datetime carries the +00:00 offset the format requires.
    return value.isoformat()


def _date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


class _Writer:
    def __init__(self, directory: Path, name: str, progress: Progress | None, total: int | None) -> None:
        self.path = directory / name
        self.count = 0
        self.progress = progress
        self.task = progress.add_task(f"export {name}", total=total) if progress is not None else None
        self.file: IO[bytes] = self.path.open("wb")

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        written = 0
        buffer = bytearray()
        for row in rows:
            buffer += _encoder.encode(row)
            buffer += b"\n"
            written += 1
        self.file.write(buffer)
        self.count += written
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task, written)

    def close(self) -> None:
        self.file.close()


async def export_dataset(
    session: AsyncSession, directory: Path, progress: Progress | None = None
) -> dict[str, int]:
    """Write every file of the format into ``directory`` (created if needed); returns rows per file."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    counts: dict[str, int] = {}

    cities = await repo.export_cities(session)
    writer = _Writer(directory, CITIES, progress, len(cities))
    try:
        writer.write(
            {
                "id": city["id"],
                "name": city["name"],
                "country": city["country"],
                "languages": city["languages"],
                "status": city["status"],
            }
            for city in cities
        )
    finally:
        writer.close()
    counts[CITIES] = writer.count

    companies = await repo.export_names(session, repo.COMPANIES)
    leads = await repo.export_names(session, repo.LEADS)
    missions = await repo.export_names(session, repo.MISSIONS)

    counts[COMPANIES] = await _entities(
        session, directory, COMPANIES, repo.COMPANY, companies, progress, _company
    )
    counts[LEADS] = await _entities(session, directory, LEADS, repo.LEAD, leads, progress, _lead)
    counts[MISSIONS] = await _entities(
        session, directory, MISSIONS, repo.MISSION, missions, progress, _mission
    )

    writer = _Writer(directory, PARTICIPANTS, progress, await repo.count(session, repo.PARTICIPANTS))
    try:
        async for rows in repo.stream_participants(session):
            writer.write(
                {
                    "mission_id": missions[mission_id],
                    "company_id": companies[company_id],
                    "status": status,
                    "at": _time(status_at),
                }
                for mission_id, company_id, status, status_at in rows
            )
    finally:
        writer.close()
    counts[PARTICIPANTS] = writer.count

    writer = _Writer(directory, INTERACTIONS, progress, await repo.count(session, repo.INTERACTIONS))
    try:
        async for rows in repo.stream_interactions(session):
            writer.write(
                {
                    "company_id": companies[company_id],
                    "lead_id": leads[lead_id],
                    "kind": kind,
                    "at": _time(at),
                    "position": position,
                }
                for company_id, lead_id, kind, at, position in rows
            )
    finally:
        writer.close()
    counts[INTERACTIONS] = writer.count
    return counts


def _company(name: str, stored: repo.Stored) -> dict[str, Any]:
    v = stored.values
    return {
        "id": name,
        "name": v["name"],
        "sectors": stored.sectors,
        "employees": v["employees"],
        "founded": v["founded"],
        "export_experience": v["export_experience"],
        "languages": v["languages"],
        "target_cities": sorted(stored.targets),
        "description": v["description"],
        "registered_at": _time(v["registered_at"]),
    }


def _lead(name: str, stored: repo.Stored) -> dict[str, Any]:
    v = stored.values
    return {
        "id": name,
        "title": v["title"],
        "kind": v["kind"],
        "organization": v["organization"],
        "city": v["city_id"],
        "sectors": stored.sectors,
        "description": v["description"],
        "languages": v["languages"],
        "budget_eur": v["budget_eur"],
        "published_at": _time(v["published_at"]),
        "deadline": _date(v["deadline"]),
    }


def _mission(name: str, stored: repo.Stored) -> dict[str, Any]:
    v = stored.values
    return {
        "id": name,
        "title": v["title"],
        "city": v["city_id"],
        "sectors": stored.sectors,
        "starts_on": _date(v["starts_on"]),
        "ends_on": _date(v["ends_on"]),
        "capacity": v["capacity"],
        "announced_at": _time(v["announced_at"]),
    }


async def _entities(
    session: AsyncSession,
    directory: Path,
    name: str,
    entity: repo.Entity,
    names: dict[UUID, str],
    progress: Progress | None,
    render: Callable[[str, repo.Stored], dict[str, Any]],
) -> int:
    writer = _Writer(directory, name, progress, len(names))
    try:
        async for batch in repo.entity_batches(session, entity):
            writer.write(render(names[row_id], stored) for row_id, stored in batch)
    finally:
        writer.close()
    return writer.count
