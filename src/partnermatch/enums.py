"""Vocabularies shared by the database, the API and the dataset format."""

from enum import StrEnum


class CompanyStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    ARCHIVED = "archived"


class ExportExperience(StrEnum):
    NONE = "none"
    SOME = "some"
    EXTENSIVE = "extensive"


class LeadKind(StrEnum):
    BUYER = "buyer"
    DISTRIBUTOR = "distributor"
    INVESTOR = "investor"
    RESEARCH_PARTNER = "research_partner"
    TENDER = "tender"
    JOINT_VENTURE = "joint_venture"


class LeadStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class LeadSource(StrEnum):
    STAFF = "staff"
    PARTNER_CITY_OFFICE = "partner_city_office"
    IMPORT = "import"


class CityStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class MissionStatus(StrEnum):
    PLANNED = "planned"
    ARCHIVED = "archived"


class ParticipantStatus(StrEnum):
    APPLIED = "applied"
    INVITED = "invited"
    PARTICIPATED = "participated"
    DECLINED = "declined"


# Applicants and companies that declined hold no place on the trip.
HOLDS_PLACE = frozenset({ParticipantStatus.INVITED, ParticipantStatus.PARTICIPATED})
# Companies that hold a place, or said no, are not proposed for the mission again.
NOT_PROPOSED_AGAIN = HOLDS_PLACE | {ParticipantStatus.DECLINED}


class InteractionKind(StrEnum):
    IMPRESSION = "impression"
    VIEW = "view"
    INTERESTED = "interested"
    DECLINED = "declined"
    CONTACTED = "contacted"
    INTRODUCED = "introduced"
    DEAL = "deal"


class UserRole(StrEnum):
    MEMBER = "member"
    STAFF = "staff"
    ADMIN = "admin"


class DeclineReason(StrEnum):
    """Why a company turned a recommended lead down (optional; staff see it, the model may learn from it)."""

    NOT_OUR_SECTOR = "not_our_sector"
    WRONG_CITY = "wrong_city"
    TOO_SMALL = "too_small"
    TOO_LARGE = "too_large"
    NO_CAPACITY = "no_capacity"
    OTHER = "other"


class Language(StrEnum):
    """The portal's languages (and the mail's, later)."""

    DE = "de"
    EN = "en"


class InteractionSource(StrEnum):
    """Where a logged interaction came from, where it matters to learning: the digest's impressions and
    clicks are shown by another channel than the portal's list. None: the portal or the API."""

    DIGEST = "digest"


class DigestFrequency(StrEnum):
    """How often a member wants the match digest by email."""

    WEEKLY = "weekly"
    FORTNIGHTLY = "fortnightly"
    MONTHLY = "monthly"
    NEVER = "never"


class TokenScope(StrEnum):
    READ = "read"
    WRITE = "write"


class AccountTokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"


class InvitationStatus(StrEnum):
    """Derived from the invitation's times (accounts.repository.invitation_status), not stored."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"
    EXPIRED = "expired"


def sql_in(column: str, enum: type[StrEnum]) -> str:
    """A CHECK constraint body that keeps a string column within an enum, on SQLite and PostgreSQL alike."""
    values = ", ".join(f"'{member.value}'" for member in enum)
    return f"{column} IN ({values})"


class MailStatus(StrEnum):
    PENDING = "pending"  # waiting for its first or next attempt
    SENDING = "sending"  # claimed by a sender
    SENT = "sent"
    FAILED = "failed"  # refused for good, out of attempts, or interrupted twice


class MailKind(StrEnum):
    VERIFICATION = "verification"
    PASSWORD_RESET = "password_reset"
    INVITATION = "invitation"
    ACCOUNT_NOTICE = "account_notice"  # an invitation to an address that already has an account
    REJECTION = "rejection"
    INTRODUCTION = "introduction"  # to staff: a company asks for an introduction
    DIGEST = "digest"
