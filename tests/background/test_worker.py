"""Two `partnermatch worker` processes on one Redis queue and one database, as in production: every queued
job runs once, a scheduled run starts once although both workers look at the schedule twice a second, and
SIGTERM stops a worker cleanly."""

import asyncio
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import select

from partnermatch.background.models import ScheduledRun
from partnermatch.background.service import SaqRunner, saq_queue
from partnermatch.db import migrate, session_scope
from partnermatch.enums import MailKind
from partnermatch.jobs import Job
from partnermatch.outbox.service import Outbox, deliver_job
from partnermatch.settings import Settings
from tests.conftest import process_environment
from tests.outbox.test_outbox import SmtpServer

MESSAGES = 40
DELIVERIES = 40
WAIT_SECONDS = 90


def worker_environment(settings: Settings) -> dict[str, str]:
    values = {
        "DATABASE_URL": settings.database_url,
        "VAR_DIR": str(settings.var_dir),
        "QUEUE_URL": settings.queue_url,
        "MAIL_BACKEND": "smtp",
        "SMTP_HOST": settings.smtp_host,
        "SMTP_PORT": str(settings.smtp_port),
        "SMTP_STARTTLS": "false",
        "OUTBOX_POLL_SECONDS": "0",  # only the queued jobs send
        "SCHEDULE_POLL_SECONDS": "0.5",
        "SCHEDULE_CLEANUP": "* * * * *",  # due at once, and again every minute
        "SCHEDULE_LEAD_EXPIRY": "",
        "SCHEDULE_DIGEST": "",
        "SCHEDULE_RETRAIN": "",
        "SCHEDULE_STATISTICS": "",
        # Short enough for the test, long enough that a worker slowed by a busy machine (CI's two cores)
        # is not taken for a dead one: then its job would rightly run again, and count two attempts.
        "JOB_HEARTBEAT_SECONDS": "5",
        "LOG_LEVEL": "INFO",
    }
    return process_environment(values)


async def prepare(settings: Settings) -> None:
    await migrate(settings)
    redis = Redis.from_url(settings.queue_url)
    await redis.flushdb()
    await redis.aclose()
    # Committed where no queue is open (no job sends them): what the deliveries below share out.
    async with session_scope(settings) as session:
        outbox = Outbox(session)
        for number in range(MESSAGES):
            outbox.add(MailKind.INVITATION, f"person{number}@example.org", f"Message {number}", "Hallo\n")


async def queue_and_wait(settings: Settings) -> list[tuple[str, int]]:
    """Queue the deliveries and wait until each is done: its status and number of attempts."""
    queue = saq_queue(settings)
    runner = SaqRunner(queue, settings)
    try:
        queued = [runner.saq_job(Job.of(deliver_job)) for _ in range(DELIVERIES)]
        for job in queued:
            await queue.enqueue(job)
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            found = [await queue.job(job.key) for job in queued]
            states = [(job.status.value, job.attempts) for job in found if job is not None]
            if all(status in {"complete", "failed"} for status, _ in states) or time.monotonic() > deadline:
                return states
            await asyncio.sleep(0.2)
    finally:
        await queue.disconnect()


async def stored_runs(settings: Settings) -> list[ScheduledRun]:
    async with session_scope(settings) as session:
        return list((await session.scalars(select(ScheduledRun))).all())


async def scheduled_runs(settings: Settings) -> list[ScheduledRun]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        runs = await stored_runs(settings)
        if (runs and all(run.finished_at for run in runs)) or time.monotonic() > deadline:
            return runs
        await asyncio.sleep(0.2)


def test_two_workers_run_each_job_once_and_each_scheduled_run_once(tmp_path: Path, redis_url: str) -> None:
    smtp = SmtpServer()
    smtp.start()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}",
        var_dir=tmp_path,
        # A database of its own on the test Redis: the flush above touches nothing else.
        queue_url=redis_url.rsplit("/", 1)[0] + "/14",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
    )
    asyncio.run(prepare(settings))
    logs = [tmp_path / f"worker{number}.log" for number in (1, 2)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "partnermatch", "worker", "--id", f"worker{number}"],
            env=worker_environment(settings),
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        for number, log in zip((1, 2), logs, strict=True)
    ]
    try:
        states = asyncio.run(queue_and_wait(settings))
        runs = asyncio.run(scheduled_runs(settings))
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        try:
            codes = [worker.wait(timeout=30) for worker in workers]
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()  # a worker that did not stop must not outlive the test
            smtp.stop()
    output = "\n".join(log.read_text() for log in logs)
    # Read again now that no worker runs: a run of the next minute may have started after the wait above.
    runs = asyncio.run(stored_runs(settings))
    assert codes == [0, 0], output[-3000:]
    assert states == [("complete", 1)] * DELIVERIES, output[-3000:]
    # Every message once, whichever worker's delivery claimed it.
    ids = [message["Message-ID"] for message in smtp.inbox.received]
    assert len(ids) == MESSAGES == len(set(ids))
    # Each run of the every-minute cleanup started once and ran once, in one of the two workers.
    assert any(run.finished_at for run in runs)
    assert all(run.name == "accounts.clean_up" and run.error is None for run in runs)
    started = re.findall(r"scheduled job accounts\.clean_up of (\S+) starts", output)
    processed = re.findall(r"job schedule\.run \(schedule:accounts\.clean_up\) runs", output)
    print(f"{len(runs)} scheduled run(s); started {len(started)}, processed {len(processed)}")
    assert sorted(started) == sorted(run.slot.isoformat() for run in runs)
    assert len(processed) == len(runs)
    assert all(f"worker worker{number}:" in output for number in (1, 2))
