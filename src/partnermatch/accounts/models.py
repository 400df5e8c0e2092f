from datetime import datetime
from uuid import UUID

from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from partnermatch.enums import AccountTokenPurpose, DigestFrequency, Language, UserRole, sql_in


class User(UUIDv7AuditBase):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(sql_in("role", UserRole), name="role_valid"),
        # Members act for exactly one company; staff for none.
        CheckConstraint("(role = 'member') = (company_id IS NOT NULL)", name="member_has_company"),
        CheckConstraint(f"language IS NULL OR {sql_in('language', Language)}", name="language_valid"),
        CheckConstraint(sql_in("digest_frequency", DigestFrequency), name="digest_frequency_valid"),
        Index("ix_users_company_id", "company_id"),
    )

    # Stored folded to lower case, so the unique index makes addresses unique case-insensitively.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    company_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), nullable=True
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    # None: the browser's Accept-Language decides.
    language: Mapped[str | None] = mapped_column(String(2), nullable=True)
    digest_frequency: Mapped[str] = mapped_column(
        String(16), default=DigestFrequency.WEEKLY.value, server_default=DigestFrequency.WEEKLY.value
    )
    # When the member agreed to the match digest; None: no digest, whatever the frequency.
    digest_consent_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


class UserSession(UUIDv7AuditBase):
    """A login: the cookie holds a random id, the table only its SHA-256."""

    __tablename__ = "user_sessions"
    __table_args__ = (Index("ix_user_sessions_user_id", "user_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class ApiToken(UUIDv7AuditBase):
    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_user_id", "user_id"),)

    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scopes: Mapped[list[str]] = mapped_column(JsonB, default=list)
    expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)


class AccountToken(UUIDv7AuditBase):
    """Single-use tokens sent by email: verify an address, reset a password."""

    __tablename__ = "account_tokens"
    __table_args__ = (
        CheckConstraint(sql_in("purpose", AccountTokenPurpose), name="purpose_valid"),
        Index("ix_account_tokens_user_id", "user_id"),
    )

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)


class Invitation(UUIDv7AuditBase):
    """A member's (or staff's) invitation of an address into a company; the link works once.

    The inviter column is not called user_id on purpose: the GDPR export and erasure find rows by
    user_id or company_id, and an invitation belongs to the company, not to whoever sent it."""

    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint("accepted_at IS NULL OR revoked_at IS NULL", name="accepted_or_revoked"),
        Index("ix_invitations_company_id_created_at", "company_id", "created_at"),
        Index("ix_invitations_email", "email"),
    )

    company_id: Mapped[UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    # Folded to lower case like users.email.
    email: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
