"""A company's digest content: its new stored recommendations and the trade missions that fit it."""

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID

import pytest
from httpx import AsyncClient as Client
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.cities.models import City
from partnermatch.clock import local_date, local_zone
from partnermatch.companies.models import Company, CompanySector, CompanyTargetCity
from partnermatch.digests.content import DigestContent, digest_content
from partnermatch.enums import (
    CompanyStatus,
    InteractionKind,
    InteractionSource,
    LeadStatus,
    MissionStatus,
    ParticipantStatus,
)
from partnermatch.interactions.models import Interaction
from partnermatch.leads.models import Lead
from partnermatch.missions.models import Mission, MissionParticipant, MissionSector
from partnermatch.ranking.reasons import sentence
from partnermatch.recommendations.batch import store
from partnermatch.recommendations.models import ModelVersion, StoredRecommendation
from partnermatch.recommendations.repository import RecommendableLeadRepository
from partnermatch.settings import Settings
from tests.conftest import create_company

# The demo data and its trained model, as the recommendation tests get them (a conftest of theirs).
from tests.recommendations.conftest import Trial, active_model, imported, trial
from tests.recommendations.test_recommendations import busiest_company, recommend

__all__ = ["active_model", "imported", "trial"]

NOW = datetime.now(UTC)
TODAY = local_date(NOW)


def days_ago(days: int) -> datetime:
    """Noon in Berlin of the day ``days`` before today: the same Berlin day whatever the time zone shift."""
    return datetime.combine(TODAY - timedelta(days=days), time(12), tzinfo=local_zone())


def with_digest(settings: Settings, **values: Any) -> Settings:
    return settings.model_copy(
        update={"digest_leads": 10, "digest_repeat_weeks": 8, "digest_missions": 3, **values}
    )


async def content(
    db_session: AsyncSession, company_id: UUID, settings: Settings, **values: Any
) -> DigestContent:
    found = await digest_content(db_session, company_id, now=NOW, settings=with_digest(settings, **values))
    assert found is not None
    return found


async def recommendable_leads(db_session: AsyncSession, n: int) -> list[Lead]:
    """``n`` leads that serving would show any company without history."""
    open_leads = await RecommendableLeadRepository(session=db_session).open_leads(TODAY, NOW)
    assert len(open_leads) >= n
    return [await db_session.get_one(Lead, lead.id) for lead in open_leads[:n]]


async def put_rows(
    db_session: AsyncSession,
    version: ModelVersion,
    company_id: UUID,
    ranked: list[Lead],
    *,
    truncated: bool = True,
) -> None:
    """Stored rows of ``ranked`` best first, inserted in another order (and with ids that do not sort so)."""
    for index in reversed(range(len(ranked))):
        lead = ranked[index]
        db_session.add(
            StoredRecommendation(
                model_version_id=version.id,
                company_id=company_id,
                lead_id=lead.id,
                ranking_score=10.0 - index,
                score=0.9 - index / 100,
                method="cold_start",
                reasons=[
                    {"key": "targets_city", "params": {"city": lead.city_id, "city_name": "stored name"}},
                    # As the batch stored it days ago: the digest counts the days again from today.
                    {"key": "deadline", "params": {"days": 999}},
                ],
                truncated=truncated,
                computed_at=NOW - timedelta(days=3),
            )
        )
    await db_session.flush()


async def interact(
    db_session: AsyncSession,
    company_id: UUID,
    lead: Lead,
    kind: InteractionKind,
    at: datetime,
    source: InteractionSource | None = None,
) -> None:
    db_session.add(
        Interaction(
            company_id=company_id,
            lead_id=lead.id,
            kind=kind.value,
            at=at,
            position=1,
            source=None if source is None else source.value,
        )
    )
    await db_session.flush()


def ids(found: DigestContent) -> list[UUID]:
    return [lead.lead_id for lead in found.leads]


@pytest.fixture
async def company_id(db_session: AsyncSession, active_model: ModelVersion) -> UUID:
    """A new approved company (sector 62.01, no target cities, no history) of the demo data."""
    return await create_company(db_session, "Digest GmbH")


