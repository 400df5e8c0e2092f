"""The authorization matrix, built from the app's own route table: a route added without an access
level fails here, and every non-public route is called anonymously, as a member of another company
as staff and as an admin."""

import re
import uuid

import httpx
from litestar import Litestar
from litestar.routes import HTTPRoute
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import ACCESS_KEY, Access
from tests.conftest import Account, MakeClient, create_company

# Litestar's automatic answers, not handlers of ours.
AUTOMATIC = {"OPTIONS", "HEAD"}
PARAM = re.compile(r"\{(\w+):(\w+)\}")


def routes(app: Litestar) -> list[tuple[str, str, Access | None]]:
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            level = handler.opt.get(ACCESS_KEY)
            for method in sorted(handler.http_methods - AUTOMATIC):
                found.append((route.path, method, Access(level) if level else None))
    return found


def concrete(path: str, company_id: uuid.UUID) -> str:
    def value(match: re.Match[str]) -> str:
        name, kind = match.groups()
        if name == "company_id" and path.startswith("/api/v1/companies"):
            return str(company_id)  # a real company, but not the member's
        if kind == "uuid":
            return str(uuid.uuid4())
        return {"city_id": "tokyo", "code": "62", "path": "openapi.yaml"}.get(name, "x")

    return PARAM.sub(value, path)


async def call(client: httpx.AsyncClient, method: str, path: str) -> int:
    body = None if method in {"GET", "DELETE"} else {}
    return (await client.request(method, path, json=body)).status_code


def test_every_route_declares_who_may_call_it(app: Litestar) -> None:
    undeclared = [f"{method} {path}" for path, method, level in routes(app) if level is None]
    assert undeclared == [], "declare opt=access(Access.…) on these handlers or their controller"


async def test_authorization_matrix(
    app: Litestar,
    make_client: MakeClient,
    db_session: AsyncSession,
    member: Account,
    staff: Account,
    admin: Account,
) -> None:
    other_company = await create_company(db_session, "Someone Else AG")
    anonymous, as_member = make_client(), make_client(member.token)
    as_staff, as_admin = make_client(staff.token), make_client(admin.token)
    problems: list[str] = []
    table = routes(app)
    assert len(table) > 30
    for path, method, level in table:
        url = concrete(path, other_company)
        label = f"{method} {url} ({level})"
        if level is Access.PUBLIC:
            status = await call(anonymous, method, url)
            if status in {401, 403} or status >= 500:
                problems.append(f"{label}: anonymous got {status}")
            continue
        if (status := await call(anonymous, method, url)) != 401:
            problems.append(f"{label}: anonymous got {status}, expected 401")
        status = await call(as_member, method, url)
        if level in {Access.STAFF, Access.ADMIN} and status != 403:
            problems.append(f"{label}: a member got {status}, expected 403")
        if level is Access.MEMBER and "{company_id" in path and status != 404:
            problems.append(f"{label}: another company's member got {status}, expected 404")
        if level is Access.MEMBER and status in {401, 403}:
            problems.append(f"{label}: a member got {status}")
        status = await call(as_staff, method, url)
        if level is Access.ADMIN and status != 403:
            problems.append(f"{label}: staff got {status}, expected 403")
        if level is not Access.ADMIN and (status in {401, 403} or status >= 500):
            problems.append(f"{label}: staff got {status}")
        status = await call(as_admin, method, url)
        if status in {401, 403} or status >= 500:
            problems.append(f"{label}: an admin got {status}")
    assert problems == []


async def test_a_member_reads_and_changes_their_own_company(
    member_client: httpx.AsyncClient, member: Account
) -> None:
    own = f"/api/v1/companies/{member.user.company_id}"
    assert (await member_client.get(own)).status_code == 200
    changed = await member_client.patch(own, json={"description": "We make sensors."})
    assert changed.status_code == 200, changed.text
    assert changed.json()["description"] == "We make sensors."
    assert (await member_client.get("/api/v1/companies")).status_code == 403
    assert (await member_client.post(f"{own}/status", json={"status": "approved"})).status_code == 403
