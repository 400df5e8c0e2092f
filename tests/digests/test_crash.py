"""The digest run killed with SIGKILL at random moments, then run again: every due member gets their
digest, none is lost, at most one message per crash arrives twice, and a rerun of the finished week
sends nothing. Each round runs `partnermatch digests send` as a process on its own copy of one prepared
SQLite database, with a real SMTP server (aiosmtpd) in the test, kills it, and runs the rest in the
test's own process (the same functions as the command: starting Python again costs seconds a round).

CI runs PARTNERMATCH_TEST_CRASH_ROUNDS (default 20) rounds; set it higher for a longer run. The counts are
printed (pytest -s)."""

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from partnermatch.accounts.models import User
from partnermatch.accounts.service import AccountService
from partnermatch.clock import local_zone
from partnermatch.companies.models import Company
from partnermatch.datasets.importer import import_dataset
from partnermatch.db import create_engine, migrate, session_scope
from partnermatch.digests.models import SentDigest
from partnermatch.digests.service import send
from partnermatch.enums import CompanyStatus, DigestFrequency, UserRole
from partnermatch.jobs import JobContext
from partnermatch.outbox.service import deliver
from partnermatch.recommendations.batch import store
from partnermatch.recommendations.registry import ModelRegistry
from partnermatch.recommendations.training import fit_and_save
from partnermatch.settings import Settings
from partnermatch.synthetic.generator import GeneratorConfig, generate
from tests.conftest import process_environment
from tests.outbox.test_outbox import SmtpServer

ROUNDS = int(os.environ.get("PARTNERMATCH_TEST_CRASH_ROUNDS", "20"))
COMPANIES = 200  # enough history to train on
MEMBERS = 60  # companies with a consented member: the digests of a run
WEEKS = 16
# Noon today (Berlin): the generated data ends today, so its leads are open; every run is in one week.
NOW = f"{date.today().isoformat()} 12:00"


async def prepare(settings: Settings, dataset: Path, models: Path) -> int:
    """Demo-like data, a model and its stored rows, one consented member in each of MEMBERS approved
    companies; returns how many members are due."""
    await migrate(settings)
    trained = await asyncio.to_thread(fit_and_save, dataset, models / "ranker.joblib", {"max_iter": 10})
    async with session_scope(settings) as session:
        await import_dataset(session, dataset)
        version = await ModelRegistry(session).register(trained.metadata, str(trained.path))
        await store(session, version, 20)
        companies = (
            await session.scalars(
                select(Company.id)
                .where(Company.status == CompanyStatus.APPROVED.value)
                .order_by(Company.id)
                .limit(MEMBERS)
            )
        ).all()
        accounts = AccountService(session, settings=settings)
        for number, company_id in enumerate(companies):
            user = await accounts.create_user(
                f"member{number}@example.org",
                None,
                role=UserRole.MEMBER,
                company_id=company_id,
                verified=True,
            )
            user.language = "en" if number % 3 == 0 else "de"
            user.digest_frequency = DigestFrequency.WEEKLY.value
            user.digest_consent_at = datetime.now(UTC)
        return len(companies)


def environment(database: Path, var_dir: Path, smtp: SmtpServer) -> dict[str, str]:
    values = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "VAR_DIR": str(var_dir),
        "MAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_STARTTLS": "false",
        # A send interrupted by the kill is taken up by the next run at once, not after five minutes.
        "MAIL_LEASE_SECONDS": "0.5",
        "SCHEDULE_POLL_SECONDS": "0",
        "OUTBOX_POLL_SECONDS": "0",
    }
    return process_environment(values)


def settings_of(env: dict[str, str]) -> Settings:
    """The settings that a process started with ``env`` has."""
    prefix = "PARTNERMATCH_"
    values = {key.removeprefix(prefix).lower(): value for key, value in env.items() if key.startswith(prefix)}
    return Settings(**values)


