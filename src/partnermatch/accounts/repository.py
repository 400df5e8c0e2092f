from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import ColumnElement, Row, Select, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session

from partnermatch.accounts.models import AccountToken, ApiToken, Invitation, User, UserSession
from partnermatch.db import contains_text
from partnermatch.enums import InvitationStatus, UserRole


@dataclass(frozen=True)
class UserFilters:
    role: str | None = None
    company_id: UUID | None = None
    q: str | None = None
    limit: int = 20
    offset: int = 0


# --- authentication of requests ---------------------------------------------------------------------
# Every authenticated request runs one of these lookups, so they are built once (SQLAlchemy then
# reuses the compiled statement without recomputing its cache key), select plain columns instead
# of ORM objects, and run on the request's own connection (its transaction, no unit of work). The
# touches run in a job's transaction of their own (accounts/service.py says why).

_LIVE_SESSION = (
    select(
        UserSession.id, UserSession.updated_at, User.id, User.role, User.company_id, User.email_verified_at
    )
    .join(User, User.id == UserSession.user_id)
    .where(
        UserSession.token_hash == bindparam("token_hash"),
        UserSession.expires_at > bindparam("now"),
        # The session's updated_at is its last use (touch_session); nothing else changes the row.
        UserSession.updated_at > bindparam("idle_since"),
        User.is_active.is_(True),
    )
)
# A touch never moves a last use backwards: touches run after their responses, in any order.
_TOUCH_SESSION = (
    update(UserSession)
    .where(UserSession.id == bindparam("row_id"), UserSession.updated_at < bindparam("now"))
    .values(updated_at=bindparam("now"))
)
_LIVE_TOKEN = (
    select(
        ApiToken.id,
        ApiToken.last_used_at,
        User.id,
        User.role,
        User.company_id,
        User.email_verified_at,
        ApiToken.scopes,
    )
    .join(User, User.id == ApiToken.user_id)
    .where(
        ApiToken.token_hash == bindparam("token_hash"),
        ApiToken.revoked_at.is_(None),
        ApiToken.expires_at.is_(None) | (ApiToken.expires_at > bindparam("now")),
        User.is_active.is_(True),
    )
)
_TOUCH_TOKEN = (
    update(ApiToken)
    .where(
        ApiToken.id == bindparam("row_id"),
        ApiToken.last_used_at.is_(None) | (ApiToken.last_used_at < bindparam("now")),
    )
    .values(last_used_at=bindparam("now"))
)


async def live_session(
    session: AsyncSession, token_hash: str, now: datetime, idle_since: datetime
) -> Row[tuple[UUID, datetime, UUID, str, UUID | None, datetime | None]] | None:
    """(session id, last used, user id, role, company id, email verified at) of a session neither
    expired nor idle since `idle_since`, of an active user."""
    connection = await session.connection()
    result = await connection.execute(
        _LIVE_SESSION, {"token_hash": token_hash, "now": now, "idle_since": idle_since}
    )
    return result.first()


async def touch_session(session: AsyncSession, session_id: UUID, now: datetime) -> None:
    await (await session.connection()).execute(_TOUCH_SESSION, {"row_id": session_id, "now": now})


async def live_token(
    session: AsyncSession, token_hash: str, now: datetime
) -> Row[tuple[UUID, datetime | None, UUID, str, UUID | None, datetime | None, list[str]]] | None:
    """(token id, last used, user id, role, company id, email verified at, scopes) of a usable API
    token of an active user."""
    connection = await session.connection()
    result = await connection.execute(_LIVE_TOKEN, {"token_hash": token_hash, "now": now})
    return result.first()


async def touch_token(session: AsyncSession, token_id: UUID, now: datetime) -> None:
    await (await session.connection()).execute(_TOUCH_TOKEN, {"row_id": token_id, "now": now})


@dataclass(frozen=True)
class DigestReader:
    user_id: UUID
    company_id: UUID
    email: str
    language: str | None
    frequency: str
    verified: bool
    consented: bool


class UserRepository(SQLAlchemyAsyncRepository[User]):
    model_type = User

    async def by_email(self, email: str) -> User | None:
        return await self.get_one_or_none(email=email)

    async def search(self, f: UserFilters) -> tuple[Sequence[User], int]:
        conditions: list[ColumnElement[bool]] = []
        if f.role:
            conditions.append(User.role == f.role)
        if f.company_id:
            conditions.append(User.company_id == f.company_id)
        if f.q:
            conditions.append(contains_text(f.q, User.email))
        total = await self.session.scalar(select(func.count()).select_from(User).where(*conditions))
        rows = await self.session.scalars(
            select(User).where(*conditions).order_by(User.email).limit(f.limit).offset(f.offset)
        )
        return rows.all(), total or 0

    async def of_company(self, company_id: UUID) -> Sequence[User]:
        rows = await self.session.scalars(
            select(User).where(User.company_id == company_id).order_by(User.created_at, User.id)
        )
        return rows.all()

    async def staff_addresses(self) -> list[tuple[UUID, str]]:
        """(id, email) of every active staff or admin account."""
        rows = await self.session.execute(
            select(User.id, User.email).where(
                User.role.in_([UserRole.STAFF.value, UserRole.ADMIN.value]), User.is_active.is_(True)
            )
        )
        return [(user_id, email) for user_id, email in rows.all()]

    async def member_addresses(self, company_id: UUID) -> list[tuple[UUID, str]]:
        """(id, email) of every active member of the company."""
        rows = await self.session.execute(
            select(User.id, User.email).where(User.company_id == company_id, User.is_active.is_(True))
        )
        return [(user_id, email) for user_id, email in rows.all()]

    async def digest_readers(self, company_ids: Sequence[UUID]) -> list[DigestReader]:
        """The active members of these companies, with what decides whether they get the digest."""
        rows = await self.session.execute(
            select(
                User.id,
                User.company_id,
                User.email,
                User.language,
                User.digest_frequency,
                User.email_verified_at.is_not(None),
                User.digest_consent_at.is_not(None),
            )
            .where(
                User.company_id.in_(company_ids), User.is_active.is_(True), User.role == UserRole.MEMBER.value
            )
            .order_by(User.company_id, User.id)
        )
        return [
            DigestReader(user_id, company, email, language, frequency, verified, consented)
            for user_id, company, email, language, frequency, verified, consented in rows.tuples().all()
            if company is not None  # members always have one (a CHECK constraint)
        ]


