"""The transactional outbox: every message the service sends is first a row, written in the
transaction of the change that causes it, and handed to the mail server by :func:`deliver` after
the commit.

So a rolled-back change sends nothing, and a crash after the commit only delays the message: whoever
runs :func:`deliver` next (the job after the request, each server worker's poll every
``PARTNERMATCH_OUTBOX_POLL_SECONDS``, or ``partnermatch mail deliver``) sends it. A temporary failure
(a 4xx answer, the server unreachable) is retried after ``PARTNERMATCH_MAIL_RETRY_SECONDS``, doubled
at each attempt, until ``PARTNERMATCH_MAIL_MAX_ATTEMPTS``; then the message is kept as failed with the
error. A 5xx answer to the recipient marks the address undeliverable: that message and every later
one to it fail without being sent.

Delivery is at least once, with at most one duplicate. A sender claims a message before handing it
over and marks it sent after; if it dies between the two, the mark is lost although the message may
have left. After ``PARTNERMATCH_MAIL_LEASE_SECONDS`` such a claim counts as interrupted and the
message is sent once more (the possible duplicate, recognisable by its unchanged Message-ID); a second
interruption ends it as failed instead of risking a third copy.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session

from partnermatch import jobs
from partnermatch.db import reads_only
from partnermatch.enums import MailKind
from partnermatch.jobs import Job, JobContext
from partnermatch.mail import DeliveryFailed, Mail, Mailer, mailer_for
from partnermatch.outbox.models import OutboxMessage
from partnermatch.outbox.repository import Claimed, OutboxRepository
from partnermatch.settings import Settings

logger = logging.getLogger(__name__)

# A claim interrupted once is sent again; interrupted again, it is given up (see above).
RETRIED_INTERRUPTIONS = 1
LONGEST_RETRY_WAIT = timedelta(hours=6)
BATCH = 50


class Outbox:
    """Where domains put the messages their changes cause, in their own session and transaction."""

    def __init__(self, session: AsyncSession | async_scoped_session[AsyncSession]) -> None:
        self.session = session
        self.repository = OutboxRepository(session)

    def add(
        self,
        kind: MailKind,
        to: str,
        subject: str,
        text: str,
        *,
        html: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        user_id: UUID | None = None,
    ) -> OutboxMessage:
        now = datetime.now(UTC)
        message = OutboxMessage(
            created_at=now,
            kind=kind.value,
            to_address=to,
            user_id=user_id,
            subject=subject,
            body_text=text,
            body_html=html,
            headers=[list(header) for header in headers],
            next_attempt_at=now,
        )
        self.repository.add(message)
        # Sent after the commit (and after the response, in a request); a rollback drops both.
        jobs.after_commit(self.session, DELIVER)
        return message


@dataclass
class Delivery:
    sent: int = 0
    retried: int = 0
    failed: int = 0

    def add(self, other: "Delivery") -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed


def message_id(settings: Settings, outbox_id: UUID) -> str:
    """The same for every send of one outbox message."""
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "partnermatch.invalid"
    return f"<{outbox_id}@{domain}>"


def retry_wait(settings: Settings, attempts: int) -> timedelta:
    longest = LONGEST_RETRY_WAIT.total_seconds()
    return timedelta(seconds=jobs.backoff(settings.mail_retry_seconds, attempts, longest))


async def deliver(context: JobContext, *, now: datetime | None = None) -> Delivery:
    """Send every message that is due (at ``now``, by default the current time), in batches."""
    settings = context.settings
    mailer = mailer_for(settings)
    done = Delivery()
    lease = timedelta(seconds=settings.mail_lease_seconds)
    try:
        return await _deliver_due(context, mailer, lease, now, done)
    finally:
        await mailer.close()


async def _deliver_due(
    context: JobContext, mailer: Mailer, lease: timedelta, now: datetime | None, done: Delivery
) -> Delivery:
    while True:
        moment = now or datetime.now(UTC)
        # Looked for in a read first: on SQLite a claim takes the one write lock, and every worker's
        # poll finds nothing due most of the time.
        with reads_only():
            async with context.sessions() as session:
                if not await OutboxRepository(session).any_due(moment, moment - lease):
                    return done
        async with context.sessions.begin() as session:
            claimed = await OutboxRepository(session).claim_due(moment, moment - lease, BATCH)
        if not claimed:
            return done
        # One session for the batch, one transaction per message: each mark is committed before the
        # next message is handed over (the bound of one duplicate per interruption). The next message
        # goes up to the end of its data meanwhile (Mailer.send's ``ready``).
        async with context.sessions() as session:
            mark: asyncio.Task[None] | None = None
            try:
                for message in claimed:
                    mark = await _deliver_one(context, session, mailer, message, moment, done, mark)
            finally:
                if mark is not None:
                    await mark


async def _deliver_one(
    context: JobContext,
    session: AsyncSession,
    mailer: Mailer,
    message: Claimed,
    now: datetime,
    done: Delivery,
    previous_mark: asyncio.Task[None] | None,
) -> asyncio.Task[None]:
    """Hands ``message`` over once ``previous_mark`` is committed; its own mark, under way."""
    settings = context.settings
    failure: DeliveryFailed | None = None
    if message.interruptions > RETRIED_INTERRUPTIONS:
        failure = DeliveryFailed(
            "interrupted twice while being sent: not sent again, so that it arrives at most twice",
            permanent=True,
        )
    elif message.undeliverable:
        failure = DeliveryFailed(f"{message.to_address} is undeliverable (refused earlier)", permanent=True)
    else:
        mail = Mail(
            to=message.to_address,
            subject=message.subject,
            body=message.body_text,
            html=message.body_html,
            headers=tuple((str(name), str(value)) for name, value in message.headers),
            message_id=message_id(settings, message.id),
        )
        try:
            await mailer.send(mail, ready=previous_mark)
        except DeliveryFailed as refused:
            failure = refused
        except Exception as error:
            if _failed(previous_mark):
                raise  # the database, not the mail: this message was not handed over
            # A backend's own failure (a full disk, ...) is temporary too.
            logger.exception("mail backend failed on outbox message %s", message.id)
            failure = DeliveryFailed(f"{type(error).__name__}: {error}"[:1000])
    if previous_mark is not None:
        # Its error, if it failed (the database): this message was then not handed over.
        await previous_mark
    return asyncio.create_task(_mark(session, settings, message, now, failure, done))


def _failed(task: asyncio.Task[None] | None) -> bool:
    return task is not None and task.done() and not task.cancelled() and task.exception() is not None


async def _mark(
    session: AsyncSession,
    settings: Settings,
    message: Claimed,
    now: datetime,
    failure: DeliveryFailed | None,
    done: Delivery,
) -> None:
    async with session.begin():
        outbox = OutboxRepository(session)
        if failure is None:
            await outbox.mark_sent(message.id, datetime.now(UTC))
            done.sent += 1
            return
        if failure.bounced:
            await outbox.mark_undeliverable(message.to_address, now, failure.reason)
        if failure.permanent or message.attempts >= settings.mail_max_attempts:
            await outbox.mark_failed(message.id, failure.reason)
            logger.error("outbox message %s to %s failed: %s", message.id, message.to_address, failure.reason)
            done.failed += 1
        else:
            await outbox.mark_retry(message.id, now + retry_wait(settings, message.attempts), failure.reason)
            done.retried += 1


@jobs.job("mail.deliver")
async def deliver_job(context: JobContext) -> Delivery:
    """Job: what is due now, after the commit that added a message."""
    return await deliver(context)


DELIVER = Job.of(deliver_job)


async def poll(context: JobContext, interval: float, stop: asyncio.Event | None = None) -> Delivery:
    """Each server worker's loop: what is due (retries, and messages whose job was lost in a crash).
    With ``stop``, until it is set, and what it delivered: the delivery under way ends first (cancelled
    between handing a message over and marking it sent, it would leave a duplicate for the next one)."""
    stop = stop or asyncio.Event()
    total = Delivery()
    while not stop.is_set():
        try:
            total.add(await deliver(context))
        except Exception:
            logger.exception("sending the mail outbox failed; trying again in %.0f s", interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
    return total
