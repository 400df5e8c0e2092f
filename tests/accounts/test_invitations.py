"""Colleagues: invitations by email, accepting with a password, listing, revoking, the daily limit."""

import uuid
from email.message import Message

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.accounts.models import Invitation, User
from partnermatch.enums import CompanyStatus, UserRole
from partnermatch.settings import Settings
from tests.accounts.test_auth import PASSWORD, login, mails_to, token_in
from tests.conftest import Account, MakeClient, account_service, create_account, create_company


def new_address(label: str = "colleague") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@example.org"


def body_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


async def invite(client: httpx.AsyncClient, company_id: object, email: str) -> httpx.Response:
    return await client.post(f"/api/v1/companies/{company_id}/invitations", json={"email": email})


async def accept(client: httpx.AsyncClient, token: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/invitations/accept", json={"token": token, "password": password})


async def test_a_member_invites_a_colleague_who_accepts_with_a_password(
    member_client: httpx.AsyncClient, member: Account, make_client: MakeClient, settings: Settings
) -> None:
    company = member.user.company_id
    email = new_address()
    sent = await invite(member_client, company, email.upper())
    assert sent.status_code == 201, sent.text
    invitation = sent.json()
    assert invitation["email"] == email
    assert invitation["status"] == "pending"
    assert invitation["invited_by"] == str(member.user.id)
    message = mails_to(settings, email)[-1]
    assert member.user.email in body_of(message)
    assert "Member GmbH" in message["Subject"]
    token = token_in(message)

    weak = await accept(make_client(), token, "password1234")
    assert weak.status_code == 422
    assert weak.json()["errors"][0]["field"] == "password"
    accepted = await accept(make_client(), token)  # a weak password does not use up the link
    assert accepted.status_code == 201, accepted.text
    user = accepted.json()
    assert (user["email"], user["role"], user["company_id"]) == (email, "member", str(company))
    assert user["email_verified"] is True
    assert (await accept(make_client(), token, PASSWORD + "!")).status_code == 422

    browser = make_client()
    assert (await login(browser, email)).status_code == 200
    assert (await browser.get(f"/api/v1/companies/{company}")).status_code == 200
    members = (await member_client.get(f"/api/v1/companies/{company}/members")).json()
    assert {m["email"] for m in members} == {member.user.email, email}
    listed = (await member_client.get(f"/api/v1/companies/{company}/invitations")).json()
    assert [(i["id"], i["status"]) for i in listed] == [(invitation["id"], "accepted")]
    pending = await member_client.get(
        f"/api/v1/companies/{company}/invitations", params={"status": "pending"}
    )
    assert pending.json() == []


async def test_inviting_an_address_with_an_account_looks_the_same_to_the_inviter(
    member_client: httpx.AsyncClient,
    member: Account,
    make_client: MakeClient,
    db_session: AsyncSession,
    settings: Settings,
) -> None:
    elsewhere = await create_company(db_session, "Elsewhere KG")
    taken = await create_account(db_session, settings, UserRole.MEMBER, company_id=elsewhere)
    company = member.user.company_id

    fresh = await invite(member_client, company, new_address())
    known = await invite(member_client, company, taken.user.email)
    assert fresh.status_code == known.status_code == 201
    assert fresh.json().keys() == known.json().keys()
    assert known.json()["status"] == "pending"

    note = mails_to(settings, taken.user.email)[-1]
    assert "already has a PartnerMatch account" in body_of(note)
    assert "token=" not in body_of(note)  # nothing to accept: an account belongs to one company
    await db_session.refresh(taken.user)
    assert taken.user.company_id == elsewhere
    # A link for the address, had it leaked, would not move the account either.
    row = await db_session.scalar(select(Invitation).where(Invitation.id == uuid.UUID(known.json()["id"])))
    assert row is not None
    assert row.accepted_at is None


async def test_accepting_after_the_address_got_an_account_is_refused(
    member_client: httpx.AsyncClient,
    member: Account,
    make_client: MakeClient,
    db_session: AsyncSession,
    settings: Settings,
) -> None:
    email = new_address()
    await invite(member_client, member.user.company_id, email)
    token = token_in(mails_to(settings, email)[-1])
    elsewhere = await create_company(db_session, "Quick Starter AG")
    await create_account_with_email(db_session, settings, email, elsewhere)
    response = await accept(make_client(), token)
    assert response.status_code == 409
    assert "sign in" in response.json()["detail"]


async def create_account_with_email(
    db_session: AsyncSession, settings: Settings, email: str, company_id: uuid.UUID
) -> User:
    user = await account_service(db_session, settings).create_user(
        email, None, role=UserRole.MEMBER, company_id=company_id
    )
    await db_session.flush()
    return user


async def test_a_colleague_who_is_already_a_member_is_named_as_such(
    member_client: httpx.AsyncClient, member: Account
) -> None:
    response = await invite(member_client, member.user.company_id, member.user.email)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "email", "rule": "is already a member of this company"}]
    missing = await member_client.post(f"/api/v1/companies/{member.user.company_id}/invitations", json={})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "email"
    bad = await invite(member_client, member.user.company_id, "not an address")
    assert bad.status_code == 400


