"""Imports every model so that the metadata (for Alembic and tests) is complete."""

from partnermatch.accounts.models import AccountToken, ApiToken, Invitation, User, UserSession
from partnermatch.audit.models import AuditEvent
from partnermatch.background.models import FailedJob, ScheduledRun
from partnermatch.cities.models import City
from partnermatch.companies.models import Company, CompanySector, CompanyTargetCity
from partnermatch.digests.models import SentDigest
from partnermatch.interactions.models import Interaction
from partnermatch.leads.models import Lead, LeadSector
from partnermatch.missions.models import Mission, MissionParticipant, MissionSector
from partnermatch.outbox.models import OutboxMessage, UndeliverableAddress
from partnermatch.recommendations.models import ModelVersion
from partnermatch.sectors.models import Sector

__all__ = [
    "AccountToken",
    "ApiToken",
    "AuditEvent",
    "City",
    "Company",
    "CompanySector",
    "CompanyTargetCity",
    "FailedJob",
    "Interaction",
    "Invitation",
    "Lead",
    "LeadSector",
    "Mission",
    "MissionParticipant",
    "MissionSector",
    "ModelVersion",
    "OutboxMessage",
    "ScheduledRun",
    "Sector",
    "SentDigest",
    "UndeliverableAddress",
    "User",
    "UserSession",
]
