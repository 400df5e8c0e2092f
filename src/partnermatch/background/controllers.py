from datetime import UTC, datetime
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, access
from partnermatch.background.repository import FailedJobRepository
from partnermatch.background.schemas import FailedJobRead, ScheduledJobRead
from partnermatch.background.service import Scheduled, schedule_state
from partnermatch.mapping import read_as
from partnermatch.pagination import Limit, Offset, Page, list_page, page_window


async def provide_failed_jobs(db_session: NamedDependency[AsyncSession]) -> FailedJobRepository:
    return FailedJobRepository(db_session)


class JobController(Controller):
    """Read only: the background jobs that failed for good, and the schedule."""

    path = "/api/v1/admin/jobs"
    tags = ["admin: jobs"]
    opt = access(Access.STAFF)
    dependencies = {"failed_jobs": Provide(provide_failed_jobs)}

    @get("/failed", summary="Jobs that failed at every attempt, newest first, with their last error")
    async def list_failed(
        self,
        failed_jobs: NamedDependency[FailedJobRepository],
        name: Annotated[str | None, QueryParameter(description="Job name", max_length=100)] = None,
        limit: Limit = None,
        offset: Offset = 0,
    ) -> Page[FailedJobRead]:
        window = page_window(limit, offset)
        found = failed_jobs.newest_first(name, **window)
        return await list_page(found, window, lambda row: read_as(row, FailedJobRead))

    @get("/schedule", summary="Scheduled jobs (cron lines in Berlin time), their next run and last outcome")
    async def list_schedule(
        self, db_session: NamedDependency[AsyncSession], schedule: NamedDependency[list[Scheduled]]
    ) -> list[ScheduledJobRead]:
        states = await schedule_state(db_session, schedule, datetime.now(UTC))
        return [
            ScheduledJobRead(
                name=state.entry.name,
                cron=state.entry.cron,
                next_run=state.next_run,
                last_run=state.last.slot if state.last else None,
                last_finished_at=state.last.finished_at if state.last else None,
                last_error=state.last.error if state.last else None,
                last_outcome=state.last.outcome if state.last else None,
            )
            for state in states
        ]
