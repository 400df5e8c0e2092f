from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import AsyncClient as Client

from tests.companies.test_api import company_payload
from tests.leads.test_api import assert_problem, lead_payload

UNKNOWN = "00000000-0000-0000-0000-000000000000"


async def make(client: Client) -> tuple[str, str, str]:
    """Two companies and a lead."""
    ids = []
    for name in ("Spree Analytics GmbH", "Havel Foods GmbH"):
        response = await client.post("/api/v1/companies", json=company_payload(name=name))
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    lead = await client.post("/api/v1/leads", json=lead_payload())
    assert lead.status_code == 201, lead.text
    return ids[0], ids[1], lead.json()["id"]


async def record(client: Client, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/interactions", json=fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_record_and_list_newest_first(client: Client) -> None:
    spree, havel, lead = await make(client)
    shown = await record(
        client, company_id=spree, lead_id=lead, kind="impression", at="2026-03-14T09:30:00+01:00", position=3
    )
    assert shown["kind"] == "impression"
    assert shown["position"] == 3
    assert shown["at"].startswith("2026-03-14T08:30:00")
    assert isinstance(shown["id"], int)
    await record(client, company_id=spree, lead_id=lead, kind="interested", at="2026-03-15T10:00:00Z")
    latest = await record(client, company_id=havel, lead_id=lead, kind="view", position=1)
    age = datetime.now(UTC) - datetime.fromisoformat(latest["at"])
    assert timedelta(0) <= age < timedelta(minutes=1), "defaults to now"

    page = (await client.get("/api/v1/interactions")).json()
    assert [(i["company_id"], i["kind"]) for i in page["items"]] == [
        (havel, "view"),
        (spree, "interested"),
        (spree, "impression"),
    ]
    assert page["total"] == 3


async def test_filters_and_pagination(client: Client) -> None:
    spree, havel, lead = await make(client)
    other_lead = (await client.post("/api/v1/leads", json=lead_payload(title="Other"))).json()["id"]
    await record(client, company_id=spree, lead_id=lead, kind="view", at="2026-03-01T12:00:00Z")
    await record(client, company_id=spree, lead_id=other_lead, kind="contacted", at="2026-03-02T12:00:00Z")
    await record(client, company_id=havel, lead_id=lead, kind="declined", at="2026-03-03T12:00:00Z")
    await record(client, company_id=havel, lead_id=other_lead, kind="deal", at="2026-03-04T12:00:00Z")

    async def kinds(**params: Any) -> list[str]:
        response = await client.get("/api/v1/interactions", params=params)
        assert response.status_code == 200, response.text
        return [i["kind"] for i in response.json()["items"]]

    assert await kinds(company_id=spree) == ["contacted", "view"]
    assert await kinds(lead_id=lead) == ["declined", "view"]
    assert await kinds(company_id=havel, lead_id=other_lead) == ["deal"]
    assert await kinds(kind="deal") == ["deal"]
    assert await kinds(since="2026-03-03T12:00:00Z") == ["deal", "declined"], "since is inclusive"
    assert await kinds(until="2026-03-02T12:00:00Z") == ["view"], "until is exclusive"
    # 13:00 in Berlin is 12:00 UTC: offsets are honoured.
    assert await kinds(since="2026-03-02T13:00:00+01:00", until="2026-03-04T13:00:00+01:00") == [
        "declined",
        "contacted",
    ]

    page = (await client.get("/api/v1/interactions", params={"limit": 3, "offset": 2})).json()
    assert [i["kind"] for i in page["items"]] == ["contacted", "view"]
    assert (page["total"], page["limit"], page["offset"]) == (4, 3, 2)


async def test_unknown_company_or_lead_is_422_naming_the_field(client: Client) -> None:
    spree, _, lead = await make(client)
    no_company = await client.post(
        "/api/v1/interactions", json={"company_id": UNKNOWN, "lead_id": lead, "kind": "view"}
    )
    assert_problem(no_company, 422, "company_id", "no company")
    no_lead = await client.post(
        "/api/v1/interactions", json={"company_id": spree, "lead_id": UNKNOWN, "kind": "view"}
    )
    assert_problem(no_lead, 422, "lead_id", "no lead")


async def test_duplicate_event_is_409(client: Client) -> None:
    spree, _, lead = await make(client)
    event = {"company_id": spree, "lead_id": lead, "kind": "contacted", "at": "2026-03-14T09:30:00+01:00"}
    await record(client, **event)
    same_instant = {**event, "at": "2026-03-14T08:30:00Z"}
    duplicate = await client.post("/api/v1/interactions", json=same_instant)
    assert duplicate.status_code == 409, duplicate.text
    assert duplicate.headers["content-type"].startswith("application/problem+json")
    other_kind = await client.post("/api/v1/interactions", json={**event, "kind": "introduced"})
    assert other_kind.status_code == 201


async def test_position_rules(client: Client) -> None:
    spree, _, lead = await make(client)
    zero = await client.post(
        "/api/v1/interactions", json={"company_id": spree, "lead_id": lead, "kind": "view", "position": 0}
    )
    assert_problem(zero, 400, "position")
    on_a_deal = await client.post(
        "/api/v1/interactions", json={"company_id": spree, "lead_id": lead, "kind": "deal", "position": 2}
    )
    assert_problem(on_a_deal, 422, "position", "impressions and views")


async def test_schema_violations_are_400_naming_the_field(client: Client) -> None:
    spree, _, lead = await make(client)
    valid = {"company_id": spree, "lead_id": lead, "kind": "view"}
    cases = {
        "kind": {**valid, "kind": "liked"},
        "at": {**valid, "at": "2026-03-14T09:30:00"},
        "company_id": {**valid, "company_id": "42"},
    }
    for field, payload in cases.items():
        assert_problem(await client.post("/api/v1/interactions", json=payload), 400, field)
    year_one = await client.post("/api/v1/interactions", json={**valid, "at": "0001-01-01T00:00:00+01:00"})
    assert_problem(year_one, 422, "at", "between")
    missing = await client.post("/api/v1/interactions", json={"company_id": spree, "kind": "view"})
    assert missing.status_code == 400
    assert "lead_id" in missing.text


async def test_bad_list_parameters(client: Client) -> None:
    naive = await client.get("/api/v1/interactions", params={"since": "2026-03-14T09:30:00"})
    assert_problem(naive, 400, "since")
    timestamp = await client.get("/api/v1/interactions", params={"until": "0.5"})
    assert_problem(timestamp, 400, "until")
    no_such_day = await client.get("/api/v1/interactions", params={"until": "2026-02-30T00:00:00Z"})
    assert_problem(no_such_day, 422, "until", "RFC 3339")
    backwards = await client.get(
        "/api/v1/interactions", params={"since": "2026-03-14T00:00:00Z", "until": "2026-03-13T00:00:00Z"}
    )
    assert_problem(backwards, 422, "until", "since")
    assert_problem(await client.get("/api/v1/interactions", params={"kind": "liked"}), 400, "kind")
    assert_problem(await client.get("/api/v1/interactions", params={"company_id": "x"}), 400, "company_id")
    assert_problem(await client.get("/api/v1/interactions", params={"until": "yesterday"}), 400, "until")
    overflow = await client.get("/api/v1/interactions", params={"since": "9999-12-31T23:59:59-01:00"})
    assert_problem(overflow, 422, "since", "between")
