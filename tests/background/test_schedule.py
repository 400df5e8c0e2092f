"""The schedule: cron lines read in Berlin time (also across the clock changes), each run started once by
whoever sees it first, late runs caught up within the window, and how each run went kept for staff.
The time is an argument of `tick`: no test waits for the clock."""

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from partnermatch import jobs
from partnermatch.app import schedule
from partnermatch.background.models import FailedJob, ScheduledRun
from partnermatch.background.service import (
    InlineRunner,
    Scheduled,
    latest_slot,
    next_slot,
    refresh_database_statistics,
    tick,
)
from partnermatch.cities.models import City
from partnermatch.jobs import JobContext
from partnermatch.settings import Settings

BERLIN = ZoneInfo("Europe/Berlin")
calls: list[datetime] = []
broken: list[bool] = []


@jobs.job("test.weekly")
async def weekly(context: JobContext, *, now: datetime) -> dict[str, Any]:
    if broken:
        raise RuntimeError("the weekly job broke")
    calls.append(now)
    return {"seen": len(calls)}


@pytest.fixture(autouse=True)
def clean() -> None:
    calls.clear()
    broken.clear()


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("now", "slot"),
    [
        # Winter (CET, UTC+1) and summer (CEST, UTC+2): 07:00 in Berlin either way.
        (berlin(2026, 3, 28, 7, 30), berlin(2026, 3, 28, 7, 0)),
        (berlin(2026, 3, 29, 8, 30), berlin(2026, 3, 29, 7, 0)),  # the day the clocks go forward
        (berlin(2026, 10, 25, 7, 0), berlin(2026, 10, 25, 7, 0)),  # back again; exactly on time counts
        (berlin(2026, 10, 25, 6, 59, 59), berlin(2026, 10, 24, 7, 0)),
    ],
)
def test_a_daily_line_names_the_same_berlin_hour_in_summer_and_winter(now: datetime, slot: datetime) -> None:
    assert latest_slot("0 7 * * *", now) == slot.astimezone(UTC)
    assert next_slot("0 7 * * *", now) - latest_slot("0 7 * * *", now) in {
        timedelta(hours=23),
        timedelta(hours=24),
        timedelta(hours=25),
    }


async def test_a_run_starts_once_at_its_berlin_time_and_not_again(
    session_maker: async_sessionmaker[AsyncSession], db_session: AsyncSession, settings: Settings
) -> None:
    context = JobContext(session_maker, settings)
    runner = InlineRunner(context, None)
    entries = [Scheduled.of(weekly, "0 7 * * 1")]  # Mondays 07:00
    monday = berlin(2026, 12, 7, 7, 0)
    # Sunday evening: last Monday's run is a week old, past the catch-up window.
    assert await tick(context, runner, entries, berlin(2026, 12, 6, 23, 0)) == []
    assert await tick(context, runner, entries, monday - timedelta(seconds=1)) == []
    [started] = await tick(context, runner, entries, monday + timedelta(seconds=20))
    assert started.arguments["name"] == "test.weekly"
    assert calls == [monday.astimezone(UTC)]  # the job is told the run's time, not the tick's
    # Every later look that week, by this process or another, finds the run claimed.
    for later in (timedelta(seconds=50), timedelta(hours=5), timedelta(days=6)):
        assert await tick(context, runner, entries, monday + later) == []
    assert len(calls) == 1
    [run] = (await db_session.scalars(select(ScheduledRun))).all()
    assert (run.name, run.slot, run.error, run.outcome) == (
        "test.weekly",
        monday.astimezone(UTC),
        None,
        {"seen": 1},
    )
    assert run.finished_at is not None
    assert await tick(context, runner, entries, monday + timedelta(days=7)) != []
    assert len(calls) == 2


