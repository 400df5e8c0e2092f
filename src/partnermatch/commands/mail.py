"""`partnermatch mail`: the outbox from the command line — what waits, what failed, and sending it now."""

import click
from rich.markup import escape
from sqlalchemy.ext.asyncio import async_sessionmaker

from partnermatch.cli import console, run
from partnermatch.db import create_engine, ensure_migrated, session_scope
from partnermatch.enums import MailStatus
from partnermatch.jobs import JobContext
from partnermatch.outbox.repository import OutboxRepository
from partnermatch.outbox.service import Delivery, deliver
from partnermatch.settings import Settings, get_settings


@click.group()
def mail() -> None:
    """The mail outbox: status, and sending what is due."""


async def _deliver(settings: Settings) -> Delivery:
    engine = create_engine(settings, pooled=False)
    try:
        await ensure_migrated(settings, engine)
        return await deliver(JobContext(async_sessionmaker(engine, expire_on_commit=False), settings))
    finally:
        await engine.dispose()


@mail.command("deliver")
def deliver_command() -> None:
    """Send every message that is due now (the server does this itself after each change and every
    PARTNERMATCH_OUTBOX_POLL_SECONDS)."""
    done = run(_deliver(get_settings()))
    console.print(f"sent {done.sent}, to be retried {done.retried}, failed {done.failed}", highlight=False)


async def _status(settings: Settings, failed: int) -> None:
    async with session_scope(settings) as session:
        outbox = OutboxRepository(session)
        counts = await outbox.counts()
        console.print(
            ", ".join(f"{status.value} {counts.get(status.value, 0)}" for status in MailStatus),
            highlight=False,
        )
        failed_messages, _total = await outbox.messages(MailStatus.FAILED.value, limit=failed)
        for message in failed_messages:
            console.print(
                f"failed {message.id}  {message.created_at:%Y-%m-%d %H:%M}  {message.kind}  "
                f"{escape(message.to_address)}  after {message.attempts} attempt(s): "
                f"{escape(message.last_error or '')}",
                highlight=False,
            )
        pending, _total = await outbox.messages(MailStatus.PENDING.value, limit=failed)
        for message in pending:
            if message.attempts:
                console.print(
                    f"retrying {message.id}  {message.kind}  {escape(message.to_address)}  next at "
                    f"{message.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC after {message.attempts} attempt(s): "
                    f"{escape(message.last_error or '')}",
                    highlight=False,
                )


@mail.command("status")
@click.option("--show", default=20, show_default=True, help="How many failed and retried messages to list")
def status_command(show: int) -> None:
    """Messages by status, and the newest failed and retried ones with their errors."""
    run(_status(get_settings(), show))
