"""Redis gone: the real server (granian) and a `partnermatch worker` on a Redis the test owns
(``redis-server --save '' --appendonly no`` on a free port, never the shared one), which holds the job
queue (``PARTNERMATCH_QUEUE_URL``) and the login limits (``PARTNERMATCH_REDIS_URL``). It is killed with
SIGKILL — with nothing on disk, a restart comes back empty, so the jobs queued in it are gone — and
started again on the same port.

Checked: while it is down, logins (and the other login-limited routes) fail closed, quickly, with a 503
problem — the limits cannot be counted, and an unlimited login is what a password guesser wants —
while every other route works and changes are saved, their jobs not queued (logged); nothing has to be
restarted when Redis is back; and every mail is delivered exactly once: those whose jobs were queued
in Redis when it died and those written during the outage, because the outbox rows in the database are
what counts, and each worker polls them (``PARTNERMATCH_OUTBOX_POLL_SECONDS``).
``PARTNERMATCH_TEST_LONG=1``: a longer outage and more requests; ``pytest -s`` prints the figures."""

import asyncio
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from partnermatch.accounts.auth import REDIS_TIMEOUT_SECONDS
from partnermatch.background.service import saq_queue
from partnermatch.db import session_scope
from partnermatch.outbox.models import OutboxMessage
from partnermatch.settings import Settings
from tests.conftest import create_database, drop_database
from tests.faults.support import (
    FAULT_BACKENDS,
    LONG,
    PASSWORD,
    Answer,
    Fixture,
    Recorder,
    RedisServer,
    Worker,
    environment,
    machine,
    mode,
    poll_until,
    prepare,
    redis_server,
    serving,
    start_workers,
    summary,
)
from tests.outbox.test_outbox import SmtpServer

OUTAGE = 20.0 if LONG else 3.0
QUEUED_BEFORE = 10 if LONG else 3
ANSWER_BOUND = 3.0
DELIVERY_SECONDS = 60.0


@pytest.mark.parametrize("backend", FAULT_BACKENDS)
def test_redis_gone_login_fails_closed_jobs_catch_up_and_no_mail_is_lost(
    backend: str, tmp_path: Path
) -> None:
    url = create_database(backend, tmp_path)
    smtp = SmtpServer()
    smtp.start()
    try:
        with redis_server(tmp_path) as redis:
            settings = Settings(database_url=url, var_dir=tmp_path, queue_url=redis.url(0))
            fixture = asyncio.run(prepare(settings))
            mail = {
                "MAIL_BACKEND": "smtp",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp.port),
                "SMTP_STARTTLS": "false",
                "SMTP_TIMEOUT_SECONDS": "5",
            }
            queues = {
                "QUEUE_URL": redis.url(0),
                "REDIS_URL": redis.url(1),
                "INVITATIONS_PER_COMPANY_PER_DAY": "1000",
            }
            server_env = environment(settings, **mail, **queues)
            worker_env = environment(
                settings, **mail, **queues, OUTBOX_POLL_SECONDS="1", JOB_HEARTBEAT_SECONDS="1"
            )
            with serving(server_env, tmp_path / "server.log") as server:
                [worker] = start_workers(worker_env, tmp_path, "worker1")
                try:
                    figures = scenario(server.base, fixture, settings, redis, worker, smtp)
                    server_alive = server.process.poll() is None
                    server_log = server.output()
                finally:
                    worker_code = worker.stop()
                worker_log = worker.output()
        sent = asyncio.run(outbox_rows(settings))
    finally:
        smtp.stop()
        drop_database(url)

    received = Counter(str(message["To"]) for message in smtp.inbox.received)
    print(f"\nRedis outage on {backend} ({mode()} mode; {machine()})")
    for line in figures["lines"]:
        print(f"  {line}")
    print(
        f"  mail: {len(sent)} outbox rows, {sum(received.values())} messages received, {len(received)} addresses"
    )

    assert server_alive, server_log
    assert worker_code == 0, worker_log[-3000:]
    # Every invitation's mail, whenever it was asked for, delivered and marked sent, exactly once.
    assert sorted(received) == sorted(sent), (received, sent)
    assert set(received.values()) == {1}, received
    assert set(sent.values()) == {"sent"}, sent
    # The lost jobs are named in the log, once per request, and not as an error escaping the app.
    assert "jobs of POST /api/v1/companies/" in server_log
    assert "could not be queued: mail.deliver" in server_log
    assert "Exception caught after response started" not in server_log, server_log