class SessionRepository(SQLAlchemyAsyncRepository[UserSession]):
    model_type = UserSession

    async def end(self, session_id: UUID) -> None:
        await self.session.execute(delete(UserSession).where(UserSession.id == session_id))

    async def end_expired(self, user_id: UUID, now: datetime, idle_since: datetime) -> None:
        """Deletes the user's sessions that are past their lifetime or unused since `idle_since`."""
        await self.session.execute(
            delete(UserSession).where(
                UserSession.user_id == user_id,
                (UserSession.expires_at <= now) | (UserSession.updated_at <= idle_since),
            )
        )

    async def end_all(self, user_id: UUID) -> None:
        await self.session.execute(delete(UserSession).where(UserSession.user_id == user_id))

    async def delete_ended(self, ended_before: datetime, idle_before: datetime, limit: int) -> int:
        """Deletes up to ``limit`` sessions, of any user, that ended before ``ended_before``: past their
        lifetime then, or last used before ``idle_before`` (``ended_before`` minus the idle timeout, see
        live_session); how many. Signing out deletes a session at once."""
        batch = (
            select(UserSession.id)
            .where((UserSession.expires_at < ended_before) | (UserSession.updated_at < idle_before))
            .limit(limit)
        )
        return await _delete_batch(self.session, UserSession, batch)


class ApiTokenRepository(SQLAlchemyAsyncRepository[ApiToken]):
    model_type = ApiToken

    async def of_user(self, user_id: UUID) -> Sequence[ApiToken]:
        rows = await self.session.scalars(
            select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.created_at, ApiToken.id)
        )
        return rows.all()


class AccountTokenRepository(SQLAlchemyAsyncRepository[AccountToken]):
    model_type = AccountToken

    async def usable(self, token_hash: str, purpose: str, now: datetime) -> AccountToken | None:
        token: AccountToken | None = await self.session.scalar(
            select(AccountToken).where(
                AccountToken.token_hash == token_hash,
                AccountToken.purpose == purpose,
                AccountToken.used_at.is_(None),
                AccountToken.expires_at > now,
            )
        )
        return token

    async def delete_spent(self, before: datetime, limit: int) -> int:
        """Deletes up to ``limit`` tokens used or expired before ``before``; how many."""
        batch = (
            select(AccountToken.id)
            .where((AccountToken.used_at < before) | (AccountToken.expires_at < before))
            .limit(limit)
        )
        return await _delete_batch(self.session, AccountToken, batch)


async def _delete_batch(
    session: AsyncSession | async_scoped_session[AsyncSession],
    model: type[UserSession | AccountToken],
    batch: Select[tuple[UUID]],
) -> int:
    """Deletes the rows whose ids ``batch`` selects; how many (Core: nothing of them is loaded)."""
    result = await session.execute(
        delete(model)
        .where(model.id.in_(batch.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def invitation_status(status: InvitationStatus, now: datetime) -> ColumnElement[bool]:
    """The status as a query condition; `accounts.invitations.status_of` is the same rule in Python."""
    if status is InvitationStatus.ACCEPTED:
        return Invitation.accepted_at.is_not(None)
    if status is InvitationStatus.REVOKED:
        return Invitation.revoked_at.is_not(None)
    open_ = Invitation.accepted_at.is_(None) & Invitation.revoked_at.is_(None)
    if status is InvitationStatus.EXPIRED:
        return open_ & (Invitation.expires_at <= now)
    return open_ & (Invitation.expires_at > now)


class InvitationRepository(SQLAlchemyAsyncRepository[Invitation]):
    model_type = Invitation

    async def of_company(
        self, company_id: UUID, status: InvitationStatus | None, now: datetime
    ) -> Sequence[Invitation]:
        conditions = [Invitation.company_id == company_id]
        if status is not None:
            conditions.append(invitation_status(status, now))
        rows = await self.session.scalars(
            select(Invitation).where(*conditions).order_by(Invitation.created_at.desc(), Invitation.id)
        )
        return rows.all()

    async def sent_since(self, company_id: UUID, since: datetime) -> tuple[int, datetime | None]:
        """How many invitations the company sent since then, and when the oldest of them was sent."""
        row = (
            await self.session.execute(
                select(func.count(), func.min(Invitation.created_at)).where(
                    Invitation.company_id == company_id, Invitation.created_at > since
                )
            )
        ).one()
        return int(row[0]), row[1]

    async def pending_to(self, company_id: UUID, email: str, now: datetime) -> Sequence[Invitation]:
        rows = await self.session.scalars(
            select(Invitation).where(
                Invitation.company_id == company_id,
                Invitation.email == email,
                invitation_status(InvitationStatus.PENDING, now),
            )
        )
        return rows.all()

    async def usable(self, token_hash: str, now: datetime) -> Invitation | None:
        invitation: Invitation | None = await self.session.scalar(
            select(Invitation).where(
                Invitation.token_hash == token_hash, invitation_status(InvitationStatus.PENDING, now)
            )
        )
        return invitation
