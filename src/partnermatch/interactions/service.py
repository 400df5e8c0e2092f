from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService

from partnermatch.access import Principal
from partnermatch.clock import parse_instant
from partnermatch.companies.service import CompanyService
from partnermatch.enums import InteractionKind
from partnermatch.errors import Conflict, InvalidInput
from partnermatch.interactions.models import Interaction
from partnermatch.interactions.repository import InteractionFilters, InteractionRepository
from partnermatch.interactions.schemas import FeedbackCreate, InteractionCreate
from partnermatch.leads.service import LeadService

# The dataset format records a rank only where a lead was shown in a list.
RANKED_KINDS = frozenset({InteractionKind.IMPRESSION, InteractionKind.VIEW})


class InteractionService(SQLAlchemyAsyncRepositoryService[Interaction, InteractionRepository]):
    repository_type = InteractionRepository

    async def search(self, filters: InteractionFilters) -> tuple[Sequence[Interaction], int]:
        if filters.since is not None and filters.until is not None and filters.until < filters.since:
            raise InvalidInput.for_field("until", "must not be before since")
        return await self.repository.search(filters)

    async def record(self, data: InteractionCreate) -> Interaction:
        session = self.repository.session
        if not await CompanyService(session=session).exists(id=data.company_id):
            raise InvalidInput.for_field("company_id", f"no company with id {data.company_id}")
        if not await LeadService(session=session).exists(id=data.lead_id):
            raise InvalidInput.for_field("lead_id", f"no lead with id {data.lead_id}")
        if data.position is not None and data.kind not in RANKED_KINDS:
            raise InvalidInput.for_field("position", "only impressions and views have a position")
        at = parse_instant("at", data.at) or datetime.now(UTC)
        if await self.repository.event_exists(data.company_id, data.lead_id, data.kind, at):
            raise Conflict(f"this {data.kind} event of the company with the lead at {at.isoformat()} exists")
        interaction = Interaction(
            company_id=data.company_id,
            lead_id=data.lead_id,
            kind=data.kind.value,
            at=at,
            position=data.position,
        )
        return await self.repository.add(interaction)

    async def record_feedback(
        self, company_id: UUID, principal: Principal, data: FeedbackCreate
    ) -> Interaction:
        """What a company did with a recommended lead. For a member, another company is not found, as
        if it did not exist."""
        company = await CompanyService(session=self.repository.session).get_company(company_id, principal)
        return await self.record(
            InteractionCreate(
                company_id=company.id,
                lead_id=data.lead_id,
                kind=InteractionKind(data.kind),
                position=data.position,
            )
        )
