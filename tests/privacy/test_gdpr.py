"""GDPR export and erasure, checked against the column classification of every table: a column
classified as personal that the export leaves out, or the erasure leaves behind, fails here."""

from datetime import UTC, datetime
from uuid import UUID

import httpx
from sqlalchemy import String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.companies.models import Company
from partnermatch.interactions.models import Interaction
from partnermatch.leads.models import Lead
from partnermatch.outbox.models import UndeliverableAddress
from partnermatch.privacy.classification import CLASSIFICATION, Kind, columns_of
from partnermatch.privacy.service import ANONYMOUS
from partnermatch.settings import Settings
from tests.accounts.test_auth import PASSWORD, mails_to, token_in
from tests.conftest import Account, MakeClient

MARK = "zqxmark"


def test_every_column_of_every_table_is_classified() -> None:
    actual = {t.name: {c.name for c in t.columns} for t in Company.metadata.tables.values()}
    classified = {table: set(columns) for table, columns in CLASSIFICATION.items()}
    missing = {t: sorted(cols - classified.get(t, set())) for t, cols in actual.items()}
    assert {t: c for t, c in missing.items() if c} == {}, (
        "classify these columns in partnermatch/privacy/classification.py: personal or not?"
    )
    stale = {t: sorted(cols - actual.get(t, set())) for t, cols in classified.items()}
    assert {t: c for t, c in stale.items() if c} == {}


async def _personal_company(
    member_client: httpx.AsyncClient, client: httpx.AsyncClient, member: Account, db_session: AsyncSession
) -> str:
    """The member's company with every personal column filled with the marker, changed through the
    API so that the audit log holds the values too, plus an interaction (an aggregate to keep)."""
    company_id = str(member.user.company_id)
    changed = await member_client.patch(
        f"/api/v1/companies/{company_id}",
        json={
            "name": f"{MARK} Consulting",
            "description": f"Run by {MARK}",
            "contact_email": f"{MARK}@example.org",
            "website": f"https://{MARK}.example.org",
        },
    )
    assert changed.status_code == 200, changed.text
    status = await client.post(
        f"/api/v1/companies/{company_id}/status", json={"status": "approved", "reason": f"{MARK} ok"}
    )
    assert status.status_code == 201, status.text
    invited = await member_client.post(
        f"/api/v1/companies/{company_id}/invitations", json={"email": f"{MARK}.colleague@example.org"}
    )
    assert invited.status_code == 201, invited.text
    # Mail to the member (in the outbox), and a bounce of their address.
    reset = await client.post("/api/v1/auth/password-reset", json={"email": member.user.email})
    assert reset.status_code == 202, reset.text
    db_session.add(
        UndeliverableAddress(address=member.user.email, since=datetime.now(UTC), reason=f"{MARK} 550")
    )
    lead = Lead(
        title="Buyer of sensors",
        kind="buyer",
        organization="Tokyo Trading",
        city_id="tokyo",
        published_at=datetime(2026, 1, 5, tzinfo=UTC),
    )
    db_session.add(lead)
    await db_session.flush()
    db_session.add(
        Interaction(
            company_id=member.user.company_id,
            lead_id=lead.id,
            kind="view",
            at=datetime(2026, 1, 6, tzinfo=UTC),
        )
    )
    await db_session.flush()
    return company_id


async def test_the_export_holds_every_personal_column(
    member_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    member: Account,
    staff: Account,
    db_session: AsyncSession,
) -> None:
    await _personal_company(member_client, client, member, db_session)
    response = await member_client.get("/api/v1/auth/me/export")
    assert response.status_code == 200, response.text
    assert "attachment" in response.headers["content-disposition"]
    export = response.json()
    tables = export["tables"]
    for table in CLASSIFICATION:
        personal = columns_of(table, Kind.PERSONAL)
        if not personal:
            continue
        assert tables.get(table), f"the export leaves out {table}"
        for row in tables[table]:
            assert personal <= row.keys(), f"the export leaves out personal columns of {table}"
    for table, rows in tables.items():
        secrets = columns_of(table, Kind.SECRET, Kind.INTERNAL)
        assert all(not (secrets & row.keys()) for row in rows), f"secrets of {table} exported"
    assert tables["users"] == [tables["users"][0]]
    assert tables["users"][0]["email"] == member.user.email
    assert tables["companies"][0]["contact_email"] == f"{MARK}@example.org"
    assert [i["email"] for i in tables["invitations"]] == [f"{MARK}.colleague@example.org"]
    assert len(tables["interactions"]) == 1
    actors = {e["actor_user_id"] for e in tables["audit_events"]}
    assert actors == {str(member.user.id), None}  # the staff member who approved is withheld
    assert str(staff.user.id) not in response.text


async def _mentions(db_session: AsyncSession, text: str) -> list[str]:
    found = []
    for table in Company.metadata.tables.values():
        for column in table.columns:
            hits = await db_session.scalar(
                select(func.count()).select_from(table).where(cast(column, String).contains(text))
            )
            if hits:
                found.append(f"{table.name}.{column.name}")
    return found


