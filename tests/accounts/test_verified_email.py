"""A member proves their address before acting for their company; the 403 leads to a new link."""

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.enums import UserRole
from partnermatch.settings import Settings
from tests.accounts.test_auth import mails_to, token_in
from tests.conftest import Account, MakeClient, create_account


async def test_an_unverified_member_asks_for_a_new_link_and_then_may_invite(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings, member: Account
) -> None:
    account = await create_account(
        db_session, settings, UserRole.MEMBER, company_id=member.user.company_id, verified=False
    )
    client = make_client(account.token)
    invitations = f"/api/v1/companies/{account.user.company_id}/invitations"
    refused = await client.post(invitations, json={"email": "colleague@example.org"})
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")

    resent = await client.post("/api/v1/auth/verify-email/resend")
    assert resent.status_code == 202, resent.text
    token = token_in(mails_to(settings, account.user.email)[-1])
    verified = await make_client().post("/api/v1/auth/verify-email", json={"token": token})
    assert verified.status_code == 204
    assert (await client.get("/api/v1/auth/me")).json()["email_verified"] is True
    invited = await client.post(invitations, json={"email": "colleague@example.org"})
    assert invited.status_code == 201, invited.text
    assert (await client.post("/api/v1/auth/verify-email/resend")).status_code == 409


async def test_resending_needs_a_signed_in_user(anonymous_client: httpx.AsyncClient) -> None:
    assert (await anonymous_client.post("/api/v1/auth/verify-email/resend")).status_code == 401
