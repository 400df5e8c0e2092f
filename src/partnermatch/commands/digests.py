"""`partnermatch digests`: preview one company's match digest, or run the digests now."""

import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import click

from partnermatch import jobs
from partnermatch.app import subscribe_to_events
from partnermatch.audit import recorder
from partnermatch.background.service import command_runner
from partnermatch.cli import console, progress_bar, run
from partnermatch.clock import local_zone
from partnermatch.commands.jobs import job_context
from partnermatch.db import reads_only
from partnermatch.digests.render import RenderedDigest
from partnermatch.digests.repository import DigestRunRepository
from partnermatch.digests.service import DigestSummary, preview, send
from partnermatch.enums import Language
from partnermatch.mail import Mail, compose
from partnermatch.outbox.service import DELIVER
from partnermatch.settings import Settings, get_settings

WHEN = click.DateTime(formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"])


@click.group()
def digests() -> None:
    """The weekly match digest by email."""


def _moment(value: datetime | None) -> datetime:
    return datetime.now(UTC) if value is None else value.replace(tzinfo=local_zone())


async def _preview(
    settings: Settings, company_id: UUID, now: datetime, language: str | None
) -> RenderedDigest | None:
    async with job_context(settings) as context:
        with reads_only():
            async with context.sessions() as session:
                return await preview(session, company_id, now, settings, language)


@digests.command("preview")
@click.option("--company", "company_id", type=click.UUID, required=True, help="The company's id")
@click.option("--now", "now", type=WHEN, default=None, help="As of this Berlin time [default: now]")
@click.option("--language", type=click.Choice([lang.value for lang in Language]), default=None)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the message as an .eml file here instead of printing its text part",
)
def preview_command(company_id: UUID, now: datetime | None, language: str | None, out: Path | None) -> None:
    """Show the digest the company's first member would get (nothing is sent or recorded)."""
    rendered = run(_preview(get_settings(), company_id, _moment(now), language))
    if rendered is None:
        console.print("no new recommendations for this company: it would get no digest", highlight=False)
        return
    if out is None:
        click.echo(f"Subject: {rendered.subject}")
        for name, value in rendered.headers:
            click.echo(f"{name}: {value}")
        click.echo()
        click.echo(rendered.text)
        return
    mail = Mail(
        "preview@partnermatch.invalid", rendered.subject, rendered.text, rendered.html, rendered.headers
    )
    out.write_bytes(compose(get_settings().mail_from, mail).as_bytes())
    console.print(f"wrote {out} (text and HTML parts)", highlight=False)


async def _send(settings: Settings, now: datetime, dry_run: bool) -> DigestSummary:
    recorder.install()
    subscribe_to_events()
    async with job_context(settings) as context:
        with reads_only():
            async with context.sessions() as session:
                total = await DigestRunRepository(session).approved_count()
        # Without workers, a second process sends the batches' mail while this one prepares the next: one
        # core each (the workers' outbox poll does the same where there are workers). It ends when this
        # process closes its input, and dies with it (a crash of the run is a crash of both).
        companion = None
        if not dry_run and not settings.queue_url:
            companion = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "partnermatch",
                "mail",
                "deliver",
                "--follow",
                "--parent",
                str(os.getpid()),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
            )
        try:
            with progress_bar() as bar:
                task = bar.add_task("companies", total=total)
                with jobs.collecting() as started:
                    summary = await send(
                        context, now, dry_run=dry_run, progress=lambda n: bar.advance(task, n)
                    )
        finally:
            if companion is not None and companion.stdin is not None:
                companion.stdin.close()
                await companion.wait()
        # The outbox's delivery, also of messages an interrupted earlier run left: sent here, or queued
        # for the workers.
        if not dry_run:
            started.append(DELIVER)
        async with command_runner(context) as runner:
            await runner.enqueue(list({job.key: job for job in started}.values()))
        return summary


@digests.command("send")
@click.option("--now", "now", type=WHEN, default=None, help="Run as of this Berlin time [default: now]")
@click.option("--dry-run", is_flag=True, help="Count and render, queue and record nothing")
def send_command(now: datetime | None, dry_run: bool) -> None:
    """Run the digests now: every due member of every approved company gets this period's digest (a
    second run of the same period sends nothing)."""
    summary = run(_send(get_settings(), _moment(now), dry_run))
    prefix = "dry run: " if dry_run else ""
    console.print(prefix + summary.describe(), highlight=False)
