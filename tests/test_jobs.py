"""Jobs after commit: declared functions with JSON arguments, run once each after the commit, never after
a rollback; a failing one retried with backoff and then kept as failed."""

import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from partnermatch import jobs
from partnermatch.background.models import FailedJob
from partnermatch.background.service import InlineRunner, retry_wait
from partnermatch.enums import InteractionKind
from partnermatch.jobs import Job, JobContext
from partnermatch.settings import Settings

ran: list[tuple[str, Any]] = []
failures_left: dict[str, int] = {}


@jobs.job("test.record")
async def record(
    context: JobContext,
    *,
    name: str,
    company_id: UUID | None = None,
    at: datetime | None = None,
    kind: InteractionKind | None = None,
    seen: list[tuple[UUID, int | None]] | None = None,
) -> None:
    async with context.sessions() as session:
        await session.execute(select(1))  # the factory gives working sessions
    if failures_left.get(name, 0) > 0:
        failures_left[name] -= 1
        raise RuntimeError(f"{name} broke")
    ran.append((name, (company_id, at, kind, seen)))


@jobs.job("test.start_another")
async def start_another(context: JobContext, *, name: str) -> None:
    async with context.sessions.begin() as session:
        await session.execute(select(1))
        jobs.after_commit(session, Job.of(record, name=f"{name}, then"))
    ran.append((name, None))


@pytest.fixture(autouse=True)
def clean() -> None:
    ran.clear()
    failures_left.clear()


def names() -> list[str]:
    return [name for name, _ in ran]


async def test_committed_jobs_run_once_each_and_rolled_back_ones_never(
    session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    runner = InlineRunner(JobContext(session_maker, settings), None)
    jobs.open_queue()
    async with session_maker() as session:
        await session.execute(select(1))
        for name in ("a", "b", "a"):
            jobs.after_commit(session, Job.of(record, name=name))
        assert len(jobs.pending(session)) == 2
        await session.commit()
        assert jobs.pending(session) == []
        await session.execute(select(1))
        jobs.after_commit(session, Job.of(record, name="rolled back"))
        await session.rollback()
        assert jobs.pending(session) == []
    assert ran == []  # nothing runs before the runner is handed the queue (after the response)
    await runner.enqueue(jobs.committed())
    assert names() == ["b", "a"]  # "a", asked for again after "b", moved behind it
    assert jobs.committed() == []


async def test_arguments_come_back_as_their_types_after_json(
    session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    company_id, lead_id, at = uuid4(), uuid4(), datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    job = Job.of(
        record, name="typed", company_id=company_id, at=at, kind=InteractionKind.VIEW, seen=[(lead_id, 3)]
    )
    # What a queue stores: plain JSON values.
    assert job.arguments == {
        "name": "typed",
        "company_id": str(company_id),
        "at": "2026-03-29T01:30:00Z",
        "kind": "view",
        "seen": [[str(lead_id), 3]],
    }
    await jobs.call(JobContext(session_maker, settings), job)
    assert ran == [("typed", (company_id, at, InteractionKind.VIEW, [(lead_id, 3)]))]


def test_a_job_must_be_declared_and_its_arguments_must_be_json() -> None:
    async def undeclared(context: JobContext) -> None:
        return None

    with pytest.raises(jobs.UnknownJob, match="not declared"):
        Job.of(undeclared)
    with pytest.raises(TypeError):
        Job.of(record, name=object())
    with pytest.raises(ValueError, match="taken"):
        jobs.job("test.record")(undeclared)
    with pytest.raises(jobs.UnknownJob, match=r"test\.nothing"):
        jobs.declared("test.nothing")


async def test_a_job_that_commits_starts_its_own_jobs(
    session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await InlineRunner(JobContext(session_maker, settings), None).enqueue(
        [Job.of(start_another, name="first")]
    )
    assert names() == ["first", "first, then"]


async def test_a_failing_job_is_retried_with_backoff_then_kept_as_failed(
    session_maker: async_sessionmaker[AsyncSession],
    db_session: AsyncSession,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings.model_copy(update={"job_max_attempts": 3, "job_retry_seconds": 0.01})
    later: list[Coroutine[Any, Any, None]] = []
    runner = InlineRunner(JobContext(session_maker, settings), later.append)
    failures_left.update(flaky=1, broken=10)
    with caplog.at_level(logging.WARNING, logger="partnermatch.background"):
        await runner.enqueue(
            [Job.of(record, name="flaky"), Job.of(record, name="broken"), Job.of(record, name="fine")]
        )
        assert names() == ["fine"]  # the others wait for their retry; the next job did not wait
        assert len(later) == 2
        while later:
            await later.pop(0)
    assert names() == ["fine", "flaky"]
    assert failures_left["broken"] == 7  # run three times, then given up
    [failed] = (await db_session.scalars(select(FailedJob))).all()
    assert (failed.name, failed.attempts, failed.arguments) == ("test.record", 3, {"name": "broken"})
    assert "RuntimeError: broken broke" in failed.error
    assert "retried in" in caplog.text
    assert "kept as failed" in caplog.text


def test_retry_waits_double_up_to_the_cap(settings: Settings) -> None:
    settings = settings.model_copy(update={"job_retry_seconds": 10.0, "job_retry_max_seconds": 60.0})
    assert [retry_wait(settings, attempts) for attempts in range(1, 6)] == [10, 20, 40, 60, 60]