async def outbox_rows(settings: Settings) -> dict[str, str]:
    async with session_scope(settings) as session:
        rows = await session.execute(select(OutboxMessage.to_address, OutboxMessage.status))
        return {to: status for to, status in rows.all()}


def scenario(
    base: str, fixture: Fixture, settings: Settings, redis: RedisServer, worker: Worker, smtp: SmtpServer
) -> dict[str, list[str]]:
    lines: list[str] = []
    recorder = Recorder()
    member = httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {fixture.member_token}"}, timeout=20
    )
    anonymous = httpx.Client(base_url=base, timeout=20)
    invited: list[str] = []

    def invite() -> httpx.Response:
        address = f"invitee-{uuid.uuid4().hex[:10]}@example.org"
        invited.append(address)
        start = time.monotonic()
        response = member.post(f"/api/v1/companies/{fixture.company_id}/invitations", json={"email": address})
        record(recorder, "invite", start, response)
        return response

    def login() -> httpx.Response | None:
        start = time.monotonic()
        try:
            response = anonymous.post(
                "/api/v1/auth/login", json={"email": fixture.member_email, "password": PASSWORD}
            )
        except httpx.TransportError:
            record(recorder, "login", start, None)
            return None
        record(recorder, "login", start, response)
        return response

    def delivered(addresses: list[str]) -> bool:
        got = {str(message["To"]) for message in smtp.inbox.received}
        return set(addresses) <= got

    try:
        # Before: a login counts in Redis, an invitation's mail goes through the queue to the worker.
        first = login()
        assert first is not None
        assert first.status_code == 200, first.text
        assert invite().status_code == 201
        poll_until(lambda: delivered(invited), DELIVERY_SECONDS, "the first invitation's mail")

        # Jobs in Redis when it dies: the worker is paused (SIGSTOP), so they stay queued.
        worker.process.send_signal(signal.SIGSTOP)
        before = len(invited)
        for _ in range(QUEUED_BEFORE):
            assert invite().status_code == 201
        # Queued after each response; a paused worker's pending dequeue may still have moved some to
        # "active" (Redis does that itself): either way they are in Redis, not done.
        queued = poll_until(
            lambda: (n := asyncio.run(queue_count(settings))) >= QUEUED_BEFORE and n,
            10,
            f"{QUEUED_BEFORE} jobs in Redis",
        )
        assert not delivered(invited[before:])
        lines.append(f"in Redis, not done, when it died: {queued} jobs ({QUEUED_BEFORE} invitation mails)")
        redis.kill()
        worker.process.send_signal(signal.SIGCONT)

        down = time.monotonic() - recorder.origin
        during_invites = 0
        while time.monotonic() - recorder.origin - down < OUTAGE:
            login()
            if invite().status_code == 201:
                during_invites += 1
            start = time.monotonic()
            record(recorder, "read", start, member.get("/api/v1/cities"))
        up = time.monotonic() - recorder.origin
        redis.start()  # the same port, empty

        # Back: the same server process counts logins in Redis again, by itself.
        def logged_in() -> bool:
            response = login()
            return response is not None and response.status_code == 200

        poll_until(logged_in, 15, "a login answered 200 after Redis came back")
        recovered = time.monotonic() - recorder.origin
        after_jobs = asyncio.run(queue_count(settings))
        lines.append(f"jobs in Redis after its restart: {after_jobs} (what it held died with it)")
        assert invite().status_code == 201  # queued again, run by the worker
        poll_until(lambda: delivered(invited), DELIVERY_SECONDS, "every invitation's mail, after the outage")
        caught_up = time.monotonic() - recorder.origin
    finally:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGCONT)
        member.close()
        anonymous.close()

    during = recorder.between(down, up)
    logins, reads, invites = ([a for a in during if a.kind == kind] for kind in ("login", "read", "invite"))
    lines.append(f"down {up - down:.1f} s; during: logins {summary(logins)}")
    lines.append(f"during: invitations {summary(invites)}; reads {summary(reads)}")
    lines.append(
        f"after: login 200 again {recovered - up:.2f} s after Redis restarted; every mail delivered "
        f"{caught_up - up:.1f} s after ({len(invited) - before - 1} mails of jobs lost or never queued)"
    )
    # Logins fail closed, at once, with a 503 problem; everything else works, and changes are saved.
    assert logins
    assert {a.status for a in logins} == {503}, summary(logins)
    assert {a.content_type for a in logins} == {"application/problem+json"}
    assert max(a.seconds for a in logins) < ANSWER_BOUND, summary(logins)
    assert {a.status for a in reads} == {200}, summary(reads)
    assert during_invites >= 1
    assert {a.status for a in invites} == {201}, summary(invites)
    assert max(a.seconds for a in invites + reads) < ANSWER_BOUND
    return {"lines": lines}


