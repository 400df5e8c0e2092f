"""Queries of failed jobs and of scheduled runs. A run is claimed by inserting its (name, slot) row:
the unique constraint lets exactly one of any number of concurrent claimers win, on both databases."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from partnermatch.background.models import FailedJob, ScheduledRun


class FailedJobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: FailedJob) -> None:
        self.session.add(row)

    async def newest_first(
        self, name: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[Sequence[FailedJob], int]:
        conditions = [] if name is None else [FailedJob.name == name]
        total = await self.session.scalar(select(func.count()).select_from(FailedJob).where(*conditions))
        rows = await self.session.scalars(
            select(FailedJob)
            .where(*conditions)
            .order_by(FailedJob.failed_at.desc(), FailedJob.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return rows.all(), int(total or 0)


class ScheduledRunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, name: str, slot: datetime, now: datetime) -> bool:
        """True for the one caller that claimed this run; False for every other."""
        values = {"id": uuid7(), "name": name, "slot": slot, "claimed_at": now}
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(ScheduledRun)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["name", "slot"])
            .returning(ScheduledRun.id)
        )
        return (await self.session.scalar(statement)) is not None

    async def finish(
        self, name: str, slot: datetime, at: datetime, *, error: str | None, outcome: dict[str, Any] | None
    ) -> None:
        await self.session.execute(
            update(ScheduledRun)
            .where(ScheduledRun.name == name, ScheduledRun.slot == slot)
            .values(finished_at=at, error=error, outcome=outcome)
        )

    async def latest(self) -> dict[str, ScheduledRun]:
        """Each scheduled job's newest run."""
        newest = (
            select(ScheduledRun.name, func.max(ScheduledRun.slot).label("slot"))
            .group_by(ScheduledRun.name)
            .subquery()
        )
        rows = await self.session.scalars(
            select(ScheduledRun).join(
                newest, (ScheduledRun.name == newest.c.name) & (ScheduledRun.slot == newest.c.slot)
            )
        )
        return {row.name: row for row in rows}
