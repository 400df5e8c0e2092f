"""Who runs the jobs (``partnermatch/jobs.py``), when scheduled ones start, and what happens when one fails.

Two runners take the same job functions:

- :class:`InlineRunner`, the embedded default (``PARTNERMATCH_QUEUE_URL`` empty): the server runs a
  request's committed jobs itself after the response, as before, and retries a failing one from a task
  of its own. Nothing is queued outside the process, so a job waiting for a retry when the server stops
  is lost: every job is written so that losing it costs time, not data (stored recommendations are
  dropped in the change itself and scored on demand until recomputed; mail waits in the outbox, which
  each runner polls).
- :class:`SaqRunner` (production): jobs are queued in Redis with SAQ and run by ``partnermatch worker``
  processes, any number on any hosts. SAQ hands each queued job to one worker; a worker reports each job
  it runs alive every ``PARTNERMATCH_JOB_HEARTBEAT_SECONDS``, so the job of a killed worker is given to
  another one once it has been silent for three times as long. Jobs run at least once.

A job that fails is retried after ``PARTNERMATCH_JOB_RETRY_SECONDS``, doubled at each retry up to
``PARTNERMATCH_JOB_RETRY_MAX_SECONDS``; after ``PARTNERMATCH_JOB_MAX_ATTEMPTS`` it is kept in
``failed_jobs`` with its arguments and error, for staff (``GET /api/v1/admin/jobs/failed``).

Scheduled jobs are cron lines in Berlin time (``PARTNERMATCH_SCHEDULE_*``). Each runner's process checks
the schedule every ``PARTNERMATCH_SCHEDULE_POLL_SECONDS`` (:func:`tick`, which takes the time as an
argument so that tests set it); the first to see a run come claims it in the database, so it starts
once however many processes look, and a run missed while nothing was running starts late if it is at
most ``PARTNERMATCH_SCHEDULE_CATCH_UP_HOURS`` late.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import saq
from croniter import croniter
from saq.job import get_default_job_key
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch import jobs
from partnermatch.background.models import FailedJob, ScheduledRun
from partnermatch.background.repository import FailedJobRepository, ScheduledRunRepository
from partnermatch.clock import local_zone
from partnermatch.db import refresh_statistics
from partnermatch.jobs import Job, JobContext
from partnermatch.settings import Settings

logger = logging.getLogger(__name__)

# SAQ answers whether a job is stuck by its heartbeat: several beats may be missed before it counts.
MISSED_BEATS = 3
ERROR_CHARACTERS = 20_000


def retry_wait(settings: Settings, attempts: int) -> float:
    """Seconds before the next run of a job that has failed ``attempts`` times."""
    return jobs.backoff(settings.job_retry_seconds, attempts, settings.job_retry_max_seconds)


def timeout_of(settings: Settings, job: Job) -> float:
    return jobs.declared(job.name).timeout_seconds or settings.job_timeout_seconds


async def record_failure(context: JobContext, job: Job, attempts: int, error: BaseException | str) -> None:
    text = error if isinstance(error, str) else "".join(traceback.format_exception(error))
    async with context.sessions.begin() as session:
        FailedJobRepository(session).add(
            FailedJob(
                name=job.name,
                arguments=job.arguments,
                attempts=attempts,
                error=text[-ERROR_CHARACTERS:],
                failed_at=datetime.now(UTC),
            )
        )
    logger.error(
        "job %s failed %d times and is kept as failed: %s", job.key, attempts, text.splitlines()[-1:]
    )


Spawn = Callable[[Coroutine[Any, Any, None]], None]


class InlineRunner:
    """Runs jobs in this process, now; retries later from a task that ``spawn`` starts and owns (without
    ``spawn``, as in a command that ends when its jobs have run, a failed job is kept as failed at once)."""

    def __init__(self, context: JobContext, spawn: Spawn | None) -> None:
        self.context = context
        self.spawn = spawn

    async def enqueue(self, found: Sequence[Job]) -> None:
        for job in found:
            await self.attempt(job, 1)

    async def attempt(self, job: Job, attempt: int) -> None:
        settings = self.context.settings
        try:
            async with asyncio.timeout(timeout_of(settings, job)):
                await jobs.run(self.context, job, self)
        except Exception as exc:
            if attempt >= settings.job_max_attempts or self.spawn is None:
                await record_failure(self.context, job, attempt, exc)
            else:
                wait = retry_wait(settings, attempt)
                logger.warning(
                    "job %s failed (attempt %d), retried in %.0f s", job.key, attempt, wait, exc_info=True
                )
                self.spawn(self._later(job, attempt + 1, wait))

    async def _later(self, job: Job, attempt: int, wait: float) -> None:
        await asyncio.sleep(wait)
        await self.attempt(job, attempt)


def saq_queue(settings: Settings) -> saq.Queue:
    return saq.Queue.from_url(settings.queue_url, name="partnermatch")


@asynccontextmanager
async def command_runner(context: JobContext) -> AsyncIterator[jobs.Runner]:
    """Where a command's jobs go: the queue when there is one, else they run before the command ends."""
    if not context.settings.queue_url:
        yield InlineRunner(context, None)
        return
    queue = saq_queue(context.settings)
    try:
        yield SaqRunner(queue, context.settings)
    finally:
        await queue.disconnect()


