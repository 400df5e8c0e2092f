"""Text with NUL characters is refused at the request boundary, the same on both databases."""

from httpx import AsyncClient as Client

from tests.companies.test_api import company_payload


async def test_nul_in_json_names_the_field_and_stores_nothing(client: Client) -> None:
    name = "Nul Test GmbH"
    response = await client.post(
        "/api/v1/companies", json=company_payload(name=name, description="Roboter\x00 für Lebensmittel")
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"] == [{"field": "description", "rule": "must not contain NUL characters"}]
    listed = await client.get("/api/v1/companies", params={"q": name})
    assert listed.json()["total"] == 0


async def test_nul_in_a_list_item_names_its_position(client: Client) -> None:
    response = await client.post("/api/v1/companies", json=company_payload(languages=["de", "e\x00n"]))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "languages.1"


async def test_nul_in_a_query_parameter_names_the_parameter(client: Client) -> None:
    response = await client.get("/api/v1/companies", params={"q": "ro\x00bot"})
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "q", "rule": "must not contain NUL characters"}]


async def test_an_escaped_backslash_before_u0000_is_ordinary_text(client: Client) -> None:
    # The JSON text `\\u0000` is a backslash followed by "u0000", not a NUL.
    description = "Pfad C:\\u0000 im Text"
    response = await client.post("/api/v1/companies", json=company_payload(description=description))
    assert response.status_code == 201, response.text
    assert response.json()["description"] == description
