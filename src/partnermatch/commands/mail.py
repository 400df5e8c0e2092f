"""`partnermatch mail`: the outbox from the command line — what waits, what failed, and sending it now."""

import asyncio
import ctypes
import ctypes.util
import os
import signal
import sys

import click
from rich.markup import escape
from sqlalchemy.ext.asyncio import async_sessionmaker

from partnermatch.cli import console, run
from partnermatch.db import create_engine, ensure_migrated, session_scope
from partnermatch.enums import MailStatus
from partnermatch.jobs import JobContext
from partnermatch.outbox.repository import OutboxRepository
from partnermatch.outbox.service import Delivery, deliver, poll
from partnermatch.settings import Settings, get_settings

# prctl(2)'s option that asks for a signal when the parent process dies.
PR_SET_PDEATHSIG = 1
# How long the companion of a digest run waits when the outbox is empty.
FOLLOW_PAUSE_SECONDS = 0.5


@click.group()
def mail() -> None:
    """The mail outbox: status, and sending what is due."""


async def _deliver(settings: Settings, follow: bool) -> Delivery:
    # Pooled: the delivery commits once per message, and a new connection for each (SQLite's pragmas, a
    # thread of the driver's) cost several times what the mail server does.
    engine = create_engine(settings)
    try:
        await ensure_migrated(settings, engine)
        context = JobContext(async_sessionmaker(engine, expire_on_commit=False), settings)
        if not follow:
            return await deliver(context)
        stop = asyncio.Event()
        # A thread, not the event loop, waits for the end of the input: it works on pipes and terminals.
        watcher = asyncio.create_task(asyncio.to_thread(sys.stdin.buffer.read))
        watcher.add_done_callback(lambda _: stop.set())
        done = await poll(context, FOLLOW_PAUSE_SECONDS, stop)
        done.add(await deliver(context))  # what was queued last
        return done
    finally:
        await engine.dispose()


def _die_with(parent: int) -> None:
    """On Linux: SIGKILL when ``parent`` (the process that started this one) dies, as if this one were
    part of it; if it died already (while Python started here), at once."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


@mail.command("deliver")
@click.option(
    "--follow",
    is_flag=True,
    help="Keep sending as messages come until standard input ends (the digest run's companion process)",
)
@click.option(
    "--parent",
    type=int,
    default=None,
    help="With --follow: the process this one dies with [default: the one that started it]",
)
def deliver_command(follow: bool, parent: int | None) -> None:
    """Send every message that is due now (the server does this itself after each change and every
    PARTNERMATCH_OUTBOX_POLL_SECONDS)."""
    if follow:
        _die_with(parent or os.getppid())
    done = run(_deliver(get_settings(), follow))
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