def record(recorder: Recorder, kind: str, start: float, response: httpx.Response | None) -> None:
    recorder.answers.append(
        Answer(
            kind,
            start - recorder.origin,
            time.monotonic() - start,
            response.status_code if response is not None else None,
            response.headers.get("content-type", "") if response is not None else "",
        )
    )


async def queue_count(settings: Settings) -> int:
    queue = saq_queue(settings)
    try:
        return int(await queue.count("incomplete"))
    finally:
        await queue.disconnect()


FROZEN = 8.0 if LONG else 3.0


def test_a_frozen_redis_fails_logins_closed_within_the_timeout_and_they_work_again_after(
    tmp_path: Path,
) -> None:
    """Redis alive but not answering (SIGSTOP: the process holds its port and reads nothing, as a hung
    host or dropped packets would): a login waits at most the login limits' timeout, then fails closed
    with a 503 problem, as when Redis is down; after SIGCONT logins work again without a restart."""
    backend = FAULT_BACKENDS[0]
    url = create_database(backend, tmp_path)
    try:
        with redis_server(tmp_path) as redis:
            settings = Settings(database_url=url, var_dir=tmp_path)
            fixture = asyncio.run(prepare(settings))
            env = environment(settings, REDIS_URL=redis.url(1))
            with serving(env, tmp_path / "server.log") as server:
                credentials = {"email": fixture.member_email, "password": PASSWORD}
                with httpx.Client(base_url=server.base, timeout=30) as client:
                    assert client.post("/api/v1/auth/login", json=credentials).status_code == 200
                    assert redis.process is not None
                    redis.process.send_signal(signal.SIGSTOP)
                    answers: list[tuple[int, str, float]] = []
                    try:
                        frozen_until = time.monotonic() + FROZEN
                        while time.monotonic() < frozen_until:
                            started = time.monotonic()
                            response = client.post("/api/v1/auth/login", json=credentials)
                            answers.append(
                                (
                                    response.status_code,
                                    response.headers.get("content-type", ""),
                                    time.monotonic() - started,
                                )
                            )
                    finally:
                        redis.process.send_signal(signal.SIGCONT)
                    poll_until(
                        lambda: client.post("/api/v1/auth/login", json=credentials).status_code == 200,
                        15,
                        "a login answered 200 after Redis answered again",
                    )
    finally:
        drop_database(url)

    slowest = max(seconds for _, _, seconds in answers)
    print(
        f"\nfrozen Redis on {backend} ({mode()} mode; {machine()}): {len(answers)} logins in "
        f"{FROZEN:.0f} s, answers {sorted({status for status, _, _ in answers})}, slowest {slowest:.2f} s"
    )
    assert answers
    assert {status for status, _, _ in answers} == {503}, answers
    assert {content_type for _, content_type, _ in answers} == {"application/problem+json"}
    # The login limits' timeout (REDIS_TIMEOUT_SECONDS) for each command a login makes, and some slack.
    assert slowest < 3 * REDIS_TIMEOUT_SECONDS, answers
