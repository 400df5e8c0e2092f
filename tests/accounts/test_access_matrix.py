"""The authorization matrix, built from the app's own route table: a route added without an access
level fails here, and every non-public route is called anonymously, as a member of another company
as staff and as an admin."""

import re
import uuid

import httpx
from litestar import Litestar
from litestar.routes import HTTPRoute
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import ACCESS_KEY, VERIFIED_EMAIL_KEY, Access
from partnermatch.enums import UserRole
from partnermatch.settings import Settings
from tests.conftest import Account, MakeClient, create_account, create_company

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


# Bodies that pass schema validation (`{}` elsewhere), so that the handler answers: another company's
# member must meet the 404 of the company lookup, not the 400 of a missing required field.
WELL_FORMED_BODIES: dict[tuple[str, str], dict[str, str]] = {
    ("/api/v1/companies/{company_id:uuid}/feedback", "POST"): {"lead_id": str(uuid.uuid4()), "kind": "view"},
}


async def call(client: httpx.AsyncClient, method: str, route: str, url: str) -> int:
    body = None if method in {"GET", "DELETE"} else WELL_FORMED_BODIES.get((route, method), {})
    headers = {}
    if method not in {"GET", "HEAD"} and not route.startswith("/api/"):
        # Every portal form carries its CSRF token (tested on its own); the matrix is about access.
        headers["x-csrftoken"] = await csrf_token(client)
    return (await client.request(method, url, json=body, headers=headers)).status_code


async def csrf_token(client: httpx.AsyncClient) -> str:
    page = await client.get("/login")
    found = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


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
            status = await call(anonymous, method, path, url)
            if status in {401, 403} or status >= 500:
                problems.append(f"{label}: anonymous got {status}")
            continue
        if (status := await call(anonymous, method, path, url)) != 401:
            problems.append(f"{label}: anonymous got {status}, expected 401")
        status = await call(as_member, method, path, url)
        if level in {Access.STAFF, Access.ADMIN} and status != 403:
            problems.append(f"{label}: a member got {status}, expected 403")
        if level is Access.MEMBER and "{company_id" in path and status != 404:
            problems.append(f"{label}: another company's member got {status}, expected 404")
        if level is Access.MEMBER and status in {401, 403}:
            problems.append(f"{label}: a member got {status}")
        status = await call(as_staff, method, path, url)
        if level is Access.ADMIN and status != 403:
            problems.append(f"{label}: staff got {status}, expected 403")
        if level is not Access.ADMIN and (status in {401, 403} or status >= 500):
            problems.append(f"{label}: staff got {status}")
        status = await call(as_admin, method, path, url)
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


def needing_a_verified_email(app: Litestar) -> set[tuple[str, str]]:
    return {
        (route.path, method)
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if handler.opt.get(VERIFIED_EMAIL_KEY) and handler.opt.get(ACCESS_KEY) == Access.MEMBER
        for method in handler.http_methods - AUTOMATIC
    }


async def test_a_member_without_a_verified_email_is_told_to_verify_it(
    app: Litestar,
    make_client: MakeClient,
    db_session: AsyncSession,
    settings: Settings,
    member: Account,
) -> None:
    company = member.user.company_id
    assert company is not None
    unverified = await create_account(
        db_session, settings, UserRole.MEMBER, company_id=company, verified=False
    )
    unverified_staff = await create_account(db_session, settings, UserRole.STAFF, verified=False)
    as_unverified, as_verified = make_client(unverified.token), make_client(member.token)
    as_staff = make_client(unverified_staff.token)
    flagged = needing_a_verified_email(app)
    # Registering (changing the company's registration), inviting colleagues, recording feedback.
    assert flagged >= {
        ("/api/v1/companies/{company_id:uuid}", "PATCH"),
        ("/api/v1/companies/{company_id:uuid}/invitations", "POST"),
        ("/api/v1/companies/{company_id:uuid}/feedback", "POST"),
    }
    problems: list[str] = []
    for path, method in sorted(flagged):
        url = concrete(path, company)  # their own company: only the address stands in the way
        response = await as_unverified.request(method, url, json={})
        body = response.json()
        if response.status_code != 403 or body.get("title") != "Email not verified":
            problems.append(f"{method} {url}: an unverified member got {response.status_code} {body}")
        elif (
            body["errors"][0]["field"] != "email" or "/api/v1/auth/verify-email/resend" not in body["detail"]
        ):
            problems.append(f"{method} {url}: the 403 does not say how to verify: {body}")
        for who, client in (("a verified member", as_verified), ("unverified staff", as_staff)):
            status = (await client.request(method, url, json={})).status_code
            if status in {401, 403} or status >= 500:
                problems.append(f"{method} {url}: {who} got {status}")
    assert problems == []
    # Everything else a member does stays open: reading, verifying, exporting their data.
    for url in ("/api/v1/auth/me", f"/api/v1/companies/{company}", "/api/v1/auth/me/export"):
        assert (await as_unverified.get(url)).status_code == 200, url
