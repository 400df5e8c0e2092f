from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import ColumnElement, delete, func, select

from partnermatch.accounts.models import AccountToken, ApiToken, User, UserSession
from partnermatch.db import contains_text


@dataclass(frozen=True)
class UserFilters:
    role: str | None = None
    company_id: UUID | None = None
    q: str | None = None
    limit: int = 20
    offset: int = 0


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

    async def member_emails(self, company_id: UUID) -> Sequence[str]:
        rows = await self.session.scalars(
            select(User.email).where(User.company_id == company_id, User.is_active.is_(True))
        )
        return rows.all()


class SessionRepository(SQLAlchemyAsyncRepository[UserSession]):
    model_type = UserSession

    async def live_with_user(self, token_hash: str, now: datetime) -> tuple[UserSession, User] | None:
        row = (
            await self.session.execute(
                select(UserSession, User)
                .join(User, User.id == UserSession.user_id)
                .where(
                    UserSession.token_hash == token_hash,
                    UserSession.expires_at > now,
                    User.is_active.is_(True),
                )
            )
        ).first()
        return (row[0], row[1]) if row else None

    async def end(self, session_id: UUID) -> None:
        await self.session.execute(delete(UserSession).where(UserSession.id == session_id))

    async def end_expired(self, user_id: UUID, now: datetime) -> None:
        await self.session.execute(
            delete(UserSession).where(UserSession.user_id == user_id, UserSession.expires_at <= now)
        )

    async def end_all(self, user_id: UUID) -> None:
        await self.session.execute(delete(UserSession).where(UserSession.user_id == user_id))


class ApiTokenRepository(SQLAlchemyAsyncRepository[ApiToken]):
    model_type = ApiToken

    async def live_with_user(self, token_hash: str, now: datetime) -> tuple[ApiToken, User] | None:
        row = (
            await self.session.execute(
                select(ApiToken, User)
                .join(User, User.id == ApiToken.user_id)
                .where(
                    ApiToken.token_hash == token_hash,
                    ApiToken.revoked_at.is_(None),
                    (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now),
                    User.is_active.is_(True),
                )
            )
        ).first()
        return (row[0], row[1]) if row else None

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
