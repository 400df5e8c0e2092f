from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import (
    ColumnElement,
    Integer,
    Table,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from partnermatch.access import Principal
from partnermatch.cities.models import City
from partnermatch.companies.models import Company
from partnermatch.companies.repository import VISIBLE_TO_BOUND, visibility
from partnermatch.enums import CityStatus, CompanyStatus, InteractionKind, LeadStatus
from partnermatch.interactions.models import Interaction
from partnermatch.leads.models import Lead
from partnermatch.missions.models import Mission, MissionParticipant
from partnermatch.recommendations.models import ModelVersion, StoredRecommendation

# A lead the company turned down or already pursued is no recommendation any more.
SETTLED_KINDS = (
    InteractionKind.DECLINED.value,
    InteractionKind.CONTACTED.value,
    InteractionKind.INTRODUCED.value,
    InteractionKind.DEAL.value,
)
MAX_CANDIDATES = 5000


class ModelVersionRepository(SQLAlchemyAsyncRepository[ModelVersion]):
    model_type = ModelVersion

    async def newest_first(self) -> Sequence[ModelVersion]:
        rows = await self.session.scalars(
            select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
        )
        return rows.all()

    async def active(self) -> ModelVersion | None:
        version: ModelVersion | None = await self.session.scalar(
            select(ModelVersion).where(ModelVersion.is_active.is_(True))
        )
        return version

    async def by_version(self, version: str) -> ModelVersion | None:
        found: ModelVersion | None = await self.session.scalar(
            select(ModelVersion).where(ModelVersion.version == version)
        )
        return found

    async def deactivate_all(self) -> None:
        await self.session.execute(
            update(ModelVersion).where(ModelVersion.is_active.is_(True)).values(is_active=False)
        )
        # The partial unique index checks each statement: the old row must be off before the new one is on.
        await self.session.flush()


def recommendable(
    company_id: UUID | ColumnElement[UUID] | InstrumentedAttribute[UUID] | None,
    today: date | ColumnElement[date],
    now: datetime | ColumnElement[datetime],
    city: str | None = None,
    kind: str | None = None,
) -> list[ColumnElement[bool]]:
    """Conditions on ``Lead``: open, unexpired, published, in an active city and, for a company (an id,
    or a column holding one: the stored rows of several companies), not settled by it. On-demand scoring
    and stored rows are served under the same rules."""
    active_city = exists().where(City.id == Lead.city_id, City.status == CityStatus.ACTIVE.value)
    conditions = [
        Lead.status == LeadStatus.OPEN.value,
        or_(Lead.deadline.is_(None), Lead.deadline >= today),
        Lead.published_at <= now,
        active_city,
    ]
    if company_id is not None:
        conditions.append(
            ~exists().where(
                Interaction.company_id == company_id,
                Interaction.lead_id == Lead.id,
                Interaction.kind.in_(SETTLED_KINDS),
            )
        )
    if city:
        conditions.append(Lead.city_id == city)
    if kind:
        conditions.append(Lead.kind == kind)
    return conditions


@dataclass(frozen=True)
class OpenLead:
    """What scoring reads of an open lead: its key in the model, when it last changed, what the answer shows."""

    id: UUID
    external_id: str | None
    updated_at: datetime
    title: str
    kind: str
    city_id: str
    organization: str
    budget_eur: int | None
    deadline: date | None


OPEN_LEAD_COLUMNS = (
    Lead.id,
    Lead.external_id,
    Lead.updated_at,
    Lead.title,
    Lead.kind,
    Lead.city_id,
    Lead.organization,
    Lead.budget_eur,
    Lead.deadline,
)


@dataclass(frozen=True)
class CompanyKey:
    """An approved company without its profile: its key in the model and when it last changed."""

    id: UUID
    external_id: str | None
    updated_at: datetime


class RecommendableLeadRepository(SQLAlchemyAsyncRepository[Lead]):
    model_type = Lead

    async def open_for(
        self, company_id: UUID, today: date, now: datetime, city: str | None, kind: str | None
    ) -> list[OpenLead]:
        """Open, unexpired, published leads in active cities that the company has not settled.

        Columns, not ORM objects: a request scores thousands of leads the model knows by their key, and
        building an object (with its sector and language rows) for each took half of its time."""
        rows = await self.session.execute(
            select(*OPEN_LEAD_COLUMNS)
            .where(*recommendable(company_id, today, now, city, kind))
            .order_by(Lead.published_at.desc(), Lead.id)
            .limit(MAX_CANDIDATES)
        )
        return [OpenLead(*row) for row in rows.tuples().all()]

    async def profiles(self, lead_ids: Sequence[UUID]) -> list[Lead]:
        """Whole leads: the profiles of leads the model does not know yet."""
        found: list[Lead] = []
        for part in _chunks(lead_ids):
            found.extend((await self.session.scalars(select(Lead).where(Lead.id.in_(part)))).all())
        return found

    async def open_leads(self, today: date, now: datetime) -> list[OpenLead]:
        """Every lead some company may be recommended (settled pairs are excluded per company), as
        columns (see :meth:`open_for`)."""
        rows = await self.session.execute(
            select(*OPEN_LEAD_COLUMNS)
            .where(*recommendable(None, today, now))
            .order_by(Lead.published_at.desc(), Lead.id)
        )
        return [OpenLead(*row) for row in rows.tuples().all()]

    async def is_recommendable(self, lead_id: UUID, today: date, now: datetime) -> bool:
        found = await self.session.scalar(
            select(Lead.id).where(Lead.id == lead_id, *recommendable(None, today, now))
        )
        return found is not None

    async def settled_pairs(
        self, lead_ids: Sequence[UUID] | None = None, company_ids: Sequence[UUID] | None = None
    ) -> list[tuple[UUID, UUID]]:
        """(company, lead) pairs that the company declined or already pursued (of the leads or companies
        given, at most 1000 of either: larger sets are filtered by the caller)."""
        query = select(Interaction.company_id, Interaction.lead_id).where(Interaction.kind.in_(SETTLED_KINDS))
        if lead_ids is not None:
            query = query.where(Interaction.lead_id.in_(lead_ids))
        if company_ids is not None:
            query = query.where(Interaction.company_id.in_(company_ids))
        rows = await self.session.execute(query.distinct())
        return list(rows.tuples().all())


@dataclass(frozen=True)
class StoredRow:
    id: UUID
    title: str
    kind: str
    city_id: str
    organization: str
    budget_eur: int | None
    deadline: date | None
    score: float
    method: str
    reasons: list[dict[str, Any]]
    """Stored ``ranking.reasons.Reason`` values."""


@dataclass(frozen=True)
class StoredList:
    """What a company's list holds: the recommendable rows asked for, and whether more exist unstored."""

    stored: bool
    truncated: bool
    rows: list[StoredRow]


@dataclass(frozen=True)
class ServingStart:
    """What a company's list needs first: its status (None: no such company visible to the principal)
    and the active model version (None: no model is active)."""

    status: str | None
    version_id: int | None
    version: str | None


def _served_statement(city: bool, kind: bool) -> Any:
    s = StoredRecommendation
    return (
        select(
            s.lead_id,
            Lead.title,
            Lead.kind,
            Lead.city_id,
            Lead.organization,
            Lead.budget_eur,
            Lead.deadline,
            s.score,
            s.method,
            s.reasons,
        )
        .join(Lead, Lead.id == s.lead_id)
        .where(
            s.model_version_id == bindparam("version_id"),
            s.company_id == bindparam("company_id"),
            *recommendable(bindparam("company_id"), bindparam("today"), bindparam("now")),
            *([Lead.city_id == bindparam("city")] if city else []),
            *([Lead.kind == bindparam("kind")] if kind else []),
        )
        .order_by(s.ranking_score.desc(), s.lead_id)
        .limit(bindparam("limit"))
    )


# Every signed-in list of recommendations runs these, so they are built once, one per combination of
# filters: building and hashing the served statement took 0.4 ms of a request.
_SERVED = {(city, kind): _served_statement(city, kind) for city in (False, True) for kind in (False, True)}
_TRUNCATED = (
    select(StoredRecommendation.truncated)
    .where(
        StoredRecommendation.model_version_id == bindparam("version_id"),
        StoredRecommendation.company_id == bindparam("company_id"),
    )
    .limit(1)
)
# The company's standing and the active model in one round trip; a LEFT JOIN, because either may be
# missing and each has its own answer.
_SERVING_START = (
    select(Company.status, ModelVersion.id, ModelVersion.version)
    .select_from(Company)
    .outerjoin(ModelVersion, ModelVersion.is_active.is_(True))
    .where(Company.id == bindparam("company_id"), VISIBLE_TO_BOUND)
)
_ACTIVE_MODEL = select(ModelVersion.id, ModelVersion.version).where(ModelVersion.is_active.is_(True))


async def serving_start(session: AsyncSession, company_id: UUID, principal: Principal) -> ServingStart:
    # On the connection: a Core select of columns needs none of the ORM session's machinery.
    connection = await session.connection()
    row = (
        await connection.execute(_SERVING_START, {"company_id": company_id, **visibility(principal)})
    ).first()
    if row is not None:
        return ServingStart(*row)
    active = (await connection.execute(_ACTIVE_MODEL)).first()
    return ServingStart(None, *active) if active is not None else ServingStart(None, None, None)


@dataclass(frozen=True)
class ListBounds:
    count: int
    lowest: float
    truncated: bool


CHUNK = 1000


class StoredRecommendationRepository(SQLAlchemyAsyncRepository[StoredRecommendation]):
    model_type = StoredRecommendation

    async def served(
        self,
        version_id: int,
        company_id: UUID,
        limit: int,
        today: date,
        now: datetime,
        city: str | None,
        kind: str | None,
    ) -> StoredList:
        """The company's stored rows that are still recommendable, best first (serving's filters in SQL)."""
        parameters = {
            "version_id": version_id,
            "company_id": company_id,
            "today": today,
            "now": now,
            "limit": limit,
            "city": city,
            "kind": kind,
        }
        connection = await self.session.connection()
        rows = await connection.execute(_SERVED[bool(city), bool(kind)], parameters)
        found = [StoredRow(*row) for row in rows.tuples().all()]
        if len(found) == limit:
            return StoredList(True, True, found)
        truncated = await connection.scalar(_TRUNCATED, parameters)
        return StoredList(truncated is not None, bool(truncated), found)

    async def has_rows(self, version_id: int) -> bool:
        found = await self.session.scalar(
            select(StoredRecommendation.id)
            .where(StoredRecommendation.model_version_id == version_id)
            .limit(1)
        )
        return found is not None

    async def replace(
        self, version_id: int, company_ids: Sequence[UUID] | None, rows: Sequence[dict[str, Any]]
    ) -> None:
        """The version's rows (of ``company_ids``, or all) replaced by ``rows``, with Core bulk statements."""
        s = StoredRecommendation
        if company_ids is None:
            await self.session.execute(
                delete(s).where(s.model_version_id == version_id).execution_options(synchronize_session=False)
            )
        else:
            for part in _chunks(company_ids):
                await self.session.execute(
                    delete(s)
                    .where(s.model_version_id == version_id, s.company_id.in_(part))
                    .execution_options(synchronize_session=False)
                )
        await self.insert(rows)

    async def insert(self, rows: Sequence[dict[str, Any]]) -> None:
        # Core, not ORM, bulk inserts: the rows are never read back as objects in this transaction.
        table = cast_table(StoredRecommendation)
        for start in range(0, len(rows), 5 * CHUNK):
            await self.session.execute(insert(table), list(rows[start : start + 5 * CHUNK]))

    async def forget_lead(self, lead_id: UUID) -> None:
        """The lead's rows of every version: an older one would serve its old profile after a rollback."""
        await self.session.execute(
            delete(StoredRecommendation).where(StoredRecommendation.lead_id == lead_id)
        )

    async def forget_company(self, company_id: UUID) -> None:
        """The company's rows of every version (see :meth:`forget_lead`)."""
        await self.session.execute(
            delete(StoredRecommendation).where(StoredRecommendation.company_id == company_id)
        )

    async def lock(self, key: str) -> None:
        """Serialise the writers of one company's or lead's rows until this transaction ends. PostgreSQL
        needs it (two writers could both delete, then both insert the same pairs); SQLite's transactions
        take the one write lock at BEGIN already."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))

    async def bounds(self, version_id: int) -> dict[UUID, ListBounds]:
        """Per company with stored rows: how many, the lowest ranking score, and whether it was cut."""
        s = StoredRecommendation
        rows = await self.session.execute(
            select(
                s.company_id, func.count(), func.min(s.ranking_score), func.max(cast(s.truncated, Integer))
            )
            .where(s.model_version_id == version_id)
            .group_by(s.company_id)
        )
        return {c: ListBounds(n, low, bool(cut)) for c, n, low, cut in rows.tuples().all()}

    async def drop_lowest(self, version_id: int, lowest: Sequence[tuple[UUID, float]]) -> None:
        """Remove each company's last row, whose ranking score is the given (lowest) one, and mark its list
        as cut. One row only: leads can tie on the lowest score, and the list must keep its length."""
        if not lowest:
            return
        table = cast_table(StoredRecommendation)
        last = (
            select(table.c.id)
            .where(
                table.c.model_version_id == version_id,
                table.c.company_id == bindparam("company"),
                table.c.ranking_score == bindparam("lowest"),
            )
            # Serving orders by (ranking_score desc, lead_id): of tied rows, the one with the largest id is last.
            .order_by(table.c.lead_id.desc())
            .limit(1)
            .scalar_subquery()
        )
        await self.session.execute(
            delete(table).where(table.c.id == last),
            [{"company": c, "lowest": score} for c, score in lowest],
        )
        await self.mark_truncated(version_id, [c for c, _ in lowest])

    async def mark_truncated(self, version_id: int, company_ids: Sequence[UUID]) -> None:
        s = StoredRecommendation
        for part in _chunks(company_ids):
            await self.session.execute(
                update(s)
                .where(s.model_version_id == version_id, s.company_id.in_(part))
                .values(truncated=True)
                .execution_options(synchronize_session=False)
            )


def cast_table(model: type[StoredRecommendation]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _chunks(ids: Sequence[UUID]) -> list[Sequence[UUID]]:
    # Bound the statement's parameters (SQLite allows 32766 per statement).
    return [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]


class CandidateRepository(SQLAlchemyAsyncRepository[Company]):
    model_type = Company

    async def approved(self) -> Sequence[Company]:
        rows = await self.session.scalars(
            select(Company).where(Company.status == CompanyStatus.APPROVED.value).order_by(Company.id)
        )
        return rows.all()

    async def approved_keys(self, company_ids: Sequence[UUID] | None = None) -> list[CompanyKey]:
        """The approved companies (of ``company_ids``, if given), without profiles."""
        query = select(Company.id, Company.external_id, Company.updated_at).where(
            Company.status == CompanyStatus.APPROVED.value
        )
        if company_ids is not None:
            query = query.where(Company.id.in_(company_ids))
        rows = await self.session.execute(query.order_by(Company.id))
        return [CompanyKey(*row) for row in rows.tuples().all()]

    async def by_ids(self, company_ids: Sequence[UUID]) -> list[Company]:
        found: list[Company] = []
        for part in _chunks(company_ids):
            found.extend((await self.session.scalars(select(Company).where(Company.id.in_(part)))).all())
        return found

    async def mission(self, mission_id: UUID) -> Mission | None:
        mission: Mission | None = await self.session.get(Mission, mission_id)
        return mission

    async def participants(self, mission_id: UUID) -> dict[UUID, str]:
        rows = await self.session.execute(
            select(MissionParticipant.company_id, MissionParticipant.status).where(
                MissionParticipant.mission_id == mission_id
            )
        )
        return dict(rows.tuples().all())

    async def past_participations(self, mission_id: UUID) -> dict[UUID, int]:
        rows = await self.session.execute(
            select(MissionParticipant.company_id, func.count())
            .where(MissionParticipant.mission_id != mission_id)
            .group_by(MissionParticipant.company_id)
        )
        return dict(rows.tuples().all())

    async def lead(self, lead_id: UUID) -> Lead | None:
        lead: Lead | None = await self.session.get(Lead, lead_id)
        return lead

    async def settled_companies(self, lead_id: UUID) -> set[UUID]:
        """Companies that declined or already pursued the lead."""
        rows = await self.session.scalars(
            select(Interaction.company_id).where(
                Interaction.lead_id == lead_id, Interaction.kind.in_(SETTLED_KINDS)
            )
        )
        return set(rows.all())
