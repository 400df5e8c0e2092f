import httpx
from litestar import Litestar
from litestar.routes import HTTPRoute

from tests.conftest import Account, MakeClient


async def test_staff_changes_are_recorded_with_before_and_after(
    client: httpx.AsyncClient, staff: Account
) -> None:
    created = await client.post(
        "/api/v1/companies",
        json={
            "name": "Audit GmbH",
            "sectors": ["62.01"],
            "employees": 5,
            "founded": 2020,
            "export_experience": "none",
        },
    )
    company_id = created.json()["id"]
    changed = await client.patch(f"/api/v1/companies/{company_id}", json={"employees": 9})
    assert changed.status_code == 200

    log = await client.get("/api/v1/admin/audit", params={"entity": "companies", "entity_id": company_id})
    assert log.status_code == 200, log.text
    events = log.json()["items"]
    assert [e["operation"] for e in events] == ["update", "insert"]
    update = events[0]
    assert update["changes"] == {"employees": [5, 9]}
    assert update["actor_user_id"] == str(staff.user.id)
    assert update["request"] == f"PATCH /api/v1/companies/{company_id}"
    assert events[1]["changes"]["name"] == [None, "Audit GmbH"]


async def test_reads_and_anonymous_requests_record_nothing_and_secrets_stay_out(
    client: httpx.AsyncClient, make_client: MakeClient, admin: Account
) -> None:
    await client.get("/api/v1/companies")
    as_admin = make_client(admin.token)
    issued = await as_admin.post(f"/api/v1/admin/users/{admin.user.id}/tokens", json={"name": "x"})
    events = (await client.get("/api/v1/admin/audit", params={"entity": "api_tokens"})).json()["items"]
    assert events[0]["changes"]["token_hash"] == [None, "(changed)"]
    assert issued.json()["secret"] not in str(events)


def test_the_audit_log_cannot_be_changed_through_the_api(app: Litestar) -> None:
    methods = {
        method
        for route in app.routes
        if isinstance(route, HTTPRoute) and route.path.startswith("/api/v1/admin/audit")
        for method in route.methods
    }
    assert methods <= {"GET", "HEAD", "OPTIONS"}


async def test_members_cannot_read_the_audit_log(member_client: httpx.AsyncClient) -> None:
    assert (await member_client.get("/api/v1/admin/audit")).status_code == 403
