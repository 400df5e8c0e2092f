from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService

from partnermatch import events, jobs
from partnermatch.access import Principal
from partnermatch.clock import parse_instant
from partnermatch.companies.service import CompanyService
from partnermatch.db import reads_only
from partnermatch.enums import InteractionKind, InteractionSource
from partnermatch.errors import Conflict, InvalidInput
from partnermatch.interactions.events import IntroductionRequested
from partnermatch.interactions.models import Interaction
from partnermatch.interactions.repository import InteractionFilters, InteractionRepository
from partnermatch.interactions.schemas import FeedbackCreate, InteractionCreate
from partnermatch.jobs import JobContext
from partnermatch.leads.service import LeadService

# The dataset format records a rank only where a lead was shown in a list.
RANKED_KINDS = frozenset({InteractionKind.IMPRESSION, InteractionKind.VIEW})
# A list shown again this soon (a reload, the back button) is the same look at it: recorded once.
SEEN_AGAIN = timedelta(minutes=1)


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
        if data.reason is not None and data.kind is not InteractionKind.DECLINED:
            raise InvalidInput.for_field("reason", "only a declined lead has a reason")
        interaction = Interaction(
            company_id=data.company_id,
            lead_id=data.lead_id,
            kind=data.kind.value,
            at=at,
            position=data.position,
            reason=None if data.reason is None else data.reason.value,
        )
        interaction = await self.repository.add(interaction)
        if data.kind is InteractionKind.CONTACTED:
            await events.publish(
                self.repository.session, IntroductionRequested(data.company_id, data.lead_id)
            )
        return interaction

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
                reason=data.reason,
            )
        )

    async def unseen(
        self, company_id: UUID, kind: InteractionKind, seen: Sequence[tuple[UUID, int | None]], at: datetime
    ) -> list[tuple[UUID, int | None]]:
        """Of (lead, position) in the order shown, those the company did not see the same way within
        :data:`SEEN_AGAIN` of ``at``."""
        return (await self._unseen({company_id: seen}, kind, at))[company_id]

    async def _unseen(
        self, seen: Mapping[UUID, Sequence[tuple[UUID, int | None]]], kind: InteractionKind, at: datetime
    ) -> dict[UUID, list[tuple[UUID, int | None]]]:
        recent = await self.repository.leads_seen(list(seen), kind.value, at - SEEN_AGAIN)
        return {
            company: [
                (lead, position) for lead, position in dict(shown).items() if (company, lead) not in recent
            ]
            for company, shown in seen.items()
        }

    async def record_seen(
        self,
        company_id: UUID,
        kind: InteractionKind,
        seen: Sequence[tuple[UUID, int | None]],
        at: datetime,
        source: InteractionSource | None = None,
    ) -> int:
        """Impressions of a list as it was shown, or the view of a lead: (lead, position) in the order
        shown, where (``source``: the digest; None: the portal or the API). A lead the company saw the
        same way within :data:`SEEN_AGAIN` is not recorded again. Returns how many were recorded."""
        return await self.record_seen_by({company_id: seen}, kind, at, source)

    async def record_seen_by(
        self,
        seen: Mapping[UUID, Sequence[tuple[UUID, int | None]]],
        kind: InteractionKind,
        at: datetime,
        source: InteractionSource | None = None,
    ) -> int:
        """:meth:`record_seen` for several companies at once (a batch of digests): one read, one insert."""
        fresh = await self._unseen(seen, kind, at)
        await self.repository.insert_seen(
            [
                {
                    "company_id": company,
                    "lead_id": lead,
                    "kind": kind.value,
                    "at": at,
                    "position": position,
                    "source": None if source is None else source.value,
                }
                for company, shown in fresh.items()
                for lead, position in shown
            ]
        )
        return sum(len(shown) for shown in fresh.values())


@jobs.job("interactions.record_seen")
async def record_seen_later(
    context: JobContext,
    *,
    company_id: UUID,
    kind: InteractionKind,
    seen: list[tuple[UUID, int | None]],
    at: datetime,
    source: InteractionSource | None = None,
) -> None:
    """Job: what a page showed, recorded after the page went out (a page is a read and writes nothing).

    A page opened again within the minute shows what was already recorded. That is found in a read,
    which on SQLite does not wait for the write lock: only a list with something new to record queues
    for it (and checks again there, since another job may have recorded it meanwhile)."""
    with reads_only():
        async with context.sessions() as session:
            if not await InteractionService(session=session).unseen(company_id, kind, seen, at):
                return
    async with context.sessions.begin() as session:
        await InteractionService(session=session).record_seen(company_id, kind, seen, at, source)