async def test_a_missed_run_is_caught_up_only_within_the_window(
    session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    context = JobContext(session_maker, settings.model_copy(update={"schedule_catch_up_hours": 6.0}))
    runner = InlineRunner(context, None)
    entries = [Scheduled.of(weekly, "0 7 * * 1")]
    monday = berlin(2026, 12, 14, 7, 0)
    assert await tick(context, runner, entries, monday + timedelta(hours=7)) == []  # the server was down
    assert await tick(context, runner, entries, monday + timedelta(days=7, hours=5)) != []
    assert calls == [(monday + timedelta(days=7)).astimezone(UTC)]


async def test_a_failing_run_keeps_its_error_on_the_run_and_as_a_failed_job(
    session_maker: async_sessionmaker[AsyncSession], db_session: AsyncSession, settings: Settings
) -> None:
    context = JobContext(session_maker, settings)
    broken.append(True)
    monday = berlin(2026, 12, 21, 7, 0)
    await tick(context, InlineRunner(context, None), [Scheduled.of(weekly, "0 7 * * 1")], monday)
    [run] = (await db_session.scalars(select(ScheduledRun))).all()
    assert run.error == "RuntimeError: the weekly job broke"
    [failed] = (await db_session.scalars(select(FailedJob))).all()
    assert failed.name == "schedule.run"
    assert failed.arguments == {
        "name": "test.weekly",
        "slot": monday.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }


def test_an_empty_line_turns_a_job_off_and_a_bad_one_is_refused(settings: Settings) -> None:
    names = {entry.name for entry in schedule(settings)}
    assert names == {
        "digests.send",
        "leads.expire",
        "accounts.clean_up",
        "database.statistics",
        "recommendations.retrain",
    }
    assert all(name in jobs.declared_names() for name in names)
    with pytest.raises(ValueError, match="five fields"):
        Settings(schedule_retrain="every sunday")
    with pytest.raises(ValueError, match="five fields"):
        Settings(schedule_cleanup="61 3 * * *")
    off = settings.model_copy(update={"schedule_retrain": ""})
    assert {entry.name: entry.cron for entry in schedule(off)}["recommendations.retrain"] == ""


async def test_staff_see_the_schedule_and_failed_jobs_members_do_not(
    client: httpx.AsyncClient, member_client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    db_session.add(
        FailedJob(
            name="mail.deliver",
            arguments={},
            attempts=5,
            error="OSError: refused",
            failed_at=datetime.now(UTC),
        )
    )
    await db_session.flush()
    listed = await client.get("/api/v1/admin/jobs/schedule")
    assert listed.status_code == 200, listed.text
    by_name = {entry["name"]: entry for entry in listed.json()}
    assert by_name["leads.expire"]["cron"] == "5 0 * * *"
    assert datetime.fromisoformat(by_name["leads.expire"]["next_run"]) > datetime.now(UTC)
    failed = await client.get("/api/v1/admin/jobs/failed", params={"name": "mail.deliver"})
    assert failed.status_code == 200, failed.text
    assert failed.json()["total"] == 1
    assert failed.json()["items"][0]["error"] == "OSError: refused"
    for path in ("/api/v1/admin/jobs/schedule", "/api/v1/admin/jobs/failed"):
        assert (await member_client.get(path)).status_code == 403


async def test_the_nightly_statistics_job_counts_the_rows_as_they_are(
    session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """Without statistics SQLite read a company's stored recommendations through the index of every
    open lead (see db.refresh_statistics); after the job the planner's row count of a table is the
    table's, also for rows added since the last analysis."""
    async with session_maker() as session:
        before = await session.scalar(select(func.count()).select_from(City))
        session.add_all(City(id=f"test-city-{n}", name=f"Test {n}", country="DE") for n in range(5))
        await session.commit()
    context = JobContext(session_maker, settings)
    await refresh_database_statistics(context, now=datetime.now(UTC))
    async with session_maker() as session:
        if settings.is_sqlite:
            query = "SELECT stat FROM sqlite_stat1 WHERE tbl = 'cities' AND idx = 'sqlite_autoindex_cities_1'"
            counted = int(str(await session.scalar(text(query))).split()[0])
        else:
            query = "SELECT reltuples FROM pg_class WHERE relname = 'cities'"
            counted = int(await session.scalar(text(query)) or 0)
    assert counted == (before or 0) + 5
