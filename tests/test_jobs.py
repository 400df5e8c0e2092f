"""Jobs after commit: run once each after the commit, never after a rollback, a failure logged."""

import logging

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from partnermatch import jobs
from partnermatch.jobs import Job, JobContext
from partnermatch.settings import Settings


def recorder(ran: list[str], name: str, fail: bool = False) -> Job:
    async def run(context: JobContext) -> None:
        async with context.sessions() as session:
            await session.execute(select(1))  # the factory gives working sessions
        if fail:
            raise RuntimeError(f"{name} broke")
        ran.append(name)

    return Job(("test", name), run)


async def test_committed_jobs_run_once_each_and_rolled_back_ones_never(
    session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    context = JobContext(session_maker, settings)
    ran: list[str] = []
    jobs.open_queue()
    async with session_maker() as session:
        await session.execute(select(1))
        for name in ("a", "b", "a"):
            jobs.after_commit(session, recorder(ran, name))
        assert len(jobs.pending(session)) == 2
        await session.commit()
        assert jobs.pending(session) == []
        await session.execute(select(1))
        jobs.after_commit(session, recorder(ran, "rolled back"))
        await session.rollback()
        assert jobs.pending(session) == []
    assert ran == []  # nothing runs before the queue is run (after the response)
    assert await jobs.run_queue(context) == 2
    assert ran == ["b", "a"]  # "a", asked for again after "b", moved behind it
    assert await jobs.run_queue(context) == 0


async def test_a_failing_job_is_logged_and_the_others_still_run(
    session_maker: async_sessionmaker[AsyncSession], settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []
    jobs.open_queue()
    async with session_maker() as session:
        await session.execute(select(1))
        jobs.after_commit(session, recorder(ran, "first", fail=True))
        jobs.after_commit(session, recorder(ran, "second"))
        await session.commit()
    with caplog.at_level(logging.ERROR, logger="partnermatch.jobs"):
        assert await jobs.run_queue(JobContext(session_maker, settings)) == 1
    assert ran == ["second"]
    assert "job ('test', 'first') failed" in caplog.text
    assert "first broke" in caplog.text
