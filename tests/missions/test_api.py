from datetime import datetime, timedelta
from typing import Any

from httpx import AsyncClient as Client

from tests.companies.test_api import company_payload
from tests.leads.test_api import assert_problem

UNKNOWN = "00000000-0000-0000-0000-000000000000"


def mission_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "title": "Delegation trip: Smart City Expo",
        "city": "warsaw",
        "sectors": ["62.01", "71.12"],
        "description": "Berlin's urban-tech companies meet Warsaw's municipal buyers.",
        "starts_on": "2026-10-05",
        "ends_on": "2026-10-08",
        "capacity": 2,
    }
    payload.update(overrides)
    return payload


async def create(client: Client, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/missions", json=mission_payload(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def company(client: Client, name: str, **overrides: Any) -> str:
    response = await client.post("/api/v1/companies", json=company_payload(name=name, **overrides))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_plan_read_update_archive_and_plan_again(client: Client) -> None:
    before = datetime.now().astimezone()
    created = await client.post("/api/v1/missions", json=mission_payload())
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "planned"
    assert body["city"] == "warsaw"
    assert body["sectors"] == ["62.01", "71.12"]
    assert body["participants"] == {"applied": 0, "invited": 0, "participated": 0, "declined": 0}
    assert body["places_left"] == 2
    assert datetime.fromisoformat(body["announced_at"]) >= before - timedelta(seconds=1)

    mission_id = body["id"]
    assert (await client.get(f"/api/v1/missions/{mission_id}")).json()["title"] == body["title"]

    changed = await client.patch(
        f"/api/v1/missions/{mission_id}",
        json={"sectors": ["71.12", "62.01"], "capacity": 12, "ends_on": "2026-10-09", "city": "paris"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["sectors"] == ["71.12", "62.01"]
    assert changed.json()["capacity"] == 12
    assert changed.json()["places_left"] == 12
    assert changed.json()["ends_on"] == "2026-10-09"
    assert changed.json()["city"] == "paris"

    archived = await client.delete(f"/api/v1/missions/{mission_id}")
    assert archived.status_code == 200
    assert archived.json()["status"] == "archived"
    again = await client.post(f"/api/v1/missions/{mission_id}/status", json={"status": "planned"})
    assert again.status_code == 201, again.text
    assert again.json()["status"] == "planned"


async def test_sector_focus_is_optional_but_valid(client: Client) -> None:
    general = await create(client, sectors=[])
    assert general["sectors"] == []
    no_field = {k: v for k, v in mission_payload().items() if k != "sectors"}
    assert (await client.post("/api/v1/missions", json=no_field)).json()["sectors"] == []
    unknown = await client.post("/api/v1/missions", json=mission_payload(sectors=["62.01", "99.99"]))
    assert_problem(unknown, 422, "sectors[1]", "not a NACE Rev. 2 code")
    repeated = await client.post("/api/v1/missions", json=mission_payload(sectors=["62.01", "62.01"]))
    assert_problem(repeated, 422, "sectors", "repeat")
    six = ["62.01", "62.02", "62.03", "62.09", "63.11", "71.12"]
    too_many = await client.post("/api/v1/missions", json=mission_payload(sectors=six))
    assert_problem(too_many, 400, "sectors")


async def test_dates_must_be_in_order(client: Client) -> None:
    backwards = await client.post(
        "/api/v1/missions", json=mission_payload(starts_on="2026-10-05", ends_on="2026-10-04")
    )
    assert backwards.json()["errors"] == [
        {"field": "ends_on", "rule": "must not be before starts_on (2026-10-05)"}
    ]
    assert backwards.status_code == 422
    one_day = await create(client, starts_on="2026-10-05", ends_on="2026-10-05")
    moved = await client.patch(f"/api/v1/missions/{one_day['id']}", json={"starts_on": "2026-10-06"})
    assert_problem(moved, 422, "ends_on", "starts_on")


async def test_schema_violations_are_400_naming_the_field(client: Client) -> None:
    cases = {
        "capacity": mission_payload(capacity=0),
        "title": mission_payload(title=""),
        "starts_on": mission_payload(starts_on="soon"),
        "announced_at": mission_payload(announced_at="2026-03-01T10:00:00"),
        "city": mission_payload(city="Warsaw!"),
    }
    for field, payload in cases.items():
        response = await client.post("/api/v1/missions", json=payload)
        assert_problem(response, 400, field)
    year_one = await client.post(
        "/api/v1/missions", json=mission_payload(announced_at="0001-01-01T00:00:00+01:00")
    )
    assert_problem(year_one, 422, "announced_at", "between")
    unknown_field = await client.post("/api/v1/missions", json=mission_payload(status="archived"))
    assert unknown_field.status_code == 400


async def test_suspended_city_and_duplicates(client: Client) -> None:
    suspended = await client.post("/api/v1/missions", json=mission_payload(city="moscow"))
    assert suspended.status_code == 422
    assert suspended.json()["errors"] == [
        {"field": "city", "rule": "the partnership with moscow is suspended"}
    ]
    mission = await create(client, external_id="m-2026-1")
    moved = await client.patch(f"/api/v1/missions/{mission['id']}", json={"city": "moscow"})
    assert_problem(moved, 422, "city", "suspended")
    duplicate = await client.post("/api/v1/missions", json=mission_payload(external_id="m-2026-1"))
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"].startswith("application/problem+json")


async def test_a_mission_in_a_newly_suspended_city_stays_archived(client: Client) -> None:
    mission = await create(client, city="budapest")
    assert (await client.delete(f"/api/v1/missions/{mission['id']}")).status_code == 200
    suspended = await client.patch("/api/v1/cities/budapest", json={"status": "suspended"})
    assert suspended.status_code == 200, suspended.text
    edited = await client.patch(f"/api/v1/missions/{mission['id']}", json={"title": "Postponed"})
    assert edited.status_code == 200, edited.text
    planned = await client.post(f"/api/v1/missions/{mission['id']}/status", json={"status": "planned"})
    assert_problem(planned, 422, "city", "suspended")


async def test_unknown_mission_is_404(client: Client) -> None:
    base = f"/api/v1/missions/{UNKNOWN}"
    for response in (
        await client.get(base),
        await client.patch(base, json={"title": "x"}),
        await client.delete(base),
        await client.post(f"{base}/status", json={"status": "archived"}),
        await client.get(f"{base}/participants"),
        await client.post(f"{base}/participants", json={"company_id": UNKNOWN}),
    ):
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_filters_ordering_and_pagination(client: Client) -> None:
    await create(
        client,
        title="Paris AI week",
        city="paris",
        sectors=["62.01"],
        starts_on="2026-06-01",
        ends_on="2026-06-03",
        capacity=30,
    )
    await create(
        client,
        title="Warsaw food fair",
        sectors=["10.71"],
        starts_on="2026-05-10",
        ends_on="2026-05-12",
        capacity=10,
        description="Bakeries and BREWERIES",
    )
    archived = await create(
        client,
        title="Tokyo robotics",
        city="tokyo",
        sectors=["28.99"],
        starts_on="2026-09-01",
        ends_on="2026-09-05",
        capacity=5,
    )
    await client.delete(f"/api/v1/missions/{archived['id']}")

    async def titles(**params: Any) -> list[str]:
        response = await client.get("/api/v1/missions", params=params)
        assert response.status_code == 200, response.text
        return [m["title"] for m in response.json()["items"]]

    assert await titles() == ["Warsaw food fair", "Paris AI week", "Tokyo robotics"], "earliest start first"
    assert await titles(order_by="-capacity") == ["Paris AI week", "Warsaw food fair", "Tokyo robotics"]
    assert await titles(order_by="title") == ["Paris AI week", "Tokyo robotics", "Warsaw food fair"]
    assert await titles(city="paris") == ["Paris AI week"]
    assert await titles(sector="62") == ["Paris AI week"]
    assert await titles(sector="C") == ["Warsaw food fair", "Tokyo robotics"]
    assert await titles(sector="10.7") == ["Warsaw food fair"]
    assert await titles(status="archived") == ["Tokyo robotics"]
    assert await titles(status="planned") == ["Warsaw food fair", "Paris AI week"]
    assert await titles(starts_after="2026-06-01") == ["Paris AI week", "Tokyo robotics"], "inclusive"
    assert await titles(starts_before="2026-06-01") == ["Warsaw food fair", "Paris AI week"], "inclusive"
    assert await titles(starts_after="2026-05-11", starts_before="2026-08-31") == ["Paris AI week"]
    assert await titles(q="breweries") == ["Warsaw food fair"]
    assert await titles(q="ROBOTICS") == ["Tokyo robotics"]

    page = (await client.get("/api/v1/missions", params={"limit": 2, "offset": 1})).json()
    assert [m["title"] for m in page["items"]] == ["Paris AI week", "Tokyo robotics"]
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)

    bad_order = await client.get("/api/v1/missions", params={"order_by": "city"})
    assert_problem(bad_order, 422, "order_by", "starts_on")
    bad_range = await client.get(
        "/api/v1/missions", params={"starts_after": "2026-07-01", "starts_before": "2026-06-01"}
    )
    assert_problem(bad_range, 422, "starts_before", "starts_after")
    bad_date = await client.get("/api/v1/missions", params={"starts_after": "June"})
    assert_problem(bad_date, 400, "starts_after")


async def test_participants_life_cycle_and_counts(client: Client) -> None:
    mission = await create(client, capacity=2)
    base = f"/api/v1/missions/{mission['id']}/participants"
    zeta = await company(client, "Zeta Urban Data GmbH")
    alpha = await company(client, "Alpha Mobility GmbH")

    applied = await client.post(base, json={"company_id": zeta})
    assert applied.status_code == 201, applied.text
    assert applied.json()["status"] == "applied"
    assert applied.json()["company_name"] == "Zeta Urban Data GmbH"
    assert applied.json()["mission_id"] == mission["id"]
    invited = await client.post(
        base, json={"company_id": alpha, "status": "invited", "status_at": "2026-04-01T09:00:00+02:00"}
    )
    assert invited.status_code == 201, invited.text
    assert datetime.fromisoformat(invited.json()["status_at"]) == datetime.fromisoformat(
        "2026-04-01T07:00:00+00:00"
    )

    listed = (await client.get(base)).json()
    assert [(p["company_name"], p["status"]) for p in listed["items"]] == [
        ("Alpha Mobility GmbH", "invited"),
        ("Zeta Urban Data GmbH", "applied"),
    ]
    assert listed["total"] == 2
    only_applied = (await client.get(base, params={"status": "applied"})).json()
    assert [p["company_id"] for p in only_applied["items"]] == [zeta]
    assert only_applied["total"] == 1

    read = (await client.get(f"/api/v1/missions/{mission['id']}")).json()
    assert read["participants"] == {"applied": 1, "invited": 1, "participated": 0, "declined": 0}
    assert read["places_left"] == 1
    listed_missions = (await client.get("/api/v1/missions")).json()["items"]
    assert listed_missions[0]["participants"]["invited"] == 1

    promoted = await client.patch(f"{base}/{zeta}", json={"status": "invited"})
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["status"] == "invited"
    assert datetime.fromisoformat(promoted.json()["status_at"]) > datetime.fromisoformat(
        applied.json()["status_at"]
    )
    went = await client.patch(f"{base}/{alpha}", json={"status": "participated"})
    assert went.json()["status"] == "participated", "an invited company keeps its place"
    assert (await client.get(f"{base}/{alpha}")).json()["status"] == "participated"
    read = (await client.get(f"/api/v1/missions/{mission['id']}")).json()
    assert read["participants"] == {"applied": 0, "invited": 1, "participated": 1, "declined": 0}
    assert read["places_left"] == 0

    removed = await client.delete(f"{base}/{zeta}")
    assert removed.status_code == 204
    assert (await client.get(f"{base}/{zeta}")).status_code == 404
    assert (await client.delete(f"{base}/{zeta}")).status_code == 404
    assert (await client.patch(f"{base}/{zeta}", json={"status": "declined"})).status_code == 404
    assert (await client.get(f"/api/v1/missions/{mission['id']}")).json()["places_left"] == 1


async def test_capacity_is_enforced(client: Client) -> None:
    mission = await create(client, capacity=1)
    base = f"/api/v1/missions/{mission['id']}/participants"
    first, second, third = [await company(client, n) for n in ("First GmbH", "Second GmbH", "Third GmbH")]
    assert (await client.post(base, json={"company_id": first, "status": "invited"})).status_code == 201

    full = await client.post(base, json={"company_id": second, "status": "invited"})
    assert full.status_code == 409, full.text
    assert full.headers["content-type"].startswith("application/problem+json")
    assert "full" in full.json()["detail"]
    also_full = await client.post(base, json={"company_id": second, "status": "participated"})
    assert also_full.status_code == 409
    waiting = await client.post(base, json={"company_id": second, "status": "applied"})
    assert waiting.status_code == 201, "applying needs no place"
    assert (await client.patch(f"{base}/{second}", json={"status": "invited"})).status_code == 409

    shrink = await client.patch(f"/api/v1/missions/{mission['id']}", json={"capacity": 1, "title": "Renamed"})
    assert shrink.status_code == 200
    grown = await client.patch(f"/api/v1/missions/{mission['id']}", json={"capacity": 2})
    assert grown.json()["places_left"] == 1
    assert (await client.patch(f"{base}/{second}", json={"status": "invited"})).status_code == 200
    too_small = await client.patch(f"/api/v1/missions/{mission['id']}", json={"capacity": 1})
    assert_problem(too_small, 422, "capacity", "at least 2")

    assert (await client.patch(f"{base}/{first}", json={"status": "declined"})).status_code == 200
    assert (await client.post(base, json={"company_id": third, "status": "invited"})).status_code == 201


async def test_participant_errors(client: Client) -> None:
    mission = await create(client)
    base = f"/api/v1/missions/{mission['id']}/participants"
    unknown = await client.post(base, json={"company_id": UNKNOWN})
    assert_problem(unknown, 422, "company_id", "no company")
    gone = await company(client, "Gone GmbH")
    await client.delete(f"/api/v1/companies/{gone}")
    archived = await client.post(base, json={"company_id": gone})
    assert_problem(archived, 422, "company_id", "archived")

    member = await company(client, "Member GmbH")
    assert (await client.post(base, json={"company_id": member})).status_code == 201
    duplicate = await client.post(base, json={"company_id": member, "status": "declined"})
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"].startswith("application/problem+json")

    bad_status = await client.post(base, json={"company_id": member, "status": "maybe"})
    assert_problem(bad_status, 400, "status")
    bad_id = await client.post(base, json={"company_id": "not-a-uuid"})
    assert_problem(bad_id, 400, "company_id")
    bad_patch = await client.patch(f"{base}/{member}", json={"status": "waitlisted"})
    assert_problem(bad_patch, 400, "status")
    late = await client.patch(f"{base}/{member}", json={"status_at": "9999-12-31T23:59:59-01:00"})
    assert_problem(late, 422, "status_at", "between")
    stranger = await company(client, "Stranger GmbH")
    assert (await client.get(f"{base}/{stranger}")).status_code == 404
