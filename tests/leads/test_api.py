from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from httpx import AsyncClient as Client

BERLIN = ZoneInfo("Europe/Berlin")


def berlin_today() -> date:
    return datetime.now(BERLIN).date()


def lead_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "title": "Distributor for industrial robots in Masovia",
        "kind": "distributor",
        "organization": "Mazowieckie Automation Sp. z o.o.",
        "city": "warsaw",
        "sectors": ["28.99", "46.69"],
        "description": "Seeks a German manufacturer of food-industry robots for exclusive distribution.",
        "languages": ["pl", "en"],
        "budget_eur": 250_000,
    }
    payload.update(overrides)
    return payload


async def create(client: Client, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/leads", json=lead_payload(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_problem(response: Any, status: int, field: str, rule_part: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    issues = response.json()["errors"]
    assert any(e["field"] == field and rule_part in e["rule"] for e in issues), issues


async def test_register_read_update_close_reopen_archive(client: Client) -> None:
    before = datetime.now(BERLIN)
    deadline = berlin_today() + timedelta(days=10)
    created = await client.post("/api/v1/leads", json=lead_payload(deadline=deadline.isoformat()))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "open"
    assert body["source"] == "staff"
    assert body["city"] == "warsaw"
    assert body["sectors"] == ["28.99", "46.69"]
    assert body["is_open"] is True
    assert body["days_to_deadline"] == 10
    assert body["external_id"] is None
    assert datetime.fromisoformat(body["published_at"]) >= before - timedelta(seconds=1)

    lead_id = body["id"]
    fetched = await client.get(f"/api/v1/leads/{lead_id}")
    assert fetched.status_code == 200
    assert fetched.json()["title"] == body["title"]

    changed = await client.patch(
        f"/api/v1/leads/{lead_id}",
        json={"sectors": ["46.69", "28.99"], "budget_eur": None, "kind": "buyer", "deadline": None},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["sectors"] == ["46.69", "28.99"]
    assert changed.json()["budget_eur"] is None
    assert changed.json()["kind"] == "buyer"
    assert changed.json()["days_to_deadline"] is None
    assert changed.json()["is_open"] is True

    closed = await client.post(f"/api/v1/leads/{lead_id}/status", json={"status": "closed"})
    assert closed.status_code == 201, closed.text
    assert closed.json()["status"] == "closed"
    assert closed.json()["is_open"] is False

    reopened = await client.post(f"/api/v1/leads/{lead_id}/status", json={"status": "open"})
    assert reopened.json()["status"] == "open"
    assert reopened.json()["is_open"] is True

    archived = await client.delete(f"/api/v1/leads/{lead_id}")
    assert archived.status_code == 200
    assert archived.json()["status"] == "closed"
    assert (await client.get(f"/api/v1/leads/{lead_id}")).json()["status"] == "closed"


async def test_explicit_fields_are_kept(client: Client) -> None:
    body = await create(
        client,
        external_id="lead-7",
        source="partner_city_office",
        status="closed",
        published_at="2026-03-14T09:30:00+01:00",
        deadline="2026-04-30",
    )
    assert body["external_id"] == "lead-7"
    assert body["source"] == "partner_city_office"
    assert body["status"] == "closed"
    assert datetime.fromisoformat(body["published_at"]) == datetime(
        2026, 3, 14, 8, 30, tzinfo=ZoneInfo("UTC")
    )
    assert body["deadline"] == "2026-04-30"
    assert body["is_open"] is False


async def test_open_state_follows_the_berlin_day(client: Client) -> None:
    today = berlin_today()
    last_day = await create(client, published_at="2026-01-01T00:00:00Z", deadline=today.isoformat())
    assert (last_day["is_open"], last_day["days_to_deadline"]) == (True, 0)
    passed = await create(
        client, published_at="2026-01-01T00:00:00Z", deadline=(today - timedelta(days=1)).isoformat()
    )
    assert (passed["is_open"], passed["days_to_deadline"]) == (False, -1)
    open_ended = await create(client, published_at="2026-01-01T00:00:00Z")
    assert (open_ended["is_open"], open_ended["days_to_deadline"]) == (True, None)


async def test_duplicate_external_id_is_409(client: Client) -> None:
    await create(client, external_id="warsaw-2026-001")
    second = await client.post("/api/v1/leads", json=lead_payload(external_id="warsaw-2026-001"))
    assert second.status_code == 409
    assert second.headers["content-type"].startswith("application/problem+json")
    assert "warsaw-2026-001" in second.json()["detail"]


async def test_suspended_and_unknown_cities_are_rejected(client: Client) -> None:
    suspended = await client.post("/api/v1/leads", json=lead_payload(city="moscow"))
    assert suspended.status_code == 422
    assert suspended.json()["errors"] == [
        {"field": "city", "rule": "the partnership with moscow is suspended"}
    ]
    unknown = await client.post("/api/v1/leads", json=lead_payload(city="atlantis"))
    assert_problem(unknown, 422, "city", "not a known partner city")

    lead = await create(client)
    moved = await client.patch(f"/api/v1/leads/{lead['id']}", json={"city": "moscow"})
    assert_problem(moved, 422, "city", "suspended")
    assert (await client.get(f"/api/v1/leads/{lead['id']}")).json()["city"] == "warsaw"


async def test_a_lead_in_a_newly_suspended_city_stays_but_cannot_reopen(client: Client) -> None:
    lead = await create(client, city="budapest")
    closed = await client.post(f"/api/v1/leads/{lead['id']}/status", json={"status": "closed"})
    assert closed.status_code == 201
    suspended = await client.patch("/api/v1/cities/budapest", json={"status": "suspended"})
    assert suspended.status_code == 200, suspended.text
    edited = await client.patch(f"/api/v1/leads/{lead['id']}", json={"city": "budapest", "title": "Kept"})
    assert edited.status_code == 200, edited.text
    reopened = await client.post(f"/api/v1/leads/{lead['id']}/status", json={"status": "open"})
    assert_problem(reopened, 422, "city", "suspended")


async def test_unknown_sector_and_language_are_422(client: Client) -> None:
    sector = await client.post("/api/v1/leads", json=lead_payload(sectors=["28.99", "99.99"]))
    assert sector.json()["errors"] == [{"field": "sectors[1]", "rule": "'99.99' is not a NACE Rev. 2 code"}]
    section = await client.post("/api/v1/leads", json=lead_payload(sectors=["C"]))
    assert section.status_code == 400, "a section letter is not even a well-formed code"
    language = await client.post("/api/v1/leads", json=lead_payload(languages=["xx"]))
    assert_problem(language, 422, "languages", "xx")


async def test_deadline_before_publication_day_in_berlin_is_422(client: Client) -> None:
    # 23:30 UTC on 14 March is already 15 March in Berlin: a deadline on the 14th precedes publication.
    too_early = await client.post(
        "/api/v1/leads", json=lead_payload(published_at="2026-03-14T23:30:00Z", deadline="2026-03-14")
    )
    assert_problem(too_early, 422, "deadline", "2026-03-15")
    same_day = await create(client, published_at="2026-03-14T23:30:00Z", deadline="2026-03-15")
    assert same_day["deadline"] == "2026-03-15"

    moved = await client.patch(f"/api/v1/leads/{same_day['id']}", json={"deadline": "2026-03-14"})
    assert_problem(moved, 422, "deadline", "publication")
    later = await client.patch(
        f"/api/v1/leads/{same_day['id']}", json={"published_at": "2026-03-16T08:00:00+01:00"}
    )
    assert_problem(later, 422, "deadline", "2026-03-16")


async def test_reopening_after_the_deadline_is_422_naming_deadline(client: Client) -> None:
    yesterday = berlin_today() - timedelta(days=1)
    lead = await create(
        client, published_at="2026-01-01T00:00:00Z", deadline=yesterday.isoformat(), status="closed"
    )
    reopened = await client.post(f"/api/v1/leads/{lead['id']}/status", json={"status": "open"})
    assert_problem(reopened, 422, "deadline", "passed")
    assert (await client.get(f"/api/v1/leads/{lead['id']}")).json()["status"] == "closed"

    extended = await client.patch(
        f"/api/v1/leads/{lead['id']}", json={"deadline": (berlin_today() + timedelta(days=7)).isoformat()}
    )
    assert extended.status_code == 200
    reopened = await client.post(f"/api/v1/leads/{lead['id']}/status", json={"status": "open"})
    assert reopened.status_code == 201, reopened.text
    assert reopened.json()["is_open"] is True


async def test_schema_violations_are_400_naming_the_field(client: Client) -> None:
    cases = {
        "title": lead_payload(title=""),
        "kind": lead_payload(kind="charity"),
        "budget_eur": lead_payload(budget_eur=-1),
        "published_at": lead_payload(published_at="2026-03-14T09:30:00"),
        "deadline": lead_payload(deadline="14.03.2026"),
        "source": lead_payload(source="rumour"),
        "city": lead_payload(city="Warsaw"),
    }
    for field, payload in cases.items():
        response = await client.post("/api/v1/leads", json=payload)
        assert response.status_code == 400, (field, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert any(e["field"] == field for e in response.json()["errors"]), (field, response.json())
    missing = {k: v for k, v in lead_payload().items() if k != "organization"}
    response = await client.post("/api/v1/leads", json=missing)
    assert response.status_code == 400
    assert "organization" in response.text
    timestamp = await client.post("/api/v1/leads", json=lead_payload(published_at=1_773_477_000))
    assert_problem(timestamp, 400, "published_at")
    no_such_day = await client.post("/api/v1/leads", json=lead_payload(published_at="2026-02-30T10:00:00Z"))
    assert_problem(no_such_day, 422, "published_at", "RFC 3339")
    unknown = await client.post("/api/v1/leads", json=lead_payload(salary=1))
    assert unknown.status_code == 400
    bad_status = await client.post(
        f"/api/v1/leads/{(await create(client))['id']}/status", json={"status": "archived"}
    )
    assert bad_status.status_code == 400


async def test_unknown_lead_is_404(client: Client) -> None:
    missing = "/api/v1/leads/00000000-0000-0000-0000-000000000000"
    for response in (
        await client.get(missing),
        await client.patch(missing, json={"title": "x"}),
        await client.delete(missing),
        await client.post(f"{missing}/status", json={"status": "closed"}),
    ):
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_open_at_counts_berlin_days(client: Client) -> None:
    # Winter: Berlin is UTC+1, so 14 March ends at 23:00 UTC.
    await create(
        client, title="deadline that day", published_at="2026-03-01T10:00:00Z", deadline="2026-03-14"
    )
    await create(
        client, title="deadline the day before", published_at="2026-03-01T10:00:00Z", deadline="2026-03-13"
    )
    await create(client, title="published at the last second", published_at="2026-03-14T22:59:59Z")
    await create(client, title="published the next Berlin day", published_at="2026-03-14T23:00:00Z")
    await create(client, title="closed", published_at="2026-03-01T10:00:00Z", status="closed")
    await create(client, title="open-ended", published_at="2026-02-01T10:00:00+01:00")

    page = (await client.get("/api/v1/leads", params={"open_at": "2026-03-14", "order_by": "title"})).json()
    assert [lead["title"] for lead in page["items"]] == [
        "deadline that day",
        "open-ended",
        "published at the last second",
    ]
    assert page["total"] == 3
    day_after = (await client.get("/api/v1/leads", params={"open_at": "2026-03-15"})).json()
    assert {lead["title"] for lead in day_after["items"]} == {
        "published at the last second",
        "published the next Berlin day",
        "open-ended",
    }
    before_any = (await client.get("/api/v1/leads", params={"open_at": "2026-01-31"})).json()
    assert before_any["total"] == 0


async def test_open_at_in_summer_time(client: Client) -> None:
    # Summer: Berlin is UTC+2, so 1 July ends at 22:00 UTC.
    await create(client, title="in", published_at="2026-07-01T21:59:59Z", deadline="2026-07-01")
    await create(client, title="out", published_at="2026-07-01T22:00:00Z", deadline="2026-07-02")
    page = (await client.get("/api/v1/leads", params={"open_at": "2026-07-01"})).json()
    assert [lead["title"] for lead in page["items"]] == ["in"]


async def test_filters(client: Client) -> None:
    await create(
        client,
        title="Software house seeks partner",
        sectors=["62.01"],
        city="paris",
        kind="joint_venture",
        organization="Logiciel Parisien SA",
        budget_eur=None,
        source="partner_city_office",
    )
    await create(client, title="Bakery chain buys ovens", sectors=["10.71"], kind="buyer", budget_eur=80_000)
    await create(
        client,
        title="Tender: tram depot robots",
        sectors=["28.99"],
        kind="tender",
        budget_eur=5_000_000,
        description="Warszawskie ZAUTOMATYZOWANE zajezdnie",
        status="closed",
        source="import",
    )

    async def titles(**params: Any) -> list[str]:
        response = await client.get("/api/v1/leads", params={"order_by": "title", **params})
        assert response.status_code == 200, response.text
        return [lead["title"] for lead in response.json()["items"]]

    assert await titles(sector="62") == ["Software house seeks partner"]
    assert await titles(sector="62.0") == ["Software house seeks partner"]
    assert await titles(sector="62.01") == ["Software house seeks partner"]
    assert await titles(sector="62.02") == []
    assert await titles(sector="C") == ["Bakery chain buys ovens", "Tender: tram depot robots"]
    assert await titles(city="paris") == ["Software house seeks partner"]
    assert await titles(kind="tender") == ["Tender: tram depot robots"]
    assert await titles(status="closed") == ["Tender: tram depot robots"]
    assert await titles(source="partner_city_office") == ["Software house seeks partner"]
    assert await titles(source="staff") == ["Bakery chain buys ovens"]
    assert await titles(q="BAKERY") == ["Bakery chain buys ovens"]
    assert await titles(q="parisien") == ["Software house seeks partner"], "organization is searched"
    assert await titles(q="zautomatyzowane") == ["Tender: tram depot robots"], "description is searched"
    assert await titles(min_budget=100_000) == ["Tender: tram depot robots"]
    assert await titles(max_budget=100_000) == ["Bakery chain buys ovens"]
    assert await titles(min_budget=80_000, max_budget=80_000) == ["Bakery chain buys ovens"]
    assert await titles(sector="C", status="open", kind="buyer") == ["Bakery chain buys ovens"]


async def test_ordering_and_pagination(client: Client) -> None:
    await create(client, title="B", published_at="2026-03-02T10:00:00Z", deadline="2026-05-01", budget_eur=3)
    await create(client, title="A", published_at="2026-03-03T10:00:00Z", deadline=None, budget_eur=None)
    await create(client, title="C", published_at="2026-03-01T10:00:00Z", deadline="2026-04-01", budget_eur=9)

    async def order(order_by: str | None = None) -> list[str]:
        params = {"order_by": order_by} if order_by else {}
        return [lead["title"] for lead in (await client.get("/api/v1/leads", params=params)).json()["items"]]

    assert await order() == ["A", "B", "C"], "newest first by default"
    assert await order("published_at") == ["C", "B", "A"]
    assert await order("title") == ["A", "B", "C"]
    assert await order("-title") == ["C", "B", "A"]
    assert await order("deadline") == ["C", "B", "A"], "open-ended leads last"
    assert await order("-deadline") == ["B", "C", "A"], "open-ended leads last either way"
    assert await order("-budget_eur") == ["C", "B", "A"]

    first = (await client.get("/api/v1/leads", params={"order_by": "title", "limit": 2})).json()
    assert [lead["title"] for lead in first["items"]] == ["A", "B"]
    assert (first["total"], first["limit"], first["offset"]) == (3, 2, 0)
    rest = (await client.get("/api/v1/leads", params={"order_by": "title", "limit": 2, "offset": 2})).json()
    assert [lead["title"] for lead in rest["items"]] == ["C"]
    assert (rest["total"], rest["offset"]) == (3, 2)


async def test_bad_list_parameters(client: Client) -> None:
    bad_order = await client.get("/api/v1/leads", params={"order_by": "organization"})
    assert_problem(bad_order, 422, "order_by", "published_at")
    budgets = await client.get("/api/v1/leads", params={"min_budget": 10, "max_budget": 5})
    assert_problem(budgets, 422, "max_budget", "min_budget")
    bad_date = await client.get("/api/v1/leads", params={"open_at": "tomorrow"})
    assert_problem(bad_date, 400, "open_at")
    bad_sector = await client.get("/api/v1/leads", params={"sector": "6"})
    assert_problem(bad_sector, 400, "sector")
    bad_kind = await client.get("/api/v1/leads", params={"kind": "charity"})
    assert_problem(bad_kind, 400, "kind")
    far_future = await client.get("/api/v1/leads", params={"open_at": "9999-12-31"})
    assert_problem(far_future, 422, "open_at", "between")


async def test_implausible_times_are_422(client: Client) -> None:
    # Converting these to UTC or Berlin time would overflow Python's datetime.
    year_one = await client.post("/api/v1/leads", json=lead_payload(published_at="0001-01-01T00:00:00+01:00"))
    assert_problem(year_one, 422, "published_at", "between")
    last_day = await client.post("/api/v1/leads", json=lead_payload(deadline="9999-12-31"))
    assert_problem(last_day, 422, "deadline", "between")
    lead = await create(client)
    patched = await client.patch(
        f"/api/v1/leads/{lead['id']}", json={"published_at": "9999-12-31T23:59:59-01:00"}
    )
    assert_problem(patched, 422, "published_at", "between")
