"""What the leads service publishes (``partnermatch.events``) after it wrote a change."""

from dataclasses import dataclass
from uuid import UUID

from partnermatch.enums import LeadStatus


@dataclass(frozen=True)
class LeadCreated:
    lead_id: UUID


@dataclass(frozen=True)
class LeadProfileChanged:
    lead_id: UUID
    fields: frozenset[str]
    """The fields the change set (whether or not their values differ)."""


@dataclass(frozen=True)
class LeadStatusChanged:
    lead_id: UUID
    previous: LeadStatus
    status: LeadStatus
