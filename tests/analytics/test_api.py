"""Analytics on a small hand-built dataset, with every expected figure counted by hand (both backends).

Weeks: 2026-01-05 is a Monday, so W02 is 5-11 January, W03 12-18, W04 19-25 (UTC)."""

from datetime import UTC, datetime
from uuid import UUID

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.companies.models import Company, CompanySector, CompanyTargetCity
from partnermatch.interactions.models import Interaction
from partnermatch.leads.models import Lead, LeadSector

STAGES = ("impression", "view", "interested", "contacted", "introduced", "deal")


def _company(name: str, status: str, sectors: list[str], cities: list[str]) -> Company:
    company = Company(
        name=name,
        status=status,
        employees=10,
        founded=2010,
        export_experience="some",
        registered_at=datetime(2025, 6, 1, tzinfo=UTC),
    )
    company.sector_links = [CompanySector(position=i, code=c) for i, c in enumerate(sectors)]
    company.target_city_links = [CompanyTargetCity(city_id=c) for c in cities]
    return company


def _lead(title: str, city: str, kind: str, status: str, sectors: list[str]) -> Lead:
    lead = Lead(
        title=title,
        kind=kind,
        organization="Org",
        city_id=city,
        status=status,
        published_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    lead.sector_links = [LeadSector(position=i, code=c) for i, c in enumerate(sectors)]
    return lead


def _at(day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


async def _dataset(db_session: AsyncSession) -> None:
    a = _company("A", "approved", ["62.01", "26.51"], ["tokyo", "paris"])
    b = _company("B", "approved", ["26.51"], ["tokyo"])
    c = _company("C", "pending", ["62.01"], ["tokyo"])  # not approved: not counted
    l1 = _lead("L1", "tokyo", "buyer", "open", ["62.01"])
    l2 = _lead("L2", "tokyo", "distributor", "closed", ["62.01", "26.51"])
    l3 = _lead("L3", "paris", "buyer", "open", ["26.51"])
    db_session.add_all([a, b, c, l1, l2, l3])
    await db_session.flush()
    events: list[tuple[UUID, UUID, str, datetime]] = [
        (a.id, l1.id, "impression", _at(5)),
        (a.id, l1.id, "impression", _at(6)),  # the same pair in the same week counts once
        (a.id, l1.id, "view", _at(6)),
        (a.id, l1.id, "interested", _at(12)),
        (b.id, l1.id, "impression", _at(11, 23, 30)),  # Sunday night UTC: still W02
        (b.id, l1.id, "view", _at(12)),
        (b.id, l1.id, "deal", _at(14)),
        (a.id, l3.id, "impression", _at(7)),
        (a.id, l3.id, "declined", _at(7)),  # not a funnel stage
        (b.id, l2.id, "contacted", _at(13)),
        (b.id, l2.id, "introduced", _at(20)),
    ]
    db_session.add_all(
        [Interaction(company_id=co, lead_id=le, kind=kind, at=at) for co, le, kind, at in events]
    )
    await db_session.flush()


def _funnel(key: str, **stages: int) -> dict[str, object]:
    return {"key": key, **{stage: stages.get(stage, 0) for stage in STAGES}}


async def test_counts_and_weekly_funnel(client: httpx.AsyncClient, db_session: AsyncSession) -> None:
    await _dataset(db_session)
    response = await client.get("/api/v1/admin/analytics")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["by_city"] == [
        {"key": "paris", "companies": 1, "leads": 1, "open_leads": 1},
        {"key": "tokyo", "companies": 2, "leads": 2, "open_leads": 1},
    ]
    assert body["by_division"] == [
        {"key": "26", "companies": 2, "leads": 2, "open_leads": 1},
        {"key": "62", "companies": 1, "leads": 2, "open_leads": 1},
    ]
    assert body["by_lead_kind"] == [
        {"key": "buyer", "companies": 0, "leads": 2, "open_leads": 2},
        {"key": "distributor", "companies": 0, "leads": 1, "open_leads": 0},
    ]
    assert body["funnel_group"] == "week"
    assert body["funnel"] == [
        _funnel("2026-W02", impression=3, view=1),
        _funnel("2026-W03", view=1, interested=1, contacted=1, deal=1),
        _funnel("2026-W04", introduced=1),
    ]


async def test_funnel_by_city_division_and_date_range(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    await _dataset(db_session)
    by_city = (await client.get("/api/v1/admin/analytics", params={"group": "city"})).json()
    assert by_city["funnel"] == [
        _funnel("paris", impression=1),
        _funnel("tokyo", impression=2, view=2, interested=1, contacted=1, introduced=1, deal=1),
    ]
    by_division = (await client.get("/api/v1/admin/analytics", params={"group": "division"})).json()
    assert by_division["funnel"] == [
        _funnel("26", impression=1, view=1, contacted=1, introduced=1, deal=1),
        _funnel("62", impression=2, view=1, interested=1),
    ]
    week_three = await client.get(
        "/api/v1/admin/analytics", params={"since": "2026-01-12", "until": "2026-01-18"}
    )
    assert week_three.json()["funnel"] == [_funnel("2026-W03", view=1, interested=1, contacted=1, deal=1)]
    backwards = await client.get(
        "/api/v1/admin/analytics", params={"since": "2026-01-18", "until": "2026-01-12"}
    )
    assert backwards.status_code == 422
    everything = await client.get(
        "/api/v1/admin/analytics", params={"since": "0001-01-01", "until": "9999-12-31"}
    )
    assert everything.status_code == 200
    assert len(everything.json()["funnel"]) == 3


async def test_members_cannot_read_analytics(member_client: httpx.AsyncClient) -> None:
    assert (await member_client.get("/api/v1/admin/analytics")).status_code == 403
