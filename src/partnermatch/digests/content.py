"""What one company's digest holds: its new recommendations and the trade missions that fit it."""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.clock import end_of_day, local_date
from partnermatch.digests.repository import DigestLeadRepository, DigestMissionRepository, MissionRow
from partnermatch.enums import CompanyStatus
from partnermatch.ranking.reasons import Reason, with_deadline
from partnermatch.settings import Settings


@dataclass(frozen=True)
class DigestLead:
    lead_id: UUID
    title: str
    kind: str
    """A LeadKind value."""
    city_id: str
    city_name: str
    """As the cities table has it; the renderer words it in the reader's language (i18n.city_name)."""
    deadline: date | None
    reasons: tuple[Reason, ...]
    position: int
    """1 for the first lead of the digest: logged with its impression."""


@dataclass(frozen=True)
class DigestMission:
    mission_id: UUID
    title: str
    city_id: str
    city_name: str
    starts_on: date
    ends_on: date


@dataclass(frozen=True)
class DigestContent:
    company_id: UUID
    company_name: str
    leads: tuple[DigestLead, ...]
    missions: tuple[DigestMission, ...]


async def digest_contents(
    session: AsyncSession, company_ids: Collection[UUID], *, now: datetime, settings: Settings
) -> dict[UUID, DigestContent]:
    """What the digests of these companies hold at ``now``, by company; only approved companies are in
    it (only they get recommendations), and none without an active model version.

    Leads: the company's stored recommendations of the active version, in their stored order, that
    serving would still show (open, unexpired, published, in an active city, not settled by it), less the
    leads it acted on (any interaction but an impression or a view: interested, declined, contacted,
    introduced, deal) and those shown in one of its digests (impressions with source ``digest``) on one of
    the Berlin days since the day ``digest_repeat_weeks`` weeks ago, that day and today excluded: with 8,
    a lead of the digest exactly 8 weeks ago may come again, and a rerun on the same day (after a crash)
    finds the same leads as the first run. At most ``digest_leads``; reasons as serving
    gives them (the deadline counted from today). Only stored rows are read: a company without rows for
    the active version gets no leads, which the caller reads as nothing new.

    Missions: at most ``digest_missions`` planned missions starting after today (Berlin) that fit the
    company (``repository.mission_fits``: a target city, or any if it targets none; a shared NACE
    division, or any if the mission names no sectors) and that it has no participant row on (applied,
    invited, participated or declined), soonest first.

    Four queries, whatever the number of companies and leads (three when ``digest_missions`` is 0): a
    digest run reads its companies fifty at a time.
    """
    leads = DigestLeadRepository(session=session)
    version_id = await leads.active_version_id()
    if version_id is None or not company_ids:
        return {}
    approved = [c for c in await leads.companies(company_ids) if c.status == CompanyStatus.APPROVED.value]
    if not approved:
        return {}
    ids = [company.id for company in approved]
    today = local_date(now)
    rows = await leads.new_leads(
        version_id,
        ids,
        today=today,
        now=now,
        shown_since=end_of_day(today - timedelta(weeks=settings.digest_repeat_weeks)),
        shown_before=end_of_day(today - timedelta(days=1)),
        limit=settings.digest_leads,
    )
    missions: dict[UUID, list[MissionRow]] = {}
    if settings.digest_missions:
        missions = await DigestMissionRepository(session=session).fitting(
            ids, today=today, limit=settings.digest_missions
        )
    return {
        company.id: DigestContent(
            company.id,
            company.name,
            tuple(
                DigestLead(
                    lead_id=row.lead_id,
                    title=row.title,
                    kind=row.kind,
                    city_id=row.city_id,
                    city_name=row.city_name,
                    deadline=row.deadline,
                    reasons=with_deadline([Reason.from_stored(r) for r in row.reasons], row.deadline, today),
                    position=position,
                )
                for position, row in enumerate(rows.get(company.id, []), start=1)
            ),
            tuple(
                DigestMission(m.mission_id, m.title, m.city_id, m.city_name, m.starts_on, m.ends_on)
                for m in missions.get(company.id, [])
            ),
        )
        for company in approved
    }


async def digest_content(
    session: AsyncSession, company_id: UUID, *, now: datetime, settings: Settings
) -> DigestContent | None:
    """One company's :func:`digest_contents`; None without an active model version, or for a company
    that is unknown or not approved."""
    return (await digest_contents(session, [company_id], now=now, settings=settings)).get(company_id)
