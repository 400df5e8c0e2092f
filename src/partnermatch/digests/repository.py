"""Every query of a digest's content: columns, not ORM objects, and one statement per part of a digest.

A digest run reads thousands of companies one after another: each read here is a single select of the
columns the digest shows, with its exclusions as ``NOT EXISTS`` subqueries on indexed columns.
"""

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import ColumnElement, exists, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from partnermatch.cities.models import City
from partnermatch.companies.models import Company, CompanySector, CompanyTargetCity
from partnermatch.digests.models import SentDigest
from partnermatch.enums import CompanyStatus, InteractionKind, InteractionSource, MissionStatus
from partnermatch.interactions.models import Interaction
from partnermatch.leads.models import Lead
from partnermatch.missions.models import Mission, MissionParticipant, MissionSector
from partnermatch.recommendations.models import ModelVersion, StoredRecommendation
from partnermatch.recommendations.repository import SETTLED_KINDS, recommendable

# Having acted on a lead is every kind but being shown it (impression) or opening it (view).
ACTED_KINDS = tuple(
    k.value for k in InteractionKind if k not in (InteractionKind.IMPRESSION, InteractionKind.VIEW)
)
# What ``recommendable`` does not exclude already (it excludes the settled kinds): ``interested``.
ACTED_UNSETTLED_KINDS = tuple(k for k in ACTED_KINDS if k not in SETTLED_KINDS)


@dataclass(frozen=True)
class CompanyHeader:
    id: UUID
    name: str
    status: str


@dataclass(frozen=True)
class LeadRow:
    """A stored recommendation as a digest shows it (reasons as stored, deadline not yet counted)."""

    lead_id: UUID
    title: str
    kind: str
    city_id: str
    city_name: str
    deadline: date | None
    reasons: list[dict[str, Any]]
    """Stored ``ranking.reasons.Reason`` values."""


@dataclass(frozen=True)
class MissionRow:
    mission_id: UUID
    title: str
    city_id: str
    city_name: str
    starts_on: date
    ends_on: date


class DigestLeadRepository(SQLAlchemyAsyncRepository[StoredRecommendation]):
    model_type = StoredRecommendation

    async def active_version_id(self) -> int | None:
        found: int | None = await self.session.scalar(
            select(ModelVersion.id).where(ModelVersion.is_active.is_(True))
        )
        return found

    async def companies(self, company_ids: Collection[UUID]) -> list[CompanyHeader]:
        rows = await self.session.execute(
            select(Company.id, Company.name, Company.status).where(Company.id.in_(company_ids))
        )
        return [CompanyHeader(*row) for row in rows.tuples().all()]

    async def new_leads(
        self,
        version_id: int,
        company_ids: Collection[UUID],
        *,
        today: date,
        now: datetime,
        shown_since: datetime,
        shown_before: datetime,
        limit: int,
    ) -> dict[UUID, list[LeadRow]]:
        """Each company's stored rows of the version that serving would still show (``recommendable``),
        less those it acted on in any way (:data:`ACTED_KINDS`) and those logged as shown in a digest
        to it at ``shown_since <= at < shown_before``; at most ``limit`` a company, best first, as serving
        orders them. One statement for all the companies."""
        s = StoredRecommendation
        acted = exists().where(
            Interaction.company_id == s.company_id,
            Interaction.lead_id == Lead.id,
            Interaction.kind.in_(ACTED_UNSETTLED_KINDS),
        )
        in_digest = exists().where(
            Interaction.company_id == s.company_id,
            Interaction.lead_id == Lead.id,
            Interaction.kind == InteractionKind.IMPRESSION.value,
            Interaction.source == InteractionSource.DIGEST.value,
            Interaction.at >= shown_since,
            Interaction.at < shown_before,
        )
        place = (
            func.row_number()
            .over(partition_by=s.company_id, order_by=(s.ranking_score.desc(), s.lead_id))
            .label("place")
        )
        # Aliased: ``recommendable``'s subquery on ``City`` must not correlate with this join.
        city = aliased(City)
        ranked = (
            select(
                s.company_id,
                s.lead_id,
                Lead.title,
                Lead.kind,
                Lead.city_id,
                city.name.label("city_name"),
                Lead.deadline,
                s.reasons,
                place,
            )
            .join(Lead, Lead.id == s.lead_id)
            .join(city, city.id == Lead.city_id)
            .where(
                s.model_version_id == version_id,
                s.company_id.in_(company_ids),
                *recommendable(s.company_id, today, now),
                ~acted,
                ~in_digest,
            )
            .subquery()
        )
        rows = await self.session.execute(
            select(*(c for c in ranked.c if c.name != "place"))
            .where(ranked.c.place <= limit)
            .order_by(ranked.c.company_id, ranked.c.place)
        )
        found: dict[UUID, list[LeadRow]] = {}
        for company_id, *lead in rows.tuples().all():
            found.setdefault(company_id, []).append(LeadRow(*lead))
        return found