class SaqRunner:
    """Queues jobs in Redis for ``partnermatch worker``."""

    def __init__(self, queue: saq.Queue, settings: Settings) -> None:
        self.queue = queue
        self.settings = settings

    def saq_job(self, job: Job) -> saq.Job:
        settings = self.settings
        declared = jobs.declared(job.name)
        return saq.Job(
            function=job.name,
            kwargs=job.arguments,
            # An exclusive job is queued or running at most once (SAQ refuses a second job of the same
            # key until the first is done); other jobs get a unique key, because a job asked for while
            # the same one runs must still run after it (the running one read older data).
            key=job.key if declared.exclusive else get_default_job_key(),
            timeout=int(timeout_of(settings, job)),
            heartbeat=int(settings.job_heartbeat_seconds * MISSED_BEATS),
            retries=settings.job_max_attempts,
            retry_delay=settings.job_retry_seconds,
            retry_backoff=settings.job_retry_max_seconds,
            ttl=7 * 24 * 3600,
        )

    async def enqueue(self, found: Sequence[Job]) -> None:
        for job in found:
            if await self.queue.enqueue(self.saq_job(job)) is None:
                logger.warning("job %s is already queued or running: not queued again", job.key)


def saq_functions(context: JobContext, runner: SaqRunner) -> list[tuple[str, Any]]:
    """Every declared job function, as the SAQ worker calls it: (name, function(ctx, **arguments))."""

    def perform_as(name: str) -> Any:
        async def perform(ctx: dict[str, Any], **arguments: Any) -> Any:
            queued: saq.Job = ctx["job"]
            job = Job(name, arguments, queued.key)
            logger.info(
                "job %s (%s) runs, attempt %d of %d", name, queued.key, queued.attempts, queued.retries
            )
            beating = asyncio.create_task(_heartbeat(queued, context.settings.job_heartbeat_seconds))
            try:
                result = await jobs.run(context, job, runner)
            except Exception as exc:
                if not queued.retryable:
                    await record_failure(context, job, queued.attempts, exc)
                raise
            finally:
                beating.cancel()
            return _as_json(result)

        return perform

    return [(name, perform_as(name)) for name in jobs.declared_names()]