async def test_leads_follow_the_stored_rank_with_what_the_portal_shows_of_them(
    db_session: AsyncSession, active_model: ModelVersion, company_id: UUID, settings: Settings
) -> None:
    leads = await recommendable_leads(db_session, 6)
    await put_rows(db_session, active_model, company_id, leads)
    found = await content(db_session, company_id, settings)
    assert found.company_id == company_id
    assert found.company_name == "Digest GmbH"
    assert ids(found) == [lead.id for lead in leads]
    assert [lead.position for lead in found.leads] == [1, 2, 3, 4, 5, 6]
    cities = dict((await db_session.execute(select(City.id, City.name))).tuples().all())
    for shown, lead in zip(found.leads, leads, strict=True):
        assert (shown.title, shown.kind, shown.city_id, shown.deadline) == (
            lead.title,
            lead.kind,
            lead.city_id,
            lead.deadline,
        )
        assert shown.city_name == cities[lead.city_id]
        assert shown.reasons[0].key == "targets_city"
        assert shown.reasons[0].params == {"city": lead.city_id, "city_name": "stored name"}
        assert shown.reasons[1].key == "deadline"
        expected_days = 999 if lead.deadline is None else max(0, (lead.deadline - TODAY).days)
        assert shown.reasons[1].params == {"days": expected_days}
    assert any(lead.deadline is not None for lead in leads)


async def test_at_most_digest_leads_and_only_the_active_versions_rows(
    db_session: AsyncSession, active_model: ModelVersion, company_id: UUID, settings: Settings
) -> None:
    leads = await recommendable_leads(db_session, 8)
    await put_rows(db_session, active_model, company_id, leads[:6])
    assert ids(await content(db_session, company_id, settings, digest_leads=4)) == [x.id for x in leads[:4]]
    assert ids(await content(db_session, company_id, settings, digest_leads=1)) == [leads[0].id]
    # Rows an inactive version stored (kept for a rollback) are not the active model's list.
    old = ModelVersion(
        version="old-1",
        artifact_path="/nowhere",
        sha256="0" * 64,
        created_at=NOW - timedelta(days=30),
        sklearn_version="1",
        is_active=False,
    )
    db_session.add(old)
    await db_session.flush()
    await put_rows(db_session, old, company_id, leads[6:])
    assert ids(await content(db_session, company_id, settings, digest_leads=50)) == [x.id for x in leads[:6]]


async def test_leads_the_company_acted_on_are_left_out_but_seen_ones_stay(
    db_session: AsyncSession, active_model: ModelVersion, company_id: UUID, settings: Settings
) -> None:
    leads = await recommendable_leads(db_session, 8)
    await put_rows(db_session, active_model, company_id, leads)
    yesterday = NOW - timedelta(days=1)
    await interact(db_session, company_id, leads[0], InteractionKind.DECLINED, yesterday)
    await interact(db_session, company_id, leads[2], InteractionKind.CONTACTED, yesterday)
    await interact(db_session, company_id, leads[3], InteractionKind.INTERESTED, NOW - timedelta(weeks=40))
    await interact(db_session, company_id, leads[5], InteractionKind.DEAL, yesterday)
    # Being shown a lead in the portal, or opening it (also from a digest), is not acting on it.
    await interact(db_session, company_id, leads[1], InteractionKind.IMPRESSION, yesterday)
    await interact(db_session, company_id, leads[4], InteractionKind.VIEW, yesterday)
    await interact(
        db_session, company_id, leads[6], InteractionKind.VIEW, yesterday, InteractionSource.DIGEST
    )
    # Another company's actions are its own.
    other = await create_company(db_session, "Other GmbH")
    await interact(db_session, other, leads[7], InteractionKind.DECLINED, yesterday)
    found = await content(db_session, company_id, settings)
    assert ids(found) == [leads[i].id for i in (1, 4, 6, 7)]
    assert [lead.position for lead in found.leads] == [1, 2, 3, 4]


async def test_a_lead_of_a_recent_digest_is_left_out_until_the_repeat_weeks_have_passed(
    db_session: AsyncSession, active_model: ModelVersion, company_id: UUID, settings: Settings
) -> None:
    leads = await recommendable_leads(db_session, 6)
    await put_rows(db_session, active_model, company_id, leads)
    digest = InteractionSource.DIGEST
    await interact(db_session, company_id, leads[0], InteractionKind.IMPRESSION, days_ago(14), digest)
    await interact(db_session, company_id, leads[1], InteractionKind.IMPRESSION, days_ago(63), digest)
    # The window is the Berlin days since the day 8 weeks ago: that day's digest may be repeated today.
    await interact(db_session, company_id, leads[2], InteractionKind.IMPRESSION, days_ago(56), digest)
    await interact(db_session, company_id, leads[3], InteractionKind.IMPRESSION, days_ago(55), digest)
    # Shown in the portal two weeks ago: only digests are not repeated.
    await interact(db_session, company_id, leads[4], InteractionKind.IMPRESSION, days_ago(14))
    # Today's digest (an earlier part of this run, for another member) is not an earlier digest.
    await interact(db_session, company_id, leads[5], InteractionKind.IMPRESSION, NOW, digest)
    found = await content(db_session, company_id, settings, digest_repeat_weeks=8)
    assert ids(found) == [leads[i].id for i in (1, 2, 4, 5)]
    # A shorter window lets the 2-weeks-old one back in once 2 weeks have passed, not before.
    assert leads[0].id in ids(await content(db_session, company_id, settings, digest_repeat_weeks=2))
    assert leads[0].id not in ids(await content(db_session, company_id, settings, digest_repeat_weeks=3))
    assert ids(await content(db_session, company_id, settings, digest_repeat_weeks=0)) == [
        x.id for x in leads
    ]


