"""GDPR: a person's data export, deleting one's own account, and staff erasing a company.

Both erasures keep what the agency's statistics need (interactions, mission participations,
sectors and target cities, the audit trail of what happened) and remove who it was. Invitations
to an erased address, or of an erased company, are deleted: they are about people, not statistics.
With the development mail backend, the .eml files addressed to the erased addresses go as well."""

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Principal
from partnermatch.accounts.models import Invitation, User
from partnermatch.accounts.service import normalize_email
from partnermatch.enums import CompanyStatus, UserRole
from partnermatch.errors import Conflict, InvalidInput, NotFound
from partnermatch.mail import Mailer
from partnermatch.outbox.repository import OutboxRepository
from partnermatch.privacy.classification import CLASSIFICATION, Kind, columns_of, exported_columns
from partnermatch.privacy.repository import PrivacyRepository

EXPORT_FORMAT = "partnermatch-export/1"
# Stands in for every erased person in the audit log; no account has this id.
ANONYMOUS = UUID(int=0)
ERASED = "(erased)"
EXPORT_NOTES = [
    "tables: every row held about you or your company, by table and column.",
    "Secrets (password and token hashes) are never exported.",
    "colleagues: the other members of your company, without their email addresses, which are "
    "their personal data.",
    "invitations: your company's invitations with the invited addresses, the company's own record "
    "(as shown to its members at /api/v1/companies/{id}/invitations).",
    "audit_events: changes by you or to your account or company; who else made a change is withheld.",
]


class DataExport(msgspec.Struct):
    format: str
    exported_at: datetime
    user_id: UUID
    company_id: UUID | None
    notes: list[str]
    tables: dict[str, list[dict[str, Any]]]
    colleagues: list[dict[str, Any]]


class ErasureReport(msgspec.Struct):
    company_id: UUID
    name: str
    users_deleted: int
    audit_events_anonymised: int
    invitations_deleted: int
    outbox_messages_deleted: int
    mail_files_deleted: int


def _scrubbed(changes: dict[str, Any], personal: frozenset[str]) -> dict[str, Any]:
    return {
        key: [None if v is None else ERASED for v in value] if key in personal else value
        for key, value in changes.items()
    }


class PrivacyService:
    def __init__(self, session: AsyncSession, *, mailer: Mailer) -> None:
        self.repository = PrivacyRepository(session)
        self.outbox = OutboxRepository(session)
        self.mailer = mailer

    async def export(self, principal: Principal) -> DataExport:
        columns = {table: exported_columns(table) for table in CLASSIFICATION}
        user = await self.repository.user(principal.user_id)
        if user is None:
            raise NotFound.for_id("user", principal.user_id)
        tables = await self.repository.rows_about(
            principal.user_id, principal.company_id, user.email, columns
        )
        for event in tables.get("audit_events", []):
            if event["actor_user_id"] != principal.user_id:
                event["actor_user_id"] = event["actor_token_id"] = None
        colleagues = []
        if principal.company_id is not None:
            colleagues = [
                {"id": u.id, "role": u.role, "is_active": u.is_active, "created_at": u.created_at}
                for u in await self.repository.colleagues(principal.company_id, principal.user_id)
            ]
        return DataExport(
            format=EXPORT_FORMAT,
            exported_at=datetime.now(UTC),
            user_id=principal.user_id,
            company_id=principal.company_id,
            notes=EXPORT_NOTES,
            tables=tables,
            colleagues=colleagues,
        )

    async def delete_account(self, principal: Principal, confirm: str) -> None:
        user = await self.repository.user(principal.user_id)
        if user is None:
            raise NotFound.for_id("user", principal.user_id)
        if user.role != UserRole.MEMBER.value:
            # The audit trail must keep naming the staff who acted: admins disable staff accounts.
            raise Conflict("staff and admin accounts are disabled by an admin, not deleted")
        if normalize_email(confirm) != user.email:
            raise InvalidInput.for_field("confirm", "must be your email address")
        email = user.email
        await self._erase_users([user])
        await self.outbox.erase([email])
        await self.mailer.forget([email])

    async def erase_company(self, company_id: UUID) -> ErasureReport:
        company = await self.repository.company(company_id)
        if company is None:
            raise NotFound.for_id("company", company_id)
        members = await self.repository.members(company_id)
        invitations = await self.repository.invitations(company_id=company_id)
        addresses = {u.email for u in members} | {i.email for i in invitations}
        if company.contact_email:
            addresses.add(company.contact_email)
        # Before the users, whose own messages would otherwise go with them uncounted.
        outbox_deleted = await self.outbox.erase(addresses)
        invitations_deleted = await self._erase_users(members)
        invitations_deleted += await self._erase_invitations(invitations)
        company.name = f"Erased company {company.id.hex[:8]}"
        company.status = CompanyStatus.ARCHIVED.value
        company.status_reason = None
        company.description = ""
        company.contact_email = None
        company.website = None
        await self.repository.clear_columns_of_company(
            company_id, {t: columns_of(t, Kind.PERSONAL) for t in CLASSIFICATION}
        )
        # The flush writes the audit event of this very change, whose "before" is scrubbed next.
        await self.repository.flush()
        scrubbed = await self._scrub_audit("companies", [str(company_id)])
        return ErasureReport(
            company_id=company_id,
            name=company.name,
            users_deleted=len(members),
            audit_events_anonymised=scrubbed,
            invitations_deleted=invitations_deleted,
            outbox_messages_deleted=outbox_deleted,
            mail_files_deleted=await self.mailer.forget(addresses),
        )

    async def _erase_users(self, users: Sequence[User]) -> int:
        """Deletes the users and the invitations addressed to them; how many invitations."""
        if not users:
            return 0
        ids = [u.id for u in users]
        token_ids = await self.repository.token_ids(ids)
        invitations = await self.repository.invitations(emails=[u.email for u in users])
        await self.repository.delete_users(users)
        await self.repository.anonymise_actors(ids, ANONYMOUS)
        await self._scrub_audit("users", [str(i) for i in ids])
        await self._scrub_audit("api_tokens", [str(i) for i in token_ids])
        return await self._erase_invitations(invitations)

    async def _erase_invitations(self, invitations: Sequence[Invitation]) -> int:
        fresh = [i for i in invitations if not inspect(i).deleted and not inspect(i).was_deleted]
        await self.repository.delete_invitations(fresh)
        await self._scrub_audit("invitations", [str(i.id) for i in invitations])
        return len(fresh)

    async def _scrub_audit(self, entity: str, entity_ids: Iterable[str]) -> int:
        personal = columns_of(entity, Kind.PERSONAL, Kind.SECRET)
        events = await self.repository.audit_events_about(entity, list(entity_ids))
        for event in events:
            event.changes = _scrubbed(event.changes, personal)
        await self.repository.flush()
        return len(events)