async def test_erasing_a_company_leaves_no_personal_data_and_keeps_the_aggregates(
    member_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    make_client: MakeClient,
    member: Account,
    staff: Account,
    db_session: AsyncSession,
    settings: Settings,
) -> None:
    company_id = await _personal_company(member_client, client, member, db_session)
    assert await _mentions(db_session, MARK)  # the check below can see the marker at all
    for email in (member.user.email, staff.user.email):
        assert (
            await make_client().post("/api/v1/auth/password-reset", json={"email": email})
        ).status_code == 202
    assert mails_to(settings, member.user.email)
    assert mails_to(settings, f"{MARK}.colleague@example.org")
    staff_mails = len(mails_to(settings, staff.user.email))

    erased = await client.post(f"/api/v1/admin/companies/{company_id}/erase")
    assert erased.status_code == 200, erased.text
    report = erased.json()
    assert report["name"] == f"Erased company {UUID(company_id).hex[:8]}"
    assert report["users_deleted"] == 1
    assert report["invitations_deleted"] == 1
    # Development mail to the erased addresses goes too, and only that.
    assert report["mail_files_deleted"] >= 2
    assert mails_to(settings, member.user.email) == []
    assert mails_to(settings, f"{MARK}.colleague@example.org") == []
    assert len(mails_to(settings, staff.user.email)) == staff_mails

    assert await _mentions(db_session, MARK) == []
    assert await _mentions(db_session, member.user.email) == []
    company = (await client.get(f"/api/v1/companies/{company_id}")).json()
    assert company["status"] == "archived"
    assert company["contact_email"] is None
    assert company["website"] is None
    kept = await db_session.scalar(
        select(func.count()).select_from(Interaction).where(Interaction.company_id == UUID(company_id))
    )
    assert kept == 1
    assert (await member_client.get("/api/v1/auth/me")).status_code == 401
    log = (await client.get("/api/v1/admin/audit", params={"actor": str(ANONYMOUS)})).json()["items"]
    assert {e["request"] for e in log} >= {f"PATCH /api/v1/companies/{company_id}"}
    again = await client.post(f"/api/v1/admin/companies/{company_id}/erase")
    assert again.status_code == 200
    assert (await client.post(f"/api/v1/admin/companies/{UUID(int=1)}/erase")).status_code == 404


async def test_a_member_deletes_their_account(
    member_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    member: Account,
    db_session: AsyncSession,
) -> None:
    await _personal_company(member_client, client, member, db_session)
    wrong = await member_client.delete("/api/v1/auth/me", params={"confirm": "someone@example.org"})
    assert wrong.status_code == 422
    deleted = await member_client.delete("/api/v1/auth/me", params={"confirm": member.user.email.upper()})
    assert deleted.status_code == 204, deleted.text
    assert (await member_client.get("/api/v1/auth/me")).status_code == 401
    assert await _mentions(db_session, member.user.email) == []
    log = (await client.get("/api/v1/admin/audit", params={"entity": "users"})).json()["items"]
    mine = [e for e in log if e["entity_id"] == str(member.user.id)]
    assert [e["operation"] for e in mine] == ["delete", "insert"] or [e["operation"] for e in mine] == [
        "delete"
    ]
    assert all(e["actor_user_id"] != str(member.user.id) for e in log)
    # The company and what it did stay; staff may erase it separately.
    assert (await client.get(f"/api/v1/companies/{member.user.company_id}")).status_code == 200


async def test_an_invited_colleague_deletes_their_account_and_their_invitation_goes(
    member_client: httpx.AsyncClient,
    make_client: MakeClient,
    member: Account,
    db_session: AsyncSession,
    settings: Settings,
) -> None:
    email = f"{MARK}-invitee@example.org"
    company = member.user.company_id
    await member_client.post(f"/api/v1/companies/{company}/invitations", json={"email": email})
    token = token_in(mails_to(settings, email)[-1])
    accepted = await make_client().post(
        "/api/v1/auth/invitations/accept", json={"token": token, "password": PASSWORD}
    )
    assert accepted.status_code == 201, accepted.text
    colleague = make_client()
    login = await colleague.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200
    export = (await colleague.get("/api/v1/auth/me/export")).json()
    assert email in {i["email"] for i in export["tables"]["invitations"]}
    csrf = {"x-csrftoken": colleague.cookies[settings.csrf_cookie_name]}
    gone = await colleague.delete("/api/v1/auth/me", params={"confirm": email}, headers=csrf)
    assert gone.status_code == 204, gone.text
    assert await _mentions(db_session, email) == []
    assert mails_to(settings, email) == []
    # The inviter and the company stay.
    members = (await member_client.get(f"/api/v1/companies/{company}/members")).json()
    assert [m["email"] for m in members] == [member.user.email]


async def test_staff_cannot_delete_their_own_account(
    client: httpx.AsyncClient, staff: Account, make_client: MakeClient
) -> None:
    response = await client.delete("/api/v1/auth/me", params={"confirm": staff.user.email})
    assert response.status_code == 409
    assert (await client.get("/api/v1/auth/me")).status_code == 200
