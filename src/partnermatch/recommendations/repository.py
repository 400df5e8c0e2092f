from collections.abc import Sequence
from datetime import date, datetime
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import exists, func, or_, select, update

from partnermatch.cities.models import City
from partnermatch.companies.models import Company
from partnermatch.enums import CityStatus, CompanyStatus, InteractionKind, LeadStatus
from partnermatch.interactions.models import Interaction
from partnermatch.leads.models import Lead
from partnermatch.missions.models import Mission, MissionParticipant
from partnermatch.recommendations.models import ModelVersion

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


class RecommendableLeadRepository(SQLAlchemyAsyncRepository[Lead]):
    model_type = Lead

    async def open_for(
        self, company_id: UUID, today: date, now: datetime, city: str | None, kind: str | None
    ) -> Sequence[Lead]:
        """Open, unexpired, published leads in active cities that the company has not settled."""
        settled = exists().where(
            Interaction.company_id == company_id,
            Interaction.lead_id == Lead.id,
            Interaction.kind.in_(SETTLED_KINDS),
        )
        active_city = exists().where(City.id == Lead.city_id, City.status == CityStatus.ACTIVE.value)
        conditions = [
            Lead.status == LeadStatus.OPEN.value,
            or_(Lead.deadline.is_(None), Lead.deadline >= today),
            Lead.published_at <= now,
            active_city,
            ~settled,
        ]
        if city:
            conditions.append(Lead.city_id == city)
        if kind:
            conditions.append(Lead.kind == kind)
        rows = await self.session.scalars(
            select(Lead).where(*conditions).order_by(Lead.published_at.desc(), Lead.id).limit(MAX_CANDIDATES)
        )
        return rows.all()


class CandidateRepository(SQLAlchemyAsyncRepository[Company]):
    model_type = Company

    async def approved(self) -> Sequence[Company]:
        rows = await self.session.scalars(
            select(Company).where(Company.status == CompanyStatus.APPROVED.value).order_by(Company.id)
        )
        return rows.all()

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
