from typing import Any

import msgspec
from httpx import AsyncClient as Client
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.companies.models import Company
from partnermatch.companies.schemas import CompanyCreate
from partnermatch.companies.service import CompanyService
from partnermatch.enums import CompanyStatus


def company_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": "Spreewerk Robotics GmbH",
        "sectors": ["28.99", "62.01"],
        "employees": 42,
        "founded": 2015,
        "export_experience": "some",
        "languages": ["de", "en"],
        "target_cities": ["warsaw", "paris"],
        "description": "Wir bauen Roboter für die Lebensmittelindustrie und suchen Vertriebspartner.",
        "contact_email": "info@spreewerk.example",
        "website": "https://spreewerk.example",
    }
    payload.update(overrides)
    return payload


async def approved_company(session: AsyncSession, name: str) -> Company:
    """A company registered through the service and approved, as staff would leave it (not committed)."""
    data = msgspec.convert(company_payload(name=name), CompanyCreate)
    return await CompanyService(session=session).register(data, status=CompanyStatus.APPROVED)


async def test_register_read_update_archive(client: Client) -> None:
    created = await client.post("/api/v1/companies", json=company_payload())
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "pending"
    assert body["sectors"] == ["28.99", "62.01"]
    assert body["target_cities"] == ["paris", "warsaw"]

    company_id = body["id"]
    fetched = await client.get(f"/api/v1/companies/{company_id}")
    assert fetched.json()["name"] == "Spreewerk Robotics GmbH"

    changed = await client.patch(
        f"/api/v1/companies/{company_id}", json={"sectors": ["62.01", "28.99"], "employees": 50}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["sectors"] == ["62.01", "28.99"]
    assert changed.json()["employees"] == 50

    archived = await client.delete(f"/api/v1/companies/{company_id}")
    assert archived.json()["status"] == "archived"


async def test_unknown_sector_names_field_and_rule(client: Client) -> None:
    response = await client.post("/api/v1/companies", json=company_payload(sectors=["99.99"]))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["errors"] == [{"field": "sectors[0]", "rule": "'99.99' is not a NACE Rev. 2 code"}]


async def test_schema_violation_is_400_naming_field(client: Client) -> None:
    response = await client.post("/api/v1/companies", json=company_payload(employees=0))
    assert response.status_code == 400
    problem = response.json()
    assert problem["status"] == 400
    assert any(e["field"] == "employees" for e in problem["errors"]), problem


async def test_unknown_id_is_404(client: Client) -> None:
    response = await client.get("/api/v1/companies/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.json()["title"] == "Not found"


async def test_duplicate_external_id_is_409(client: Client) -> None:
    first = await client.post("/api/v1/companies", json=company_payload(external_id="c-1"))
    assert first.status_code == 201
    second = await client.post("/api/v1/companies", json=company_payload(external_id="c-1"))
    assert second.status_code == 409


async def test_filters_sector_prefix_city_and_text(client: Client) -> None:
    await client.post("/api/v1/companies", json=company_payload(name="Alpha Software", sectors=["62.01"]))
    await client.post(
        "/api/v1/companies",
        json=company_payload(
            name="Beta Bakery", sectors=["10.71"], target_cities=["tokyo"], description="Brot"
        ),
    )
    by_division = (await client.get("/api/v1/companies", params={"sector": "62"})).json()
    assert [c["name"] for c in by_division["items"]] == ["Alpha Software"]
    assert by_division["total"] == 1
    by_section = (await client.get("/api/v1/companies", params={"sector": "C"})).json()
    assert [c["name"] for c in by_section["items"]] == ["Beta Bakery"]
    by_city = (await client.get("/api/v1/companies", params={"city": "tokyo"})).json()
    assert [c["name"] for c in by_city["items"]] == ["Beta Bakery"]
    by_text = (await client.get("/api/v1/companies", params={"q": "brot"})).json()
    assert [c["name"] for c in by_text["items"]] == ["Beta Bakery"]
    ordered = (await client.get("/api/v1/companies", params={"order_by": "-name", "limit": 1})).json()
    assert ordered["items"][0]["name"] == "Beta Bakery"
    assert ordered["total"] == 2
    assert ordered["limit"] == 1


async def test_bad_order_by_names_allowed_fields(client: Client) -> None:
    response = await client.get("/api/v1/companies", params={"order_by": "password"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "order_by"


async def test_text_search_is_literal_and_folds_non_ascii_case(client: Client) -> None:
    await client.post("/api/v1/companies", json=company_payload(name="Müller & Söhne 100% Bio"))
    await client.post("/api/v1/companies", json=company_payload(name="Other 1000 Bio", description="x"))
    percent = (await client.get("/api/v1/companies", params={"q": "100%"})).json()
    assert [c["name"] for c in percent["items"]] == ["Müller & Söhne 100% Bio"]
    umlaut = (await client.get("/api/v1/companies", params={"q": "MÜLLER"})).json()
    assert [c["name"] for c in umlaut["items"]] == ["Müller & Söhne 100% Bio"]
