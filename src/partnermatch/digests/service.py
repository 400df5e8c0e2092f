"""The digest run: every due member of every approved company gets one message per period.

A member is due when their address is verified, they consented, their frequency is not ``never`` and
no digest of theirs is recorded for the period that the run's day falls in (:func:`period_of`: the
Monday of the week; for a fortnightly digest the Monday of the fortnight, counted from a fixed Monday;
the 1st of the month for a monthly one). A company's content is chosen once per run
(:func:`partnermatch.digests.content.digest_contents`) and worded in each member's language; a company
with no new lead gets no mail.

What one company's digests change is written in one transaction: the outbox messages, the
``sent_digests`` rows and the impressions (source ``digest``, with positions) that the ranker learns
from. So a run killed at any point has either recorded a company or not, and the next run picks up
exactly the companies that are left: nothing is lost and nothing is sent twice at this level (the
outbox's own bound, at most one duplicate per interrupted send, still applies to handing the messages
to the mail server). A run of a period that is done finds nothing due.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch import jobs
from partnermatch.accounts.repository import DigestReader, UserRepository
from partnermatch.clock import local_date
from partnermatch.db import reads_only
from partnermatch.digests.content import DigestContent, digest_content, digest_contents
from partnermatch.digests.models import SentDigest
from partnermatch.digests.render import RenderedDigest, render_digest
from partnermatch.digests.repository import DigestRunRepository
from partnermatch.enums import DigestFrequency, InteractionKind, InteractionSource, Language, MailKind
from partnermatch.interactions.service import InteractionService
from partnermatch.jobs import JobContext
from partnermatch.outbox.service import Outbox
from partnermatch.settings import Settings

logger = logging.getLogger(__name__)

# Companies read, chosen and rendered together, then written in one transaction each.
BATCH = 50
# Fortnights are counted from this Monday, so that every run agrees which weeks start one.
FIRST_FORTNIGHT = date(2024, 1, 1)
DEFAULT_LANGUAGE = Language.DE.value


def period_of(frequency: DigestFrequency, day: date) -> date | None:
    """The first day of the digest period that ``day`` (a Berlin day) falls in; None: never."""
    monday = day - timedelta(days=day.weekday())
    if frequency is DigestFrequency.WEEKLY:
        return monday
    if frequency is DigestFrequency.FORTNIGHTLY:
        return monday - timedelta(weeks=((monday - FIRST_FORTNIGHT).days // 7) % 2)
    if frequency is DigestFrequency.MONTHLY:
        return day.replace(day=1)
    return None


@dataclass
class DigestSummary:
    companies: int = 0
    """Approved companies considered."""
    messages: int = 0
    """Digests queued in the outbox (with ``dry_run``: that would have been)."""
    nothing_new: int = 0
    """Due members whose company had no new lead."""
    no_consent: int = 0
    unverified: int = 0
    not_wanted: int = 0
    """Members whose frequency is never."""
    already_sent: int = 0
    """Members whose digest of this period was sent before (a rerun, or a second run at once)."""
    impressions: int = 0
    by_language: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        languages = ", ".join(f"{lang} {n}" for lang, n in sorted(self.by_language.items())) or "none"
        return (
            f"companies considered {self.companies}, messages queued {self.messages} ({languages}); "
            f"skipped: nothing new {self.nothing_new}, no consent {self.no_consent}, unverified "
            f"{self.unverified}, frequency never {self.not_wanted}, already sent this period "
            f"{self.already_sent}"
        )


@dataclass(frozen=True)
class Due:
    reader: DigestReader
    period: date


@dataclass(frozen=True)
class Prepared:
    content: DigestContent
    messages: tuple[tuple[Due, RenderedDigest], ...]


def _due(
    readers: Sequence[DigestReader], sent: set[tuple[UUID, date]], today: date, summary: DigestSummary
) -> list[Due]:
    due = []
    for reader in readers:
        frequency = DigestFrequency(reader.frequency)
        period = period_of(frequency, today)
        if period is None:
            summary.not_wanted += 1
        elif not reader.verified:
            summary.unverified += 1
        elif not reader.consented:
            summary.no_consent += 1
        elif (reader.user_id, period) in sent:
            summary.already_sent += 1
        else:
            due.append(Due(reader, period))
    return due


def language_of(reader: DigestReader) -> str:
    return reader.language or DEFAULT_LANGUAGE


async def prepare(
    session: AsyncSession,
    company_ids: Sequence[UUID],
    now: datetime,
    settings: Settings,
    summary: DigestSummary,
) -> list[Prepared]:
    """Who of these companies is due, and their rendered messages; reads only."""
    today = local_date(now)
    readers = await UserRepository(session=session).digest_readers(company_ids)
    periods = {p for f in DigestFrequency if (p := period_of(f, today)) is not None}
    runs = DigestRunRepository(session)
    sent = await runs.sent([r.user_id for r in readers], periods) if readers else set()
    by_company: dict[UUID, list[Due]] = {}
    for due in _due(readers, sent, today, summary):
        by_company.setdefault(due.reader.company_id, []).append(due)
    contents = await digest_contents(session, list(by_company), now=now, settings=settings)
    prepared = []
    for company_id, members in by_company.items():
        content = contents.get(company_id)
        if content is None or not content.leads:
            summary.nothing_new += len(members)
            continue
        rendered = tuple(
            (
                due,
                render_digest(
                    content, user_id=due.reader.user_id, language=language_of(due.reader), settings=settings
                ),
            )
            for due in members
        )
        prepared.append(Prepared(content, rendered))
    return prepared


async def record(session: AsyncSession, batch: Sequence[Prepared], now: datetime) -> int:
    """Queue these companies' digests, note them as sent and log their leads as impressions; how many
    leads were logged. One flush for the messages, one read and one insert for the impressions."""
    outbox = Outbox(session)
    queued = [
        [
            outbox.add(
                MailKind.DIGEST,
                due.reader.email,
                message.subject,
                message.text,
                html=message.html,
                headers=message.headers,
                user_id=due.reader.user_id,
            )
            for due, message in prepared.messages
        ]
        for prepared in batch
    ]
    await session.flush()  # the messages' ids, for the digests' rows
    for prepared, rows in zip(batch, queued, strict=True):
        content = prepared.content
        session.add_all(
            SentDigest(
                user_id=due.reader.user_id,
                company_id=content.company_id,
                period=due.period,
                sent_at=now,
                leads=len(content.leads),
                missions=len(content.missions),
                outbox_message_id=row.id,
            )
            for (due, _message), row in zip(prepared.messages, rows, strict=True)
        )
    seen = {p.content.company_id: [(lead.lead_id, lead.position) for lead in p.content.leads] for p in batch}
    return await InteractionService(session=session).record_seen_by(
        seen, InteractionKind.IMPRESSION, now, InteractionSource.DIGEST
    )


async def send(
    context: JobContext,
    now: datetime,
    *,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> DigestSummary:
    """One digest run at ``now`` (its Berlin day decides the periods); ``progress`` is told how many
    companies each batch held."""
    summary = DigestSummary()
    after: UUID | None = None
    while True:
        with reads_only():
            async with context.sessions() as session:
                company_ids = await DigestRunRepository(session).approved_after(after, BATCH)
                prepared = await prepare(session, company_ids, now, context.settings, summary)
        if not company_ids:
            return summary
        after = company_ids[-1]
        summary.companies += len(company_ids)
        recorded = prepared if dry_run else await _record_batch(context, prepared, now, summary)
        for one in recorded:
            summary.messages += len(one.messages)
            for due, _message in one.messages:
                language = language_of(due.reader)
                summary.by_language[language] = summary.by_language.get(language, 0) + 1
        if progress is not None:
            progress(len(company_ids))


async def _record_batch(
    context: JobContext, prepared: Sequence[Prepared], now: datetime, summary: DigestSummary
) -> list[Prepared]:
    """Record a batch's companies in one transaction (one commit, one fsync on SQLite, for all of them);
    if another run recorded one of them meanwhile, company by company. Returns those recorded here."""
    if not prepared:
        return []  # no write transaction (on SQLite, no wait for the write lock) for a batch with none due
    try:
        async with context.sessions.begin() as session:
            impressions = await record(session, prepared, now)
    except IntegrityError as error:
        if "sent_digests" not in str(error):
            raise
        if len(prepared) == 1:
            # Another run recorded this company's digests meanwhile (the unique member and period).
            summary.already_sent += len(prepared[0].messages)
            return []
        return [done for one in prepared for done in await _record_batch(context, [one], now, summary)]
    summary.impressions += impressions
    return list(prepared)


@jobs.job("digests.send", exclusive=True, timeout_seconds=3 * 3600)
async def send_digests(context: JobContext, *, now: datetime) -> DigestSummary:
    """Scheduled job (``PARTNERMATCH_SCHEDULE_DIGEST``): the digest run of the scheduled time."""
    summary = await send(context, now)
    logger.info("digest run of %s: %s", now.astimezone(UTC).isoformat(), summary.describe())
    return summary


async def preview(
    session: AsyncSession, company_id: UUID, now: datetime, settings: Settings, language: str | None = None
) -> RenderedDigest | None:
    """The digest the company's first member would get at ``now`` (or in ``language``), whether or not
    anyone is due; None: no new lead (no mail would go)."""
    content = await digest_content(session, company_id, now=now, settings=settings)
    if content is None or not content.leads:
        return None
    readers = await UserRepository(session=session).digest_readers([company_id])
    user_id = readers[0].user_id if readers else UUID(int=0)
    chosen = language or (language_of(readers[0]) if readers else DEFAULT_LANGUAGE)
    return render_digest(content, user_id=user_id, language=chosen, settings=settings)
