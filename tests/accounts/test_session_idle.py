"""Idle sessions end; the last use of a session or token is written at most once per resolution.

The clock is the `now` the lookups take (the middleware passes the real time), and over HTTP a
session's last use is moved into the past in the database. The lookups only read: the last use is
written by a job after the request's commit (`end_request` here does what the app does)."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

from litestar.stores.memory import MemoryStore
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from partnermatch import jobs
from partnermatch.accounts.models import ApiToken, UserSession
from partnermatch.accounts.service import (
    LAST_USED_RESOLUTION,
    SESSION_TOUCH_RESOLUTION,
    digest,
    principal_for_session,
    principal_for_token,
)
from partnermatch.accounts.throttle import LoginThrottle
from partnermatch.background.service import InlineRunner
from partnermatch.enums import UserRole
from partnermatch.settings import Settings
from tests.accounts.test_auth import PASSWORD, login, member_with_password
from tests.conftest import MakeClient, account_service, create_account

IDLE = timedelta(minutes=120)


async def end_request(
    db_session: AsyncSession, session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """What the app does at the end of a request: commit its transaction, then run the jobs of the
    queue that it opened before the request (`jobs.open_queue`, which only has to precede the commit)."""
    jobs.open_queue()
    await db_session.commit()
    await InlineRunner(jobs.JobContext(session_maker, settings), None).enqueue(jobs.committed())


async def start_session(db_session: AsyncSession, settings: Settings) -> tuple[str, UUID]:
    account = await member_with_password(db_session, settings)
    return await start_session_for(db_session, settings, account.user.id)


async def last_use(db_session: AsyncSession, secret: str) -> datetime:
    value = await db_session.scalar(
        select(UserSession.updated_at).where(UserSession.token_hash == digest(secret))
    )
    assert value is not None
    return value


async def test_a_session_lives_while_used_and_ends_when_idle(
    db_session: AsyncSession, session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    secret, user_id = await start_session(db_session, settings)
    start = await last_use(db_session, secret)

    # Used every 100 minutes, it outlives the idle timeout many times over.
    now = start
    for _ in range(4):
        now += timedelta(minutes=100)
        principal = await principal_for_session(db_session, secret, now=now, idle_timeout=IDLE)
        assert principal is not None
        assert principal.user_id == user_id
        assert principal.role is UserRole.MEMBER
        assert principal.session_id is not None
        await end_request(db_session, session_maker, settings)
        assert await last_use(db_session, secret) == now

    # Unused for longer than the timeout, it is over, and stays over.
    idle = now + IDLE + timedelta(seconds=1)
    assert await principal_for_session(db_session, secret, now=idle, idle_timeout=IDLE) is None
    later = idle + timedelta(minutes=1)
    assert await principal_for_session(db_session, secret, now=later, idle_timeout=IDLE) is None


async def test_the_last_use_of_a_session_is_written_once_a_minute_at_most(
    db_session: AsyncSession, session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    secret, _user_id = await start_session(db_session, settings)
    start = await last_use(db_session, secret)

    soon = start + SESSION_TOUCH_RESOLUTION - timedelta(seconds=1)
    assert await principal_for_session(db_session, secret, now=soon, idle_timeout=IDLE) is not None
    assert jobs.pending(db_session) == []
    await end_request(db_session, session_maker, settings)
    assert await last_use(db_session, secret) == start

    later = start + SESSION_TOUCH_RESOLUTION
    assert await principal_for_session(db_session, secret, now=later, idle_timeout=IDLE) is not None
    # Not in the request's own transaction (on SQLite a GET's may not write): after its commit.
    assert await last_use(db_session, secret) == start
    await end_request(db_session, session_maker, settings)
    assert await last_use(db_session, secret) == later


async def test_a_rolled_back_request_does_not_record_a_use(
    db_session: AsyncSession, session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    secret, _user_id = await start_session(db_session, settings)
    await db_session.commit()  # the login's request
    start = await last_use(db_session, secret)
    later = start + SESSION_TOUCH_RESOLUTION
    assert await principal_for_session(db_session, secret, now=later, idle_timeout=IDLE) is not None
    jobs.open_queue()
    await db_session.rollback()  # what the app does for an answer other than 2xx
    assert jobs.committed() == []
    assert await last_use(db_session, secret) == start


async def test_an_older_use_written_late_does_not_move_the_last_use_back(
    db_session: AsyncSession, session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    # Two requests of one session, whose jobs run in the opposite order.
    secret, _user_id = await start_session(db_session, settings)
    await db_session.commit()  # the login's request
    start = await last_use(db_session, secret)
    first, second = start + SESSION_TOUCH_RESOLUTION, start + 2 * SESSION_TOUCH_RESOLUTION
    assert await principal_for_session(db_session, secret, now=first, idle_timeout=IDLE) is not None
    [late] = jobs.pending(db_session)
    await db_session.rollback()
    assert await principal_for_session(db_session, secret, now=second, idle_timeout=IDLE) is not None
    await end_request(db_session, session_maker, settings)
    assert await last_use(db_session, secret) == second
    await jobs.call(jobs.JobContext(session_maker, settings), late)
    assert await last_use(db_session, secret) == second


async def test_the_lifetime_cap_holds_however_often_a_session_is_used(
    db_session: AsyncSession, session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    secret, _user_id = await start_session(db_session, settings)
    now = await last_use(db_session, secret)
    end = now + timedelta(hours=settings.session_max_age_hours)
    lenient = timedelta(days=2)
    while now + timedelta(days=1) < end:
        now += timedelta(days=1)
        assert await principal_for_session(db_session, secret, now=now, idle_timeout=lenient) is not None
        await end_request(db_session, session_maker, settings)
    assert await principal_for_session(db_session, secret, now=end, idle_timeout=lenient) is None


async def test_token_last_use_is_written_once_per_resolution(
    db_session: AsyncSession, session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    account = await create_account(db_session, settings, UserRole.STAFF)

    async def used() -> datetime | None:
        return await db_session.scalar(
            select(ApiToken.last_used_at).where(ApiToken.token_hash == digest(account.token))
        )

    assert await used() is None
    first = datetime.now(UTC)
    principal = await principal_for_token(db_session, account.token, now=first)
    assert principal is not None
    assert principal.token_id is not None
    assert principal.is_staff
    assert await used() is None  # not in the request's own transaction
    await end_request(db_session, session_maker, settings)
    assert await used() == first

    within = first + LAST_USED_RESOLUTION - timedelta(seconds=1)
    assert await principal_for_token(db_session, account.token, now=within) is not None
    assert jobs.pending(db_session) == []
    await end_request(db_session, session_maker, settings)
    assert await used() == first

    after = first + LAST_USED_RESOLUTION
    assert await principal_for_token(db_session, account.token, now=after) is not None
    assert await used() == first
    await end_request(db_session, session_maker, settings)
    assert await used() == after


async def test_an_idle_session_is_anonymous_over_http(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    account = await member_with_password(db_session, settings)
    client = make_client()
    assert (await login(client, account.user.email)).status_code == 200
    secret = client.cookies[settings.session_cookie_name]
    me = await client.get("/api/v1/auth/me")
    assert me.status_code == 200, me.text

    # Last used just within the timeout: still signed in.
    almost = datetime.now(UTC) - timedelta(minutes=settings.session_idle_minutes) + timedelta(minutes=1)
    await set_last_use(db_session, secret, almost)
    assert (await client.get("/api/v1/auth/me")).status_code == 200
    # That use was recorded, so the session is fresh again.
    assert await last_use(db_session, secret) > almost

    # Last used longer ago than the timeout: the member routes answer 401, public ones still work.
    await set_last_use(
        db_session, secret, datetime.now(UTC) - timedelta(minutes=settings.session_idle_minutes + 1)
    )
    gone = await client.get("/api/v1/auth/me")
    assert gone.status_code == 401, gone.text
    company = await client.get(f"/api/v1/companies/{account.user.company_id}")
    assert company.status_code == 401
    assert (await client.get("/api/v1/cities/")).status_code == 200


async def set_last_use(db_session: AsyncSession, secret: str, moment: datetime) -> None:
    await db_session.execute(
        update(UserSession).where(UserSession.token_hash == digest(secret)).values(updated_at=moment)
    )
    await db_session.flush()


async def test_signing_in_again_deletes_the_idle_sessions(
    db_session: AsyncSession, settings: Settings
) -> None:
    idle_secret, user_id = await start_session(db_session, settings)
    live_secret, _ = await start_session_for(db_session, settings, user_id)
    await set_last_use(
        db_session, idle_secret, datetime.now(UTC) - timedelta(minutes=settings.session_idle_minutes + 1)
    )
    await start_session_for(db_session, settings, user_id)
    hashes = set(
        await db_session.scalars(select(UserSession.token_hash).where(UserSession.user_id == user_id))
    )
    assert digest(idle_secret) not in hashes
    assert digest(live_secret) in hashes
    assert len(hashes) == 2


async def start_session_for(db_session: AsyncSession, settings: Settings, user_id: UUID) -> tuple[str, UUID]:
    accounts = account_service(db_session, settings)
    user = await accounts.get_user(user_id)
    throttle = LoginThrottle(MemoryStore(), settings.login_failures_per_account)
    _user, secret = await accounts.login(user.email, PASSWORD, throttle=throttle, previous=None)
    await db_session.flush()
    return secret, user_id
