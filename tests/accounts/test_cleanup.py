"""The cleanup job: logins and email links that ended more than the grace period ago, and mail sent more
than the retention period ago, are deleted; whatever can still be used, or is still referenced, stays."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from partnermatch.accounts import service
from partnermatch.accounts.models import AccountToken, Invitation, UserSession
from partnermatch.accounts.repository import AccountTokenRepository
from partnermatch.accounts.service import (
    clean_up_accounts,
    digest,
    new_secret,
    principal_for_session,
    principal_for_token,
)
from partnermatch.enums import AccountTokenPurpose, MailKind, MailStatus
from partnermatch.jobs import JobContext
from partnermatch.outbox.models import OutboxMessage
from partnermatch.settings import Settings
from tests.conftest import Account, TransactionCounter

HOUR, DAY = timedelta(hours=1), timedelta(days=1)


@pytest.fixture
def context(session_maker: async_sessionmaker[AsyncSession], settings: Settings) -> JobContext:
    return JobContext(session_maker, settings)


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC)


def grace(settings: Settings) -> timedelta:
    return timedelta(days=settings.cleanup_grace_days)


def idle(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.session_idle_minutes)


async def add_session(
    db_session: AsyncSession, user_id: UUID, *, expires_at: datetime, last_used: datetime
) -> tuple[UUID, str]:
    secret = new_secret()
    row = UserSession(token_hash=digest(secret), user_id=user_id, expires_at=expires_at, updated_at=last_used)
    db_session.add(row)
    await db_session.flush()
    return row.id, secret


async def add_token(
    db_session: AsyncSession, user_id: UUID, *, expires_at: datetime, used_at: datetime | None = None
) -> tuple[UUID, str]:
    secret = new_secret()
    row = AccountToken(
        token_hash=digest(secret),
        user_id=user_id,
        purpose=AccountTokenPurpose.RESET_PASSWORD.value,
        expires_at=expires_at,
        used_at=used_at,
    )
    db_session.add(row)
    await db_session.flush()
    return row.id, secret


async def add_message(
    db_session: AsyncSession, status: MailStatus, *, created_at: datetime, sent_at: datetime | None = None
) -> UUID:
    row = OutboxMessage(
        created_at=created_at,
        kind=MailKind.VERIFICATION.value,
        to_address="someone@example.org",
        subject="Confirm your email address",
        body_text=None if status is MailStatus.SENT else "…",
        status=status.value,
        attempts=1,
        next_attempt_at=created_at,
        sent_at=sent_at,
        last_error="550 no such user" if status is MailStatus.FAILED else None,
    )
    db_session.add(row)
    await db_session.flush()
    return row.id


async def ids_of(
    db_session: AsyncSession, model: type[UserSession | AccountToken | OutboxMessage]
) -> set[UUID]:
    return set((await db_session.scalars(select(model.id))).all())


async def test_ended_logins_spent_links_and_old_sent_mail_go_and_the_rest_stays(
    db_session: AsyncSession, context: JobContext, settings: Settings, member: Account, now: datetime
) -> None:
    user_id = member.user.id
    live, live_secret = await add_session(
        db_session, user_id, expires_at=now + DAY, last_used=now - 5 * timedelta(minutes=1)
    )
    expired_lately, _ = await add_session(
        db_session, user_id, expires_at=now - grace(settings) + HOUR, last_used=now - grace(settings)
    )
    expired_long_ago, _ = await add_session(
        db_session,
        user_id,
        expires_at=now - grace(settings) - HOUR,
        last_used=now - grace(settings) - 2 * HOUR,
    )
    idle_lately, _ = await add_session(
        db_session, user_id, expires_at=now + 5 * DAY, last_used=now - idle(settings) - HOUR
    )
    idle_long_ago, _ = await add_session(
        db_session, user_id, expires_at=now + 5 * DAY, last_used=now - idle(settings) - grace(settings) - HOUR
    )

    usable, usable_secret = await add_token(db_session, user_id, expires_at=now + HOUR)
    used_lately, _ = await add_token(db_session, user_id, expires_at=now + HOUR, used_at=now - HOUR)
    expired_token_lately, _ = await add_token(db_session, user_id, expires_at=now - DAY)
    used_long_ago, _ = await add_token(
        db_session, user_id, expires_at=now - grace(settings) + HOUR, used_at=now - grace(settings) - HOUR
    )
    expired_token_long_ago, _ = await add_token(db_session, user_id, expires_at=now - grace(settings) - HOUR)

    retention = timedelta(days=settings.outbox_retention_days)
    sent_long_ago = await add_message(
        db_session, MailStatus.SENT, created_at=now - retention - 2 * DAY, sent_at=now - retention - DAY
    )
    sent_lately = await add_message(
        db_session, MailStatus.SENT, created_at=now - retention, sent_at=now - retention + DAY
    )
    failed_long_ago = await add_message(db_session, MailStatus.FAILED, created_at=now - retention - 2 * DAY)
    pending = await add_message(db_session, MailStatus.PENDING, created_at=now)

    old_invitation = Invitation(
        company_id=member.user.company_id,
        email="invitee@example.org",
        token_hash=digest(new_secret()),
        invited_by_id=user_id,
        expires_at=now - 10 * retention,
    )
    db_session.add(old_invitation)
    await db_session.flush()

    counts = await clean_up_accounts(context, now=now)

    assert counts == {"sessions": 2, "account_tokens": 2, "outbox_messages": 1}
    sessions, tokens, messages = (
        await ids_of(db_session, UserSession),
        await ids_of(db_session, AccountToken),
        await ids_of(db_session, OutboxMessage),
    )
    assert sessions == {live, expired_lately, idle_lately}
    assert not sessions & {expired_long_ago, idle_long_ago}
    assert tokens == {usable, used_lately, expired_token_lately}
    assert not tokens & {used_long_ago, expired_token_long_ago}
    assert messages == {sent_lately, failed_long_ago, pending}
    assert sent_long_ago not in messages
    # Kept on purpose: an erasure finds the invitation's audit events (the address) through its row.
    assert (
        await db_session.scalar(select(Invitation.id).where(Invitation.id == old_invitation.id)) is not None
    )

    # What can still be used still works: the live login, the unused link, the API token.
    principal = await principal_for_session(db_session, live_secret, now=now, idle_timeout=idle(settings))
    assert principal is not None
    assert principal.user_id == user_id
    token = await AccountTokenRepository(session=db_session).usable(
        digest(usable_secret), AccountTokenPurpose.RESET_PASSWORD.value, now
    )
    assert token is not None
    assert token.id == usable
    assert await principal_for_token(db_session, member.token, now=now) is not None

    assert await clean_up_accounts(context, now=now) == {
        "sessions": 0,
        "account_tokens": 0,
        "outbox_messages": 0,
    }
    assert await ids_of(db_session, UserSession) == {live, expired_lately, idle_lately}


async def test_many_ended_logins_are_deleted_in_batches_of_their_own_transactions(
    db_session: AsyncSession,
    context: JobContext,
    settings: Settings,
    member: Account,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "CLEANUP_BATCH", 2)
    long_ago = now - grace(settings) - DAY
    for _ in range(5):
        await add_session(db_session, member.user.id, expires_at=long_ago, last_used=long_ago - HOUR)
    live, _ = await add_session(db_session, member.user.id, expires_at=now + DAY, last_used=now)
    transactions = TransactionCounter(context, monkeypatch)

    counts = await clean_up_accounts(context, now=now)

    assert counts["sessions"] == 5
    assert await ids_of(db_session, UserSession) == {live}
    # Sessions 2 + 2 + 1 (the smaller batch ends the kind), then one each for tokens and mail.
    assert transactions.count == 5