async def test_closed_expired_unpublished_and_suspended_leads_are_left_out(
    db_session: AsyncSession, active_model: ModelVersion, company_id: UUID, settings: Settings
) -> None:
    leads = await recommendable_leads(db_session, 6)
    await put_rows(db_session, active_model, company_id, leads)
    await db_session.execute(
        update(Lead).where(Lead.id == leads[0].id).values(status=LeadStatus.CLOSED.value)
    )
    await db_session.execute(
        update(Lead).where(Lead.id == leads[2].id).values(deadline=TODAY - timedelta(days=1))
    )
    await db_session.execute(update(Lead).where(Lead.id == leads[3].id).values(deadline=TODAY))
    await db_session.execute(
        update(Lead).where(Lead.id == leads[4].id).values(published_at=NOW + timedelta(hours=1))
    )
    await db_session.execute(update(Lead).where(Lead.id == leads[5].id).values(city_id="moscow"))
    found = await content(db_session, company_id, settings)
    assert ids(found) == [leads[1].id, leads[3].id]
    # A deadline today is still open, and its reason says so.
    assert found.leads[1].deadline == TODAY
    assert found.leads[1].reasons[1].params == {"days": 0}


async def test_without_an_active_model_or_an_approved_company_there_is_no_digest(
    db_session: AsyncSession, imported: Trial, settings: Settings
) -> None:
    company_id = await create_company(db_session, "Early GmbH")
    assert await digest_content(db_session, company_id, now=NOW, settings=with_digest(settings)) is None


async def test_a_company_that_is_not_approved_gets_no_digest(
    db_session: AsyncSession, active_model: ModelVersion, company_id: UUID, settings: Settings
) -> None:
    empty = await content(db_session, company_id, settings)
    # No stored rows: no new leads, which the caller does not send.
    assert empty.leads == ()
    await db_session.execute(
        update(Company).where(Company.id == company_id).values(status=CompanyStatus.ARCHIVED.value)
    )
    assert await digest_content(db_session, company_id, now=NOW, settings=with_digest(settings)) is None
    assert await digest_content(db_session, UUID(int=7), now=NOW, settings=with_digest(settings)) is None


def mission(
    title: str,
    city: str,
    starts_in_days: int,
    sectors: list[str],
    status: MissionStatus = MissionStatus.PLANNED,
) -> Mission:
    starts_on = TODAY + timedelta(days=starts_in_days)
    return Mission(
        title=title,
        city_id=city,
        starts_on=starts_on,
        ends_on=starts_on + timedelta(days=3),
        capacity=10,
        announced_at=NOW - timedelta(days=60),
        status=status.value,
        sector_links=[MissionSector(position=i, code=code) for i, code in enumerate(sectors)],
    )


