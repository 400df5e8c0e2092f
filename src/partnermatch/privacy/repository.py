"""The queries of the GDPR export and erasure. Tables are found by their columns (`user_id`,
`company_id`, or an `address` holding the person's email), so a new table about a user or a company is
exported and erased without a change here."""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Table, delete, false, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.accounts.models import ApiToken, Invitation, User
from partnermatch.audit.models import AuditEvent
from partnermatch.companies.models import Company

SPECIAL = frozenset({"users", "companies", "audit_events"})


def _tables() -> list[Table]:
    return sorted(Company.metadata.tables.values(), key=lambda t: t.name)


def _about(user_id: UUID, company_id: UUID | None) -> ColumnElement[bool]:
    """Audit events by the user, about the user, or about their company."""
    conditions = [
        AuditEvent.actor_user_id == user_id,
        (AuditEvent.entity == "users") & (AuditEvent.entity_id == str(user_id)),
    ]
    if company_id is not None:
        conditions.append((AuditEvent.entity == "companies") & (AuditEvent.entity_id == str(company_id)))
    return or_(*conditions)


def _scope(table: Table, user_id: UUID, company_id: UUID | None, email: str) -> ColumnElement[bool] | None:
    if table.name == "users":
        return table.c.id == user_id
    if table.name == "companies":
        return table.c.id == company_id if company_id is not None else false()
    if table.name == "audit_events":
        return _about(user_id, company_id)
    if "user_id" in table.c:
        return table.c.user_id == user_id
    if "company_id" in table.c:
        return table.c.company_id == company_id if company_id is not None else false()
    if "address" in table.c:
        return table.c.address == email
    # Reference data (cities, sectors, leads, missions) is about no one.
    return None


class PrivacyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def rows_about(
        self, user_id: UUID, company_id: UUID | None, email: str, columns: dict[str, frozenset[str]]
    ) -> dict[str, list[dict[str, Any]]]:
        """Every row about the user or their company, table by table, limited to `columns[table]`."""
        found: dict[str, list[dict[str, Any]]] = {}
        for table in _tables():
            scope = _scope(table, user_id, company_id, email)
            wanted = [c for c in table.c if c.name in columns.get(table.name, frozenset())]
            if scope is None or not wanted:
                continue
            result = await self.session.execute(select(*wanted).where(scope).order_by(*table.primary_key))
            found[table.name] = [dict(row._mapping) for row in result]
        return found

    async def colleagues(self, company_id: UUID, user_id: UUID) -> Sequence[User]:
        rows = await self.session.scalars(
            select(User).where(User.company_id == company_id, User.id != user_id).order_by(User.created_at)
        )
        return rows.all()

    async def members(self, company_id: UUID) -> Sequence[User]:
        rows = await self.session.scalars(select(User).where(User.company_id == company_id))
        return rows.all()

    async def company(self, company_id: UUID) -> Company | None:
        company: Company | None = await self.session.get(Company, company_id)
        return company

    async def user(self, user_id: UUID) -> User | None:
        user: User | None = await self.session.get(User, user_id)
        return user

    async def delete_users(self, users: Sequence[User]) -> None:
        """Logins, tokens and every other row owned by the users go first, then the users themselves
        (through the ORM, so that the deletion is audited)."""
        ids = [u.id for u in users]
        if not ids:
            return
        for table in _tables():
            if table.name not in SPECIAL and "user_id" in table.c:
                await self.session.execute(delete(table).where(table.c.user_id.in_(ids)))
        for user in users:
            await self.session.delete(user)
        await self.session.flush()

    async def invitations(
        self, *, company_id: UUID | None = None, emails: Sequence[str] = ()
    ) -> Sequence[Invitation]:
        """Invitations of the company, or addressed to these emails in any company."""
        conditions: list[ColumnElement[bool]] = [Invitation.email.in_(emails)] if emails else []
        if company_id is not None:
            conditions.append(Invitation.company_id == company_id)
        if not conditions:
            return []
        rows = await self.session.scalars(select(Invitation).where(or_(*conditions)))
        return rows.all()

    async def delete_invitations(self, invitations: Sequence[Invitation]) -> None:
        # Through the ORM, so that the deletion is audited (and then scrubbed like the rest).
        for invitation in invitations:
            await self.session.delete(invitation)
        await self.session.flush()

    async def token_ids(self, user_ids: Sequence[UUID]) -> Sequence[UUID]:
        rows = await self.session.scalars(select(ApiToken.id).where(ApiToken.user_id.in_(user_ids)))
        return rows.all()

    async def anonymise_actors(self, user_ids: Sequence[UUID], anonymous: UUID) -> int:
        result = await self.session.execute(
            update(AuditEvent)
            .where(AuditEvent.actor_user_id.in_(user_ids))
            .values(actor_user_id=anonymous, actor_token_id=None)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def audit_events_about(self, entity: str, entity_ids: Sequence[str]) -> Sequence[AuditEvent]:
        rows = await self.session.scalars(
            select(AuditEvent).where(AuditEvent.entity == entity, AuditEvent.entity_id.in_(entity_ids))
        )
        return rows.all()

    async def clear_columns_of_company(self, company_id: UUID, personal: dict[str, frozenset[str]]) -> None:
        """Personal columns of rows that belong to the company but are kept (aggregates)."""
        for table in _tables():
            names = personal.get(table.name, frozenset())
            if table.name in SPECIAL or "company_id" not in table.c or not names:
                continue
            await self.session.execute(
                update(table).where(table.c.company_id == company_id).values(dict.fromkeys(names))
            )

    async def flush(self) -> None:
        await self.session.flush()
