"""Input that tries to break things gets a 4xx problem naming the rule, on the API and the portal:
deep nesting, oversized bodies, extreme numbers, invalid Unicode, abused headers and cookies."""

import httpx
import pytest

from partnermatch.errors import MAX_JSON_DEPTH
from partnermatch.settings import Settings
from tests.companies.test_api import company_payload

PROBLEM = "application/problem+json"
JSON = {"content-type": "application/json"}


def _nested_list(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _nested_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def _assert_problem(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    for word in words:
        assert word in response.text, response.text


@pytest.mark.parametrize("body", [_nested_list(2000), _nested_object(2000), _nested_list(MAX_JSON_DEPTH + 1)])
@pytest.mark.parametrize(
    ("method", "path", "as_staff"),
    [
        ("POST", "/api/v1/auth/login", False),
        ("POST", "/api/v1/auth/register", False),
        ("POST", "/api/v1/companies", True),
        ("POST", "/api/v1/leads", True),
        ("PATCH", "/api/v1/leads/00000000-0000-4000-8000-000000000000", True),
    ],
)
async def test_deeply_nested_json_is_a_400_naming_the_rule(
    anonymous_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    method: str,
    path: str,
    as_staff: bool,
    body: bytes,
) -> None:
    caller = client if as_staff else anonymous_client
    response = await caller.request(method, path, content=body, headers=JSON)
    _assert_problem(response, 400, "body", f"at most {MAX_JSON_DEPTH} levels")


async def test_nesting_inside_strings_does_not_count(client: httpx.AsyncClient) -> None:
    description = "[" * 1000 + '\\"' + "{" * 1000
    response = await client.post("/api/v1/companies", json=company_payload(description=description))
    assert response.status_code == 201, response.text
    assert response.json()["description"] == description


async def test_a_body_over_the_configured_maximum_is_a_413(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    too_big = b'{"name": "' + b"x" * settings.request_max_bytes + b'"}'
    response = await client.post("/api/v1/companies", content=too_big, headers=JSON)
    _assert_problem(response, 413, f"{settings.request_max_bytes:,} bytes")
    listed = await client.get("/api/v1/companies", params={"q": "xxxxxxxx"})
    assert listed.json()["total"] == 0


async def test_a_form_over_the_maximum_is_a_413_too(
    anonymous_client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await anonymous_client.post(
        "/login",
        content=b"email=" + b"a" * settings.request_max_bytes,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413, response.text


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "10" * 40},
        {"limit": "-1"},
        {"limit": "0"},
        {"offset": "-5"},
        {"offset": "9" * 400},
        {"limit": "1e3"},
        {"limit": "NaN"},
        {"q": "x" * 20_000},
        {"order_by": "name; DROP TABLE companies"},
        {"sector": "62.01" * 1000},
    ],
)
async def test_extreme_query_values_are_4xx_problems(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get("/api/v1/companies", params=params)
    assert response.status_code in {400, 422}, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert next(iter(params)) in response.text, "the problem names the parameter"


@pytest.mark.parametrize(
    "change",
    [
        {"employees": 10**400},
        {"employees": 1e308},
        {"founded": -(10**30)},
        {"name": "x" * 1_000_000},
        {"sectors": ["62.01"] * 10_000},
        {"languages": "de"},
    ],
)
async def test_extreme_json_values_are_4xx_problems(
    client: httpx.AsyncClient, change: dict[str, object]
) -> None:
    response = await client.post("/api/v1/companies", json=company_payload(**change))
    assert response.status_code in {400, 413, 422}, response.text
    assert response.headers["content-type"].startswith(PROBLEM)


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "\xff\xfe broken"}',
        b'{"name": "\\ud800 lone surrogate"}',
        b'{"name": ',
        b"\x00\x01\x02",
        b"",
    ],
    ids=["invalid-utf8", "lone-surrogate", "truncated", "binary", "empty"],
)
async def test_broken_json_is_a_400(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/api/v1/companies", content=body, headers=JSON)
    _assert_problem(response, 400)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/companies/%ff%fe",
        "/api/v1/leads/" + "9" * 5000,
        "/api/v1/sectors/%c0%af",
        "/api/v1/cities/%00",
    ],
)
async def test_strange_paths_are_4xx(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer " + "x" * 10_000},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic Zm9vOmJhcg=="},
        {"Cookie": "__Host-partnermatch_session=" + "A" * 4000 + "; partnermatch_session=" + "B" * 4000},
        {"Cookie": "partnermatch_session=%ff%fe; other=\x7f"},
        {"Accept-Language": "de;q=" + "9" * 500 + ", en;q=abc, *;q=-1"},
        {"Content-Type": "application/json; charset=ebcdic"},
    ],
)
async def test_abused_headers_and_cookies_are_4xx_or_ignored(
    anonymous_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await anonymous_client.get("/api/v1/auth/me", headers=headers)
    _assert_problem(response, 401)
    page = await anonymous_client.get("/login", headers=headers)
    if "Authorization" in headers:
        # Credentials that do not work are refused wherever they are sent, the portal included.
        assert page.status_code == 401, page.text
    else:
        assert page.status_code == 200, page.text