async def finish(settings: Settings) -> None:
    """The run after a crash, in this process: what `digests send` does, without starting Python again."""
    engine = create_engine(settings, pooled=False)
    try:
        context = JobContext(async_sessionmaker(engine, expire_on_commit=False), settings)
        at = datetime.strptime(NOW, "%Y-%m-%d %H:%M").replace(tzinfo=local_zone())
        await send(context, at)
        # What the killed run had claimed but not marked is sent again by the first sender after the
        # lease (the outbox's bound): this run comes right after the kill, so it waits the lease out.
        await asyncio.sleep(settings.mail_lease_seconds)
        await deliver(context)
    finally:
        await engine.dispose()


def run_send(env: dict[str, str], kill_after: float | None = None) -> bool:
    """One `digests send`; killed with SIGKILL after ``kill_after`` seconds if still running. True if it
    was killed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "partnermatch", "digests", "send", "--now", NOW],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if kill_after is None:
        _out, errors = process.communicate(timeout=300)
        assert process.returncode == 0, errors.decode()[-3000:]
        return False
    try:
        process.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True
    return False


async def recorded(database: Path, var_dir: Path) -> tuple[int, int]:
    """(members with a digest this period, digests recorded) in that database."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{database}", var_dir=var_dir)
    async with session_scope(settings) as session:
        members = await session.scalar(select(func.count(func.distinct(SentDigest.user_id))))
        rows = await session.scalar(select(func.count()).select_from(SentDigest))
        users = await session.scalar(select(func.count()).select_from(User))
    assert users
    return int(members or 0), int(rows or 0)


@pytest.mark.skipif(ROUNDS < 1, reason="PARTNERMATCH_TEST_CRASH_ROUNDS=0")
def test_killed_runs_lose_nothing_and_duplicate_at_most_one_message_per_crash(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    generate(
        dataset,
        GeneratorConfig(
            companies=COMPANIES, leads=200, seed=5, weeks=WEEKS, start=date.today() - timedelta(weeks=WEEKS)
        ),
    )
    prepared = tmp_path / "prepared.db"
    settings = Settings(database_url=f"sqlite+aiosqlite:///{prepared}", var_dir=tmp_path)
    due = asyncio.run(prepare(settings, dataset, tmp_path / "models"))
    smtp = SmtpServer()
    smtp.start()
    try:
        # One run without a kill: how long a whole run takes, and what it sends.
        reference = tmp_path / "reference.db"
        shutil.copyfile(prepared, reference)
        started = time.monotonic()
        run_send(environment(reference, tmp_path, smtp))
        whole = time.monotonic() - started
        expected = len(smtp.inbox.received)
        assert 0 < expected <= due
        members, _rows = asyncio.run(recorded(reference, tmp_path))
        assert members == expected

        chance = random.Random(20261207)
        crashes = duplicates = 0
        for round_number in range(ROUNDS):
            database = tmp_path / f"round{round_number}.db"
            shutil.copyfile(prepared, database)
            env = environment(database, tmp_path, smtp)
            smtp.inbox.received.clear()
            killed = run_send(env, kill_after=chance.uniform(0.35 * whole, whole))
            crashes += killed
            asyncio.run(finish(settings_of(env)))  # after the crash: the rest
            arrived = Counter(message["To"] for message in smtp.inbox.received)
            assert len(arrived) == expected, (
                f"round {round_number}: {len(arrived)} of {expected} members got theirs"
            )
            extra = sum(count - 1 for count in arrived.values())
            assert extra <= int(killed), f"round {round_number}: {extra} duplicates after {int(killed)} crash"
            duplicates += extra
            members, rows = asyncio.run(recorded(database, tmp_path))
            assert members == rows == expected
        smtp.inbox.received.clear()
        run_send(environment(reference, tmp_path, smtp))  # a finished week again
        assert smtp.inbox.received == []
        print(
            f"\n{ROUNDS} rounds, {crashes} killed mid-run (a whole run: {whole:.1f} s, {expected} digests): "
            f"0 digests lost, {duplicates} duplicated message(s) in all"
        )
    finally:
        smtp.stop()