class DigestMissionRepository(SQLAlchemyAsyncRepository[Mission]):
    model_type = Mission

    async def fitting(
        self, company_ids: Collection[UUID], *, today: date, limit: int
    ) -> dict[UUID, list[MissionRow]]:
        """Each company's planned missions starting after ``today`` that fit it, soonest first, at most
        ``limit``: see :func:`mission_fits`; a mission the company has any participant row on is left
        out. One statement for all the companies (missions are few: every pair is looked at)."""
        participates = exists().where(
            MissionParticipant.mission_id == Mission.id, MissionParticipant.company_id == Company.id
        )
        rows = await self.session.execute(
            select(
                Company.id,
                Mission.id,
                Mission.title,
                Mission.city_id,
                City.name,
                Mission.starts_on,
                Mission.ends_on,
            )
            .select_from(Company)
            .join(Mission, true())
            .join(City, City.id == Mission.city_id)
            .where(
                Company.id.in_(company_ids),
                Mission.status == MissionStatus.PLANNED.value,
                Mission.starts_on > today,
                *mission_fits(Company.id),
                ~participates,
            )
            .order_by(Company.id, Mission.starts_on, Mission.id)
        )
        found: dict[UUID, list[MissionRow]] = {}
        for company_id, mission_id, title, city_id, city_name, starts_on, ends_on in rows.tuples().all():
            chosen = found.setdefault(company_id, [])
            if len(chosen) < limit:
                chosen.append(MissionRow(mission_id, title, city_id, city_name, starts_on, ends_on))
        return found


def division(code: Any) -> ColumnElement[str]:
    """A NACE code's division, its first two digits (``62.01`` -> ``62``)."""
    return func.substr(code, 1, 2)


def mission_fits(company_id: UUID | InstrumentedAttribute[UUID]) -> list[ColumnElement[bool]]:
    """Conditions on ``Mission`` for a company (an id, or the column of a query over companies):

    - city: the mission's city is one of the company's target cities, or the company targets none;
    - sectors: one of the mission's sectors and one of the company's lie in the same NACE division
      (first two digits: ``62.01`` fits ``62.09`` and ``62``), or the mission names no sectors (it is
      open to every sector). A company without sectors fits only such missions.
    """
    targets = exists().where(CompanyTargetCity.company_id == company_id)
    targeted = exists().where(
        CompanyTargetCity.company_id == company_id, CompanyTargetCity.city_id == Mission.city_id
    )
    # Two levels down, a subquery does not correlate by itself with the query over companies.
    company_divisions = (
        select(division(CompanySector.code)).where(CompanySector.company_id == company_id).correlate(Company)
    )
    any_sector = exists().where(MissionSector.mission_id == Mission.id)
    shared_division = exists().where(
        MissionSector.mission_id == Mission.id, division(MissionSector.code).in_(company_divisions)
    )
    return [or_(~targets, targeted), or_(~any_sector, shared_division)]


class DigestRunRepository:
    """What a digest run walks through: approved companies in id order, and the digests already sent."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def approved_count(self) -> int:
        approved = Company.status == CompanyStatus.APPROVED.value
        return int(await self.session.scalar(select(func.count()).select_from(Company).where(approved)) or 0)

    async def approved_after(self, after: UUID | None, limit: int) -> list[UUID]:
        query = (
            select(Company.id)
            .where(Company.status == CompanyStatus.APPROVED.value)
            .order_by(Company.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(Company.id > after)
        return list((await self.session.scalars(query)).all())

    async def sent(self, user_ids: Sequence[UUID], periods: Iterable[date]) -> set[tuple[UUID, date]]:
        """(member, period) of the digests already sent to these members in these periods."""
        rows = await self.session.execute(
            select(SentDigest.user_id, SentDigest.period).where(
                SentDigest.user_id.in_(user_ids), SentDigest.period.in_(list(periods))
            )
        )
        return set(rows.tuples().all())
