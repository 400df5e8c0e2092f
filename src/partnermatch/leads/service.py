from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import msgspec
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService

from partnermatch import events, jobs
from partnermatch.audit.recorder import acting_as, system_actor
from partnermatch.cities.service import CityService
from partnermatch.clock import check_plausible, end_of_day, local_date, parse_instant
from partnermatch.db import reads_only
from partnermatch.enums import LeadStatus
from partnermatch.errors import Conflict, InvalidInput, NotFound
from partnermatch.jobs import JobContext
from partnermatch.leads.events import LeadCreated, LeadProfileChanged, LeadStatusChanged
from partnermatch.leads.models import Lead, LeadSector
from partnermatch.leads.repository import LeadFilters, LeadRepository
from partnermatch.leads.schemas import LeadCreate, LeadUpdate
from partnermatch.reference import check_languages
from partnermatch.sectors.service import SectorService, replace_sector_links, sector_links

# Leads closed per transaction by expire_leads: on SQLite a transaction holds the one write lock.
EXPIRY_BATCH = 200
EXPIRY_JOB = "leads.expire"


def deadline_passed(lead: Lead, now: datetime) -> bool:
    return lead.deadline is not None and lead.deadline < local_date(now)


def is_open(lead: Lead, now: datetime) -> bool:
    return lead.status == LeadStatus.OPEN and not deadline_passed(lead, now)


def days_to_deadline(lead: Lead, now: datetime) -> int | None:
    return None if lead.deadline is None else (lead.deadline - local_date(now)).days


def _check_deadline(deadline: date | None, published_at: datetime) -> None:
    if deadline is not None and deadline < local_date(published_at):
        raise InvalidInput.for_field(
            "deadline", f"must not be before the publication date {local_date(published_at)} (Berlin)"
        )


class LeadService(SQLAlchemyAsyncRepositoryService[Lead, LeadRepository]):
    """Leads in partner cities. Each change is published as an event (``leads/events.py``)."""

    repository_type = LeadRepository

    async def get_lead(self, lead_id: UUID) -> Lead:
        lead = await self.repository.get_one_or_none(id=lead_id)
        if lead is None:
            raise NotFound.for_id("lead", lead_id)
        return lead

    async def search(self, filters: LeadFilters) -> tuple[Sequence[Lead], int]:
        if (
            filters.min_budget is not None
            and filters.max_budget is not None
            and filters.min_budget > filters.max_budget
        ):
            raise InvalidInput.for_field("max_budget", "must not be below min_budget")
        check_plausible("open_at", filters.open_at)
        if filters.open_at is not None:
            filters = replace(filters, published_before=end_of_day(filters.open_at))
        return await self.repository.search(filters)

    async def create_lead(self, data: LeadCreate) -> Lead:
        await self._validate(city=data.city, sectors=data.sectors, languages=data.languages)
        check_plausible("deadline", data.deadline)
        published_at = parse_instant("published_at", data.published_at) or datetime.now(UTC)
        _check_deadline(data.deadline, published_at)
        if data.external_id and await self.repository.by_external_id(data.external_id):
            raise Conflict(f"a lead with external_id {data.external_id!r} exists")
        fields = msgspec.structs.asdict(data)
        sectors, city = fields.pop("sectors"), fields.pop("city")
        fields["published_at"] = published_at
        lead = Lead(**fields, city_id=city)
        lead.sector_links = sector_links(LeadSector, sectors)
        lead = await self.repository.add(lead)
        await events.publish(self.repository.session, LeadCreated(lead.id))
        return lead

    async def change(self, lead_id: UUID, data: LeadUpdate) -> Lead:
        lead = await self.get_lead(lead_id)
        changes: dict[str, Any] = {
            k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET
        }
        changed = set(changes)
        if "published_at" in changes:
            changes["published_at"] = parse_instant("published_at", changes["published_at"])
        check_plausible("deadline", changes.get("deadline"))
        # A lead may stay in a city suspended since it was published; it may not move into one.
        moved_to = changes.get("city") if changes.get("city") != lead.city_id else None
        await self._validate(
            city=moved_to, sectors=changes.get("sectors"), languages=changes.get("languages")
        )
        if "deadline" in changes or "published_at" in changes:
            _check_deadline(
                changes.get("deadline", lead.deadline), changes.get("published_at", lead.published_at)
            )
        if "sectors" in changes:
            await replace_sector_links(self.repository.session, lead, LeadSector, changes.pop("sectors"))
        if "city" in changes:
            lead.city_id = changes.pop("city")
        for key, value in changes.items():
            setattr(lead, key, value)
        if changed:
            # Set here: a change of sectors alone writes no column of the lead's row (see CompanyService).
            lead.updated_at = datetime.now(UTC)
        lead = await self.repository.update(lead)
        if changed:
            await events.publish(self.repository.session, LeadProfileChanged(lead.id, frozenset(changed)))
        return lead

    async def set_status(self, lead_id: UUID, status: LeadStatus) -> Lead:
        lead = await self.get_lead(lead_id)
        if status == LeadStatus.OPEN:
            if deadline_passed(lead, datetime.now(UTC)):
                raise InvalidInput.for_field(
                    "deadline", f"passed on {lead.deadline}; move the deadline before reopening the lead"
                )
            # Reopening puts the lead back in front of companies: new activity, like creating it.
            await self._validate(city=lead.city_id, sectors=None, languages=None)
        previous = LeadStatus(lead.status)
        lead.status = status.value
        lead = await self.repository.update(lead)
        if previous is not status:
            await events.publish(self.repository.session, LeadStatusChanged(lead.id, previous, status))
        return lead

    async def archive(self, lead_id: UUID) -> Lead:
        return await self.set_status(lead_id, LeadStatus.CLOSED)

    async def _validate(
        self, *, city: str | None, sectors: Sequence[str] | None, languages: Sequence[str] | None
    ) -> None:
        if city is not None:
            await CityService(session=self.repository.session).require_active("city", [city])
        if sectors is not None:
            await SectorService(session=self.repository.session).validate_codes("sectors", sectors)
        if languages is not None:
            check_languages(languages)


@jobs.job(EXPIRY_JOB, exclusive=True)
async def expire_leads(context: JobContext, *, now: datetime) -> int:
    """Scheduled job: closes every open lead whose deadline has passed at ``now``; how many it closed.

    A deadline on day D holds through the end of D in Berlin (:func:`deadline_passed`), so a lead
    closes at the first run after that midnight. Each lead is closed by :meth:`LeadService.set_status`,
    as staff close one: ``LeadStatusChanged`` is published (its stored recommendations go) and the
    audit log records the change, by the system (``audit.recorder.system_actor``). Closed leads no
    longer match, so a second run closes nothing."""
    today = local_date(now)
    # Looked for in a read first: most runs find nothing, and a read takes no SQLite write lock.
    with reads_only():
        async with context.sessions() as session:
            if not await LeadRepository(session=session).any_expired(today):
                return 0
    closed = 0
    with acting_as(system_actor(EXPIRY_JOB)):
        while True:
            async with context.sessions.begin() as session:
                ids = await LeadRepository(session=session).expired_ids(today, EXPIRY_BATCH)
                leads = LeadService(session=session)
                for lead_id in ids:
                    await leads.set_status(lead_id, LeadStatus.CLOSED)
            closed += len(ids)
            if len(ids) < EXPIRY_BATCH:
                return closed
