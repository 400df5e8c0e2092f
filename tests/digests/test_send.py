"""The digest run end to end: who gets one (verified, consented, at their frequency), in which language,
through the outbox to a real SMTP server (aiosmtpd) with both parts and the one-click unsubscribe
headers; impressions logged with their source; a second run of the period sends nothing; the next
week brings only leads not digested before."""

from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from uuid import UUID

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from partnermatch.accounts.models import User
from partnermatch.clock import local_date
from partnermatch.digests.models import SentDigest
from partnermatch.digests.service import period_of, send
from partnermatch.enums import DigestFrequency, InteractionKind, InteractionSource, MailKind, UserRole
from partnermatch.interactions.models import Interaction
from partnermatch.jobs import JobContext
from partnermatch.outbox.models import OutboxMessage
from partnermatch.outbox.service import deliver
from partnermatch.recommendations.batch import store
from partnermatch.recommendations.models import ModelVersion
from partnermatch.settings import Settings
from tests.conftest import create_account
from tests.outbox.test_outbox import SmtpServer
from tests.recommendations.test_recommendations import busiest_company

LEADS = 3


async def add_member(
    db_session: AsyncSession,
    settings: Settings,
    company_id: UUID,
    *,
    language: str | None = "de",
    verified: bool = True,
    consented: bool = True,
    frequency: DigestFrequency = DigestFrequency.WEEKLY,
) -> User:
    account = await create_account(
        db_session, settings, UserRole.MEMBER, company_id=company_id, verified=verified
    )
    user = account.user
    user.language = language
    user.digest_frequency = frequency.value
    user.digest_consent_at = datetime.now(UTC) if consented else None
    await db_session.flush()
    return user


async def digest_impressions(db_session: AsyncSession, company_id: UUID) -> list[tuple[UUID, int | None]]:
    rows = await db_session.execute(
        select(Interaction.lead_id, Interaction.position)
        .where(
            Interaction.company_id == company_id,
            Interaction.kind == InteractionKind.IMPRESSION.value,
            Interaction.source == InteractionSource.DIGEST.value,
        )
        .order_by(Interaction.at, Interaction.position)
    )
    return list(rows.tuples().all())


@pytest.mark.parametrize(
    ("day", "weekly", "fortnightly", "monthly"),
    [
        ("2026-12-07", "2026-12-07", "2026-11-30", "2026-12-01"),  # a Monday
        ("2026-12-13", "2026-12-07", "2026-11-30", "2026-12-01"),  # the Sunday after
        ("2026-12-14", "2026-12-14", "2026-12-14", "2026-12-01"),  # the next fortnight starts
    ],
)
def test_periods(day: str, weekly: str, fortnightly: str, monthly: str) -> None:
    on = date.fromisoformat(day)
    assert period_of(DigestFrequency.WEEKLY, on) == date.fromisoformat(weekly)
    assert period_of(DigestFrequency.FORTNIGHTLY, on) == date.fromisoformat(fortnightly)
    assert period_of(DigestFrequency.MONTHLY, on) == date.fromisoformat(monthly)
    assert period_of(DigestFrequency.NEVER, on) is None


async def test_a_run_sends_each_due_member_one_digest_and_a_rerun_none(
    db_session: AsyncSession,
    session_maker: async_sessionmaker[AsyncSession],
    mail_settings: Settings,
    smtp: SmtpServer,
    active_model: ModelVersion,
) -> None:
    settings = mail_settings.model_copy(update={"digest_leads": LEADS})
    await store(db_session, active_model, 20)
    company_id = await busiest_company(db_session)
    german = await add_member(db_session, settings, company_id, language="de")
    english = await add_member(db_session, settings, company_id, language="en")
    await add_member(db_session, settings, company_id, verified=False)
    await add_member(db_session, settings, company_id, consented=False)
    await add_member(db_session, settings, company_id, frequency=DigestFrequency.NEVER)
    await db_session.commit()
    context = JobContext(session_maker, settings)
    now = datetime.now(UTC)

    summary = await send(context, now)
    assert (summary.messages, summary.unverified, summary.no_consent, summary.not_wanted) == (2, 1, 1, 1)
    assert summary.by_language == {"de": 1, "en": 1}
    assert summary.companies >= 1
    first_week = await digest_impressions(db_session, company_id)
    assert [position for _lead, position in first_week] == list(range(1, LEADS + 1))
    sent = (await db_session.scalars(select(SentDigest).where(SentDigest.company_id == company_id))).all()
    assert {row.user_id for row in sent} == {german.id, english.id}
    assert {row.period for row in sent} == {period_of(DigestFrequency.WEEKLY, local_date(now))}

    again = await send(context, now + timedelta(minutes=5))
    assert (again.messages, again.already_sent) == (0, 2)
    digests = (
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == MailKind.DIGEST.value)
    )
    assert await db_session.scalar(digests) == 2

    assert (await deliver(context)).sent == 2
    by_address = {message["To"]: message for message in smtp.inbox.received}
    for user in (german, english):
        message = by_address[user.email]
        assert isinstance(message, EmailMessage)
        assert message.get_content_type() == "multipart/alternative"
        assert {part.get_content_type() for part in message.iter_parts()} == {"text/plain", "text/html"}
        assert message["List-Unsubscribe"].startswith(f"<{settings.public_url}/digest/unsubscribe/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert by_address[german.email]["Subject"] != by_address[english.email]["Subject"]

    # A week later: only leads that were not in the first digest.
    next_week = await send(context, now + timedelta(weeks=1))
    assert next_week.messages == 2
    second_week = (await digest_impressions(db_session, company_id))[LEADS:]
    assert len(second_week) == LEADS
    assert not {lead for lead, _ in second_week} & {lead for lead, _ in first_week}


async def test_a_dry_run_counts_and_records_nothing(
    db_session: AsyncSession,
    session_maker: async_sessionmaker[AsyncSession],
    settings: Settings,
    active_model: ModelVersion,
) -> None:
    await store(db_session, active_model, 20)
    company_id = await busiest_company(db_session)
    await add_member(db_session, settings, company_id)
    await db_session.commit()
    summary = await send(JobContext(session_maker, settings), datetime.now(UTC), dry_run=True)
    assert summary.messages == 1
    assert await db_session.scalar(select(func.count()).select_from(SentDigest)) == 0
    assert await digest_impressions(db_session, company_id) == []
