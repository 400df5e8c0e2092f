"""`partnermatch worker` runs background jobs from Redis; `partnermatch jobs` shows and starts them."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import click
import saq
from rich.markup import escape
from saq.types import PartialTimersDict
from sqlalchemy.ext.asyncio import async_sessionmaker

from partnermatch import jobs
from partnermatch.app import background_work, schedule, subscribe_to_events
from partnermatch.audit import recorder
from partnermatch.background.repository import FailedJobRepository
from partnermatch.background.service import (
    SaqRunner,
    command_runner,
    saq_functions,
    saq_queue,
    schedule_state,
    tick,
)
from partnermatch.cli import console, run
from partnermatch.clock import local_zone
from partnermatch.db import create_engine, ensure_migrated, reads_only
from partnermatch.jobs import JobContext
from partnermatch.settings import Settings, get_settings

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def job_context(settings: Settings) -> AsyncIterator[JobContext]:
    """The context that jobs get in this process: a pooled engine of its own."""
    engine = create_engine(settings)
    try:
        await ensure_migrated(settings, engine)
        yield JobContext(async_sessionmaker(engine, expire_on_commit=False), settings)
    finally:
        await engine.dispose()


async def _work(settings: Settings, worker_id: str | None) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    recorder.install()
    subscribe_to_events()
    async with job_context(settings) as context:
        queue = saq_queue(settings)
        runner = SaqRunner(queue, settings)
        worker = saq.Worker(
            queue,
            functions=saq_functions(context, runner),
            id=worker_id,
            concurrency=settings.worker_concurrency,
            # The sweep finds the jobs of killed workers (silent past their heartbeat) and retries them.
            timers=PartialTimersDict(
                schedule=1, worker_info=10, abort=1, sweep=max(int(settings.job_heartbeat_seconds), 1)
            ),
        )
        background = [asyncio.create_task(work) for work in background_work(context, runner)]
        console.print(
            f"worker {worker.id}: {len(jobs.declared_names())} job functions, concurrency "
            f"{settings.worker_concurrency}, queue {escape(settings.queue_url)}",
            highlight=False,
        )
        try:
            # Until SIGINT or SIGTERM (SAQ's own handlers). The jobs running then are stopped and queued
            # again at once, for another worker: waiting for them could outlast a container's stop timeout.
            await worker.start()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
        await queue.disconnect()


@click.command("worker")
@click.option("--id", "worker_id", default=None, help="This worker's name in `partnermatch jobs status`")
def worker(worker_id: str | None) -> None:
    """Run background jobs queued in Redis (PARTNERMATCH_QUEUE_URL), the schedule and the mail outbox,
    until stopped (SIGTERM lets the running jobs finish). Start as many as you like, on any hosts."""
    settings = get_settings()
    if not settings.queue_url:
        raise click.UsageError(
            "PARTNERMATCH_QUEUE_URL is not set: without a queue the server runs the jobs itself"
        )
    run(_work(settings, worker_id))


@click.group("jobs")
def jobs_group() -> None:
    """Background jobs: queued, running, failed and scheduled ones."""


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.astimezone(local_zone()).strftime("%a %Y-%m-%d %H:%M %Z")


async def _status(settings: Settings, show: int) -> None:
    async with job_context(settings) as context:
        if settings.queue_url:
            queue = saq_queue(settings)
            try:
                info = await queue.info(jobs=True, limit=show)
            finally:
                await queue.disconnect()
            console.print(
                f"queue {escape(settings.queue_url)}: {len(info['workers'])} worker(s), queued "
                f"{info['queued']}, running {info['active']}, waiting for a retry or a time "
                f"{info['scheduled']}",
                highlight=False,
            )
            for job in info["jobs"]:
                console.print(
                    f"  {job['status']:<9} {escape(job['function'])}  attempts {job['attempts']}"
                    f"/{job['retries']}  {escape(str(job.get('error') or '')[-200:])}",
                    highlight=False,
                )
        else:
            console.print(
                "no queue (PARTNERMATCH_QUEUE_URL is empty): jobs run inside the server's process, "
                "nothing waits outside it",
                highlight=False,
            )
        with reads_only():
            async with context.sessions() as session:
                failed, total = await FailedJobRepository(session).newest_first(limit=show)
                states = await schedule_state(session, schedule(settings), datetime.now(UTC))
        console.print(f"failed: {total}", highlight=False)
        for row in failed:
            last_line = (row.error.strip().splitlines() or [""])[-1]
            console.print(
                f"  {_when(row.failed_at)}  {row.name}  after {row.attempts} attempt(s): {escape(last_line)}",
                highlight=False,
            )
        console.print("scheduled (Berlin time):", highlight=False)
        for state in states:
            last = state.last
            outcome = (
                "never run"
                if last is None
                else f"last {_when(last.slot)}: "
                + (
                    f"failed: {escape(last.error)}"
                    if last.error
                    else "running"
                    if last.finished_at is None
                    else f"done {escape(str(last.outcome or ''))}"
                )
            )
            console.print(
                f"  {state.entry.name:<22} {state.entry.cron or 'off':<14} next {_when(state.next_run)}  {outcome}",
                highlight=False,
            )


@jobs_group.command("status")
@click.option("--show", default=20, show_default=True, help="How many queued and failed jobs to list")
def status_command(show: int) -> None:
    """Queued and running jobs (with a queue), failed ones with their errors, and the schedule."""
    run(_status(get_settings(), show))


async def _run_due(settings: Settings, at: datetime) -> list[str]:
    recorder.install()
    subscribe_to_events()
    async with job_context(settings) as context, command_runner(context) as runner:
        started = await tick(context, runner, schedule(settings), at)
    return [job.arguments["name"] for job in started]


@jobs_group.command("tick")
@click.option(
    "--at",
    "at",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]),
    default=None,
    help="The time to check the schedule at, in Berlin time [default: now]",
)
def tick_command(at: datetime | None) -> None:
    """Start the scheduled jobs that are due (and not yet started by anyone), as the runners do every
    PARTNERMATCH_SCHEDULE_POLL_SECONDS. Without a queue they run here, before the command ends."""
    moment = datetime.now(UTC) if at is None else at.replace(tzinfo=local_zone())
    started = run(_run_due(get_settings(), moment))
    console.print(f"started: {', '.join(started) or 'nothing due'}", highlight=False)