async def test_revoking_and_inviting_again(
    member_client: httpx.AsyncClient, member: Account, make_client: MakeClient, settings: Settings
) -> None:
    company = member.user.company_id
    email = new_address()
    first = (await invite(member_client, company, email)).json()
    first_token = token_in(mails_to(settings, email)[-1])
    second = (await invite(member_client, company, email)).json()
    second_token = token_in(mails_to(settings, email)[-1])
    statuses = {
        i["id"]: i["status"]
        for i in (await member_client.get(f"/api/v1/companies/{company}/invitations")).json()
    }
    # Only the newest link works.
    assert statuses == {first["id"]: "revoked", second["id"]: "pending"}
    assert (await accept(make_client(), first_token)).status_code == 422

    revoked = await member_client.delete(f"/api/v1/companies/{company}/invitations/{second['id']}")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    assert (await accept(make_client(), second_token)).status_code == 422
    again = await member_client.delete(f"/api/v1/companies/{company}/invitations/{second['id']}")
    assert again.status_code == 200
    unknown = await member_client.delete(f"/api/v1/companies/{company}/invitations/{uuid.uuid4()}")
    assert unknown.status_code == 404

    third = (await invite(member_client, company, new_address())).json()
    token = token_in(mails_to(settings, third["email"])[-1])
    assert (await accept(make_client(), token)).status_code == 201
    accepted = await member_client.delete(f"/api/v1/companies/{company}/invitations/{third['id']}")
    assert accepted.status_code == 409


async def test_another_companys_invitations_are_not_found(
    member_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    db_session: AsyncSession,
) -> None:
    other = await create_company(db_session, "Other Ltd")
    invitation = (await invite(client, other, new_address())).json()
    assert (await member_client.get(f"/api/v1/companies/{other}/members")).status_code == 404
    assert (await member_client.get(f"/api/v1/companies/{other}/invitations")).status_code == 404
    assert (await invite(member_client, other, new_address())).status_code == 404
    gone = await member_client.delete(f"/api/v1/companies/{other}/invitations/{invitation['id']}")
    assert gone.status_code == 404


async def test_staff_manage_any_companys_colleagues_through_the_admin_api(
    client: httpx.AsyncClient,
    member: Account,
    make_client: MakeClient,
    settings: Settings,
) -> None:
    base = f"/api/v1/admin/companies/{member.user.company_id}"
    email = new_address("first-member")
    sent = await client.post(f"{base}/invitations", json={"email": email})
    assert sent.status_code == 201, sent.text
    assert "The PartnerMatch staff" in body_of(mails_to(settings, email)[-1])
    listed = (await client.get(f"{base}/invitations", params={"status": "pending"})).json()
    assert [i["email"] for i in listed] == [email]
    members = (await client.get(f"{base}/members")).json()
    assert [m["email"] for m in members] == [member.user.email]
    revoked = await client.delete(f"{base}/invitations/{sent.json()['id']}")
    assert revoked.json()["status"] == "revoked"
    assert (await client.get(f"/api/v1/admin/companies/{uuid.uuid4()}/members")).status_code == 404
    # Members have their own routes; the admin API is for staff.
    assert (await make_client(member.token).get(f"{base}/members")).status_code == 403


async def test_invitations_per_company_are_limited_per_day(
    member_client: httpx.AsyncClient,
    member: Account,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "invitations_per_company_per_day", 2)
    company = member.user.company_id
    for _ in range(2):
        assert (await invite(member_client, company, new_address())).status_code == 201
    blocked = await invite(member_client, company, new_address())
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["retry-after"]) <= 24 * 3600
    assert "2 invitations within 24 hours" in blocked.json()["detail"]


async def test_archived_companies_take_no_new_members(
    client: httpx.AsyncClient, member: Account, member_client: httpx.AsyncClient
) -> None:
    email = new_address()
    company = member.user.company_id
    assert (await invite(member_client, company, email)).status_code == 201
    archived = await client.post(
        f"/api/v1/companies/{company}/status", json={"status": CompanyStatus.ARCHIVED.value}
    )
    assert archived.status_code == 201, archived.text
    assert (await invite(member_client, company, new_address())).status_code == 409


async def test_invite_accept_and_revoke_are_audited(
    member_client: httpx.AsyncClient,
    member: Account,
    client: httpx.AsyncClient,
    make_client: MakeClient,
    settings: Settings,
) -> None:
    company = member.user.company_id
    email = new_address()
    invitation = (await invite(member_client, company, email)).json()
    accepted = (await accept(make_client(), token_in(mails_to(settings, email)[-1]))).json()
    other = (await invite(member_client, company, new_address())).json()
    await member_client.delete(f"/api/v1/companies/{company}/invitations/{other['id']}")

    log = (await client.get("/api/v1/admin/audit", params={"entity": "invitations"})).json()["items"]
    mine = {
        (e["entity_id"], e["operation"]): e for e in log if e["entity_id"] in {invitation["id"], other["id"]}
    }
    assert set(mine) == {
        (invitation["id"], "insert"),
        (invitation["id"], "update"),
        (other["id"], "insert"),
        (other["id"], "update"),
    }
    sent = mine[(invitation["id"], "insert")]
    assert sent["actor_user_id"] == str(member.user.id)
    assert sent["changes"]["email"] == [None, email]
    assert sent["changes"]["token_hash"] == [None, "(changed)"]
    # Accepting is anonymous; the new member is named as the one who accepted.
    acceptance = mine[(invitation["id"], "update")]
    assert acceptance["actor_user_id"] == accepted["id"]
    assert acceptance["request"] == "POST /api/v1/auth/invitations/accept"
    assert "accepted_at" in acceptance["changes"]
    assert "revoked_at" in mine[(other["id"], "update")]["changes"]
    users = (
        await client.get("/api/v1/admin/audit", params={"entity": "users", "entity_id": accepted["id"]})
    ).json()
    assert [(e["operation"], e["actor_user_id"]) for e in users["items"]] == [("insert", accepted["id"])]
