"""The mail outbox against a real SMTP server (aiosmtpd) on a free loopback port: messages leave only
after their transaction commits, survive an SMTP outage, stop at a hard bounce, and are sent at most
twice when a sender dies mid-send."""

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from partnermatch import jobs
from partnermatch.enums import MailKind, MailStatus
from partnermatch.jobs import JobContext
from partnermatch.outbox.models import OutboxMessage
from partnermatch.outbox.repository import OutboxRepository
from partnermatch.outbox.service import Delivery, Outbox, deliver, message_id
from partnermatch.settings import Settings
from tests.conftest import Account


@dataclass
class Inbox:
    """aiosmtpd's handler: keeps what it accepts, refuses what it is told to (RCPT, with the code)."""

    refuse: dict[str, str] = field(default_factory=dict)
    received: list[EmailMessage] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.received.append(message)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port: int = probe.getsockname()[1]
        return port


class SmtpServer:
    """A real SMTP server that the test stops and starts on the same port (an outage)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mail_settings(settings: Settings, smtp: SmtpServer, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "mail_backend": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_starttls": False,
            "smtp_timeout_seconds": 2.0,
            "mail_retry_seconds": 60.0,
            "mail_max_attempts": 3,
            "mail_lease_seconds": 300.0,
        }
    )


@pytest.fixture
def context(session_maker: async_sessionmaker[AsyncSession], mail_settings: Settings) -> JobContext:
    return JobContext(session_maker, mail_settings)


async def write(context: JobContext, *addresses: str, text: str = "Hallo\n") -> list[OutboxMessage]:
    async with context.sessions.begin() as session:
        outbox = Outbox(session)
        return [outbox.add(MailKind.INVITATION, to, f"Hi {to}", text) for to in addresses]


async def statuses(context: JobContext) -> dict[str, tuple[str, int]]:
    async with context.sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.to_address, OutboxMessage.status, OutboxMessage.attempts)
        )
        return {to: (status, attempts) for to, status, attempts in rows.all()}


async def test_a_message_leaves_only_after_its_transaction_commits(
    context: JobContext, smtp: SmtpServer
) -> None:
    class Undone(Exception):
        pass

    waiting: list[list[jobs.Job]] = []

    async def change_that_fails() -> None:
        async with context.sessions.begin() as session:
            Outbox(session).add(MailKind.PASSWORD_RESET, "anna@example.org", "Reset", "token=abc\n")
            waiting.append(jobs.pending(session))  # the sending job waits for the commit ...
            raise Undone

    with pytest.raises(Undone):
        await change_that_fails()
    assert [len(w) for w in waiting] == [1]
    assert await statuses(context) == {}
    assert await deliver(context) == Delivery()
    assert smtp.inbox.received == []

    [committed] = await write(context, "anna@example.org")
    done = await deliver(context)
    assert (done.sent, done.retried, done.failed) == (1, 0, 0)
    [received] = smtp.inbox.received
    assert received["Message-ID"] == message_id(context.settings, committed.id)
    assert await statuses(context) == {"anna@example.org": ("sent", 1)}
    # The body (it may hold a one-time link) is not kept once sent.
    async with context.sessions() as session:
        row = await session.get(OutboxMessage, committed.id)
        assert row is not None
        assert (row.body_text, row.sent_at is not None) == (None, True)


async def test_an_smtp_outage_delays_mail_and_loses_none(context: JobContext, smtp: SmtpServer) -> None:
    smtp.stop()
    await write(context, "a@example.org", "b@example.org", "c@example.org")
    start = datetime.now(UTC)
    down = await deliver(context, now=start)
    assert (down.sent, down.retried, down.failed) == (0, 3, 0)
    # Not due again before the wait (PARTNERMATCH_MAIL_RETRY_SECONDS, 60 s here).
    assert (await deliver(context, now=start + timedelta(seconds=30))).retried == 0
    smtp.start()
    back = await deliver(context, now=start + timedelta(seconds=61))
    assert (back.sent, back.retried, back.failed) == (3, 0, 0)
    assert (await deliver(context, now=start + timedelta(hours=1))).sent == 0
    assert sorted(m["To"] for m in smtp.inbox.received) == ["a@example.org", "b@example.org", "c@example.org"]
    assert await statuses(context) == dict.fromkeys(
        ("a@example.org", "b@example.org", "c@example.org"), ("sent", 2)
    )


async def test_a_temporary_refusal_is_retried_with_backoff_then_kept_as_failed(
    context: JobContext, smtp: SmtpServer
) -> None:
    smtp.inbox.refuse["busy@example.org"] = "451 4.3.0 try again later"
    await write(context, "busy@example.org")
    start = datetime.now(UTC)
    waits = []
    moment = start
    for _attempt in range(3):  # PARTNERMATCH_MAIL_MAX_ATTEMPTS
        await deliver(context, now=moment)
        async with context.sessions() as session:
            row = (await session.scalars(select(OutboxMessage))).one()
        waits.append((row.next_attempt_at - moment).total_seconds())
        moment = row.next_attempt_at
    async with context.sessions() as session:
        row = (await session.scalars(select(OutboxMessage))).one()
    assert row.status == MailStatus.FAILED.value
    assert row.attempts == 3
    assert "451" in (row.last_error or "")
    assert waits[:2] == [60.0, 120.0]  # doubled each time
    assert smtp.inbox.received == []
    assert await OutboxRepository(session).undeliverable(["busy@example.org"]) == set()


async def test_a_hard_bounce_fails_at_once_and_stops_later_mail_to_the_address(
    context: JobContext, smtp: SmtpServer
) -> None:
    smtp.inbox.refuse["gone@example.org"] = "550 5.1.1 no such mailbox"
    await write(context, "gone@example.org", "anna@example.org")
    done = await deliver(context)
    assert (done.sent, done.retried, done.failed) == (1, 0, 1)
    smtp.inbox.refuse.clear()  # even if the server would take it now: the address is marked
    await write(context, "gone@example.org")
    again = await deliver(context)
    assert (again.sent, again.failed) == (0, 1)
    assert [m["To"] for m in smtp.inbox.received] == ["anna@example.org"]
    async with context.sessions() as session:
        failed = (
            await session.scalars(select(OutboxMessage).where(OutboxMessage.to_address == "gone@example.org"))
        ).all()
        assert sorted((m.status, m.attempts, "550" in (m.last_error or "")) for m in failed) == [
            ("failed", 1, False),  # not sent: "gone@example.org is undeliverable (refused earlier)"
            ("failed", 1, True),
        ]


async def test_a_send_interrupted_before_its_mark_is_retried_once_then_given_up(
    context: JobContext, smtp: SmtpServer
) -> None:
    lease = timedelta(seconds=context.settings.mail_lease_seconds)

    async def die_after_claiming(at: datetime) -> list[str]:
        # What a sender killed right after handing the message over leaves behind: a claim, no mark.
        async with context.sessions.begin() as session:
            return [c.to_address for c in await OutboxRepository(session).claim_due(at, at - lease, 10)]

    [once] = await write(context, "once@example.org")
    start = datetime.now(UTC)
    assert await die_after_claiming(start) == ["once@example.org"]
    # Within the lease nobody takes it over: the first sender may still be at work.
    assert (await deliver(context, now=start + lease / 2)).sent == 0
    # After it, the next sender sends it again: the one duplicate the outbox allows.
    assert (await deliver(context, now=start + lease + timedelta(seconds=1))).sent == 1

    [twice] = await write(context, "twice@example.org")
    start = datetime.now(UTC)
    assert await die_after_claiming(start) == ["twice@example.org"]
    assert await die_after_claiming(start + lease + timedelta(seconds=1)) == ["twice@example.org"]
    given_up = await deliver(context, now=start + 2 * lease + timedelta(seconds=2))
    assert (given_up.sent, given_up.failed) == (0, 1)

    assert [m["To"] for m in smtp.inbox.received] == ["once@example.org"]
    async with context.sessions() as session:
        sent, failed = await session.get(OutboxMessage, once.id), await session.get(OutboxMessage, twice.id)
        assert sent is not None
        assert failed is not None
        assert (sent.status, sent.interruptions) == ("sent", 1)
        assert (failed.status, failed.interruptions) == ("failed", 2)
        assert "interrupted twice" in (failed.last_error or "")


async def test_erasing_an_account_removes_its_messages(
    member_client: httpx.AsyncClient, member: Account, db_session: AsyncSession
) -> None:
    reset = await member_client.post("/api/v1/auth/password-reset", json={"email": member.user.email})
    assert reset.status_code == 202, reset.text
    count = (
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.to_address == member.user.email)
    )
    assert await db_session.scalar(count) == 1
    deleted = await member_client.delete("/api/v1/auth/me", params={"confirm": member.user.email})
    assert deleted.status_code == 204, deleted.text
    assert await db_session.scalar(count) == 0


async def test_staff_see_the_outbox_without_bodies_and_members_do_not(
    client: httpx.AsyncClient, member_client: httpx.AsyncClient, member: Account
) -> None:
    reset = await client.post("/api/v1/auth/password-reset", json={"email": member.user.email})
    assert reset.status_code == 202, reset.text
    listed = await client.get("/api/v1/admin/mail", params={"to": member.user.email})
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert page["total"] == 1
    [message] = page["items"]
    # Sent by the job after that request (the file backend of the tests).
    assert (message["kind"], message["status"], message["attempts"]) == ("password_reset", "sent", 1)
    assert "token=" not in listed.text
    assert (
        await client.get("/api/v1/admin/mail", params={"status": "failed", "to": member.user.email})
    ).json()["total"] == 0
    assert (await client.get("/api/v1/admin/mail", params={"status": "lost"})).status_code == 400
    assert (await member_client.get("/api/v1/admin/mail")).status_code == 403
