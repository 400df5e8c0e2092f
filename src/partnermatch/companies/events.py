"""What the companies service publishes (``partnermatch.events``) after it wrote a change."""

from dataclasses import dataclass
from uuid import UUID

from partnermatch.enums import CompanyStatus


@dataclass(frozen=True)
class CompanyRegistered:
    company_id: UUID
    status: CompanyStatus


@dataclass(frozen=True)
class CompanyProfileChanged:
    company_id: UUID
    status: CompanyStatus
    fields: frozenset[str]
    """The profile fields the change set (whether or not their values differ)."""


@dataclass(frozen=True)
class CompanyStatusChanged:
    company_id: UUID
    previous: CompanyStatus
    status: CompanyStatus

    @property
    def rejected(self) -> bool:
        """A registration that staff archived before approving it."""
        return self.previous is CompanyStatus.PENDING and self.status is CompanyStatus.ARCHIVED
