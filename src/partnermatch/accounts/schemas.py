from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from partnermatch.companies.schemas import CompanyCreate, Email
from partnermatch.enums import DigestFrequency, InvitationStatus, Language, TokenScope, UserRole

# The length rules live in passwords.py, so that a too-short password is a 422 naming the rule.
Password = Annotated[str, msgspec.Meta(max_length=1024)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(max_length=320)]
    password: Password


class UserRead(msgspec.Struct):
    id: UUID
    email: str
    role: UserRole
    company_id: UUID | None
    email_verified: bool
    created_at: datetime


class Preferences(msgspec.Struct, forbid_unknown_fields=True):
    """What a member chooses for themselves: the portal's language and the match digest by email."""

    language: Annotated[
        Language | None, msgspec.Meta(description="Of the portal's pages; none: the browser's language")
    ] = None
    digest_frequency: DigestFrequency = DigestFrequency.WEEKLY
    digest_consent: Annotated[
        bool, msgspec.Meta(description="Agreed to receive the match digest; without it, none is sent")
    ] = False


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    current_password: Password
    new_password: Password


class Registration(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password
    company: CompanyCreate


class Accepted(msgspec.Struct):
    """E.g. the same answer whether or not an address is known: the rest happens by email."""

    detail: str


class TokenBody(msgspec.Struct, forbid_unknown_fields=True):
    token: Token


class ResetRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(max_length=320)]


class ResetConfirm(msgspec.Struct, forbid_unknown_fields=True):
    token: Token
    password: Password


class AccountRead(msgspec.Struct):
    id: UUID
    email: str
    role: UserRole
    company_id: UUID | None
    is_active: bool
    email_verified: bool
    created_at: datetime
    updated_at: datetime


class AccountCreate(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    role: UserRole
    # Members belong to exactly one company; staff and admins to none.
    company_id: UUID | None = None
    # Without one the account can only be used with API tokens (or after a password reset).
    password: Password | None = None


class AccountUpdate(msgspec.Struct, forbid_unknown_fields=True):
    is_active: bool | msgspec.UnsetType = msgspec.UNSET


class ApiTokenRead(msgspec.Struct):
    id: UUID
    user_id: UUID
    name: str
    scopes: list[TokenScope]
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


class ApiTokenCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    scopes: Annotated[list[TokenScope], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: [TokenScope.READ, TokenScope.WRITE]
    )
    expires_at: datetime | None = None


class ApiTokenCreated(msgspec.Struct):
    token: ApiTokenRead
    # Shown once: only its hash is stored.
    secret: str


class InvitationCreate(msgspec.Struct, forbid_unknown_fields=True):
    # Required; optional in the schema only so that another company's id answers 404 before the
    # body is looked at (the service names the missing field).
    email: Email | None = None


class InvitationRead(msgspec.Struct):
    id: UUID
    company_id: UUID
    email: str
    status: InvitationStatus
    # None once the inviter's account is deleted.
    invited_by: UUID | None
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class InvitationAccept(msgspec.Struct, forbid_unknown_fields=True):
    token: Token
    password: Password


class MemberRead(msgspec.Struct):
    """A colleague, as the members of a company see each other."""

    id: UUID
    email: str
    role: UserRole
    is_active: bool
    email_verified: bool
    created_at: datetime