async def test_missions_are_upcoming_planned_ones_in_target_cities_and_shared_divisions(
    db_session: AsyncSession, active_model: ModelVersion, company_id: UUID, settings: Settings
) -> None:
    db_session.add_all(
        [CompanyTargetCity(company_id=company_id, city_id=c) for c in ("warsaw", "prague")]
        + [CompanySector(company_id=company_id, position=1, code="28.1")]
    )
    later = mission("Warsaw software", "warsaw", 40, ["62.09"])  # same division 62 as 62.01
    soon = mission("Prague machines", "prague", 10, ["28.11", "10.1"])  # division 28 of 28.1
    open_to_all = mission("Prague open", "prague", 20, [])
    db_session.add_all([later, soon, open_to_all])
    left_out = [
        mission("Warsaw past", "warsaw", -20, ["62.01"]),
        mission("Warsaw today", "warsaw", 0, ["62.01"]),
        mission("Paris software", "paris", 15, ["62.01"]),  # not a target city
        mission("Warsaw food", "warsaw", 12, ["10.1", "63.11"]),  # no shared division (63 is not 62)
        mission("Warsaw archived", "warsaw", 14, ["62.01"], MissionStatus.ARCHIVED),
    ]
    applied, declined = mission("Prague applied", "prague", 5, ["62"]), mission("Prague no", "prague", 6, [])
    db_session.add_all([*left_out, applied, declined])
    await db_session.flush()
    for one, status in ((applied, ParticipantStatus.APPLIED), (declined, ParticipantStatus.DECLINED)):
        db_session.add(
            MissionParticipant(mission_id=one.id, company_id=company_id, status=status.value, status_at=NOW)
        )
    await db_session.flush()

    found = await content(db_session, company_id, settings, digest_missions=20)
    # The demo's own missions may fit too; ours are in, in their order, and the others are out.
    shown = [m.mission_id for m in found.missions]
    assert [m for m in shown if m in {soon.id, open_to_all.id, later.id}] == [
        soon.id,
        open_to_all.id,
        later.id,
    ]
    assert not {m.id for m in [*left_out, applied, declined]} & set(shown)
    assert [m.starts_on for m in found.missions] == sorted(m.starts_on for m in found.missions)
    assert all(m.starts_on > TODAY and m.city_id in {"warsaw", "prague"} for m in found.missions)
    first = next(m for m in found.missions if m.mission_id == soon.id)
    assert (first.title, first.city_id, first.city_name, first.starts_on, first.ends_on) == (
        "Prague machines",
        "prague",
        "Prague",
        soon.starts_on,
        soon.ends_on,
    )
    assert len((await content(db_session, company_id, settings, digest_missions=1)).missions) == 1
    assert (await content(db_session, company_id, settings, digest_missions=0)).missions == ()


async def test_a_company_without_target_cities_fits_missions_in_any_city(
    db_session: AsyncSession, active_model: ModelVersion, company_id: UUID, settings: Settings
) -> None:
    anywhere = [mission("Tokyo software", "tokyo", 3, ["62.01"]), mission("Paris open", "paris", 4, [])]
    elsewhere = mission("Tokyo food", "tokyo", 2, ["10.1"])
    db_session.add_all([*anywhere, elsewhere])
    await db_session.flush()
    shown = [
        m.mission_id for m in (await content(db_session, company_id, settings, digest_missions=20)).missions
    ]
    assert [m for m in shown if m in {x.id for x in anywhere}] == [x.id for x in anywhere]
    assert elsewhere.id not in shown


@pytest.fixture
def statements(db_session: AsyncSession) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    engine = db_session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine, "before_cursor_execute", count)


async def test_a_digest_is_four_queries_however_many_leads_it_holds(
    db_session: AsyncSession,
    active_model: ModelVersion,
    company_id: UUID,
    settings: Settings,
    statements: list[str],
) -> None:
    leads = await recommendable_leads(db_session, 20)
    await put_rows(db_session, active_model, company_id, leads)
    db_session.add(mission("Anywhere", "london", 9, []))
    await db_session.flush()
    statements.clear()
    found = await content(db_session, company_id, settings, digest_leads=20)
    assert len(found.leads) == 20
    assert found.missions
    assert len(statements) == 4


async def test_the_digest_lists_what_the_portal_serves_from_the_batchs_rows(
    client: Client, db_session: AsyncSession, active_model: ModelVersion, settings: Settings
) -> None:
    company_id = await busiest_company(db_session)
    await store(db_session, active_model, 20, [company_id])
    served = await recommend(client, company_id, limit=20)
    assert served["source"] == "stored"
    interested = set(
        await db_session.scalars(
            select(Interaction.lead_id).where(
                Interaction.company_id == company_id, Interaction.kind == InteractionKind.INTERESTED.value
            )
        )
    )
    found = await content(db_session, company_id, settings, digest_leads=50, digest_repeat_weeks=0)
    expected = [item for item in served["items"] if UUID(item["lead_id"]) not in interested]
    assert expected
    assert [str(x) for x in ids(found)] == [item["lead_id"] for item in expected]
    assert [[sentence(r) for r in lead.reasons] for lead in found.leads] == [
        item["reasons"] for item in expected
    ]
    assert [(lead.title, lead.kind, lead.city_id) for lead in found.leads] == [
        (item["title"], item["kind"], item["city_id"]) for item in expected
    ]