async def _heartbeat(queued: saq.Job, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        await queued.update()  # sets `touched`, which SAQ's sweep reads


def _as_json(result: Any) -> Any:
    try:
        return msgspec.to_builtins(result)
    except TypeError:
        return None


@dataclass(frozen=True)
class Scheduled:
    """A job started by the clock: ``name`` of a job function that takes ``now`` (the run's time)."""

    name: str
    cron: str
    """Five fields in Berlin time; empty: never."""

    @classmethod
    def of(cls, function: jobs.JobFunction, cron: str) -> Scheduled:
        return cls(jobs.name_of(function), cron)


def latest_slot(cron: str, now: datetime) -> datetime:
    """The newest time at or before ``now`` that the cron line names, read in Berlin time; in UTC."""
    local = now.astimezone(local_zone())
    upcoming: datetime = croniter(cron, local - timedelta(microseconds=1)).get_next(datetime)
    if upcoming <= local:
        return upcoming.astimezone(UTC)
    previous: datetime = croniter(cron, local).get_prev(datetime)
    return previous.astimezone(UTC)


def next_slot(cron: str, now: datetime) -> datetime:
    upcoming: datetime = croniter(cron, now.astimezone(local_zone())).get_next(datetime)
    return upcoming.astimezone(UTC)


@jobs.job("database.statistics", exclusive=True)
async def refresh_database_statistics(context: JobContext, *, now: datetime) -> None:
    """Scheduled job (``PARTNERMATCH_SCHEDULE_STATISTICS``): the query planner's statistics of the tables
    as the day's changes left them (``db.refresh_statistics``)."""
    async with context.sessions.begin() as session:
        await refresh_statistics(session)


@jobs.job("schedule.run", exclusive=True)
async def run_scheduled(context: JobContext, *, name: str, slot: datetime) -> Any:
    """Job: one claimed run of a scheduled job; its end (or error) is noted on the run's row."""
    try:
        outcome = await jobs.call(context, Job(name, {"now": msgspec.to_builtins(slot)}))
    except Exception as exc:
        await _finish(context, name, slot, error="".join(traceback.format_exception_only(exc)).strip())
        raise
    await _finish(context, name, slot, outcome=_as_json(outcome))
    return outcome


async def _finish(
    context: JobContext, name: str, slot: datetime, *, error: str | None = None, outcome: Any = None
) -> None:
    async with context.sessions.begin() as session:
        await ScheduledRunRepository(session).finish(
            name, slot, datetime.now(UTC), error=error, outcome=_as_outcome(outcome)
        )


def _as_outcome(outcome: Any) -> dict[str, Any] | None:
    if outcome is None or isinstance(outcome, dict):
        return outcome
    return {"result": outcome}


async def tick(
    context: JobContext, runner: jobs.Runner, schedule: Sequence[Scheduled], now: datetime
) -> list[Job]:
    """Start the runs of ``schedule`` that are due at ``now`` and that no one has claimed; returns them."""
    catch_up = timedelta(hours=context.settings.schedule_catch_up_hours)
    started: list[Job] = []
    for entry in schedule:
        if not entry.cron:
            continue
        slot = latest_slot(entry.cron, now)
        if now - slot > catch_up:
            continue
        async with context.sessions.begin() as session:
            claimed = await ScheduledRunRepository(session).claim(entry.name, slot, now)
        if claimed:
            logger.info("scheduled job %s of %s starts", entry.name, slot.isoformat())
            started.append(Job.of(run_scheduled, key=f"schedule:{entry.name}", name=entry.name, slot=slot))
    if started:
        await runner.enqueue(started)
    return started


async def keep_schedule(
    context: JobContext, runner: jobs.Runner, schedule: Sequence[Scheduled], interval: float
) -> None:
    """Check the schedule every ``interval`` seconds, for as long as the process runs."""
    while True:
        try:
            await tick(context, runner, schedule, datetime.now(UTC))
        except Exception:
            logger.exception("checking the schedule failed; checked again in %.0f s", interval)
        await asyncio.sleep(interval)


@dataclass(frozen=True)
class ScheduleState:
    entry: Scheduled
    next_run: datetime | None
    last: ScheduledRun | None


async def schedule_state(
    session: AsyncSession, schedule: Sequence[Scheduled], now: datetime
) -> list[ScheduleState]:
    """Each scheduled job's next run and how its last one went."""
    latest = await ScheduledRunRepository(session).latest()
    return [
        ScheduleState(entry, next_slot(entry.cron, now) if entry.cron else None, latest.get(entry.name))
        for entry in schedule
    ]
