import re
import uuid
from email import message_from_bytes
from email.message import Message

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.accounts.models import ApiToken, User
from partnermatch.enums import TokenScope, UserRole
from partnermatch.settings import Settings
from tests.conftest import Account, MakeClient, account_service, create_account, create_company

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a new and much longer passphrase"


def session_cookie(client: httpx.AsyncClient, settings: Settings) -> str | None:
    return client.cookies.get(settings.session_cookie_name)


async def csrf_headers(client: httpx.AsyncClient, settings: Settings) -> dict[str, str]:
    if client.cookies.get(settings.csrf_cookie_name) is None:
        await client.get("/health")
    return {"x-csrftoken": client.cookies[settings.csrf_cookie_name]}


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


def mails_to(settings: Settings, email: str) -> list[Message]:
    paths = sorted((settings.var_dir / "mail").glob("*.eml"))
    messages = [message_from_bytes(path.read_bytes()) for path in paths]
    return [m for m in messages if m["To"] == email]


def token_in(message: Message) -> str:
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    match = re.search(r"token=([\w-]+)", body.decode())
    assert match, body
    return match.group(1)


async def member_with_password(db_session: AsyncSession, settings: Settings) -> Account:
    company_id = await create_company(db_session)
    return await create_account(
        db_session, settings, UserRole.MEMBER, company_id=company_id, password=PASSWORD
    )


async def test_login_sets_a_fresh_secure_session_cookie(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    account = await member_with_password(db_session, settings)
    client = make_client()
    # A session id the client brought along (fixation) is never the one it gets.
    client.cookies.set(settings.session_cookie_name, "chosen-by-an-attacker", domain="testserver.local")
    response = await client.post(
        "/api/v1/auth/login",
        json={"email": account.user.email.upper(), "password": PASSWORD},
        headers=await csrf_headers(client, settings),
    )
    assert response.status_code == 200, response.text
    assert response.json()["email"] == account.user.email
    header = response.headers["set-cookie"]
    assert settings.session_cookie_name.startswith("__Host-")
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
        assert attribute.lower() in header.lower()
    first = session_cookie(client, settings)
    assert first
    assert first != "chosen-by-an-attacker"
    assert (await client.get("/api/v1/auth/me")).json()["id"] == str(account.user.id)

    again = await client.post(
        "/api/v1/auth/login",
        json={"email": account.user.email, "password": PASSWORD},
        headers=await csrf_headers(client, settings),
    )
    assert again.status_code == 200
    second = session_cookie(client, settings)
    assert second
    assert second != first
    stale = make_client()
    stale.cookies.set(settings.session_cookie_name, first)
    assert (await stale.get("/api/v1/auth/me")).status_code == 401


async def test_session_id_is_stored_hashed(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    account = await member_with_password(db_session, settings)
    client = make_client()
    await login(client, account.user.email)
    secret = session_cookie(client, settings)
    tokens = (await db_session.scalars(select(ApiToken.token_hash))).all()
    assert secret not in tokens
    assert account.token not in tokens


async def test_logout_ends_the_session(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    account = await member_with_password(db_session, settings)
    client = make_client()
    await login(client, account.user.email)
    old = session_cookie(client, settings)
    response = await client.post("/api/v1/auth/logout", headers=await csrf_headers(client, settings))
    assert response.status_code == 200
    replay = make_client()
    replay.cookies.set(settings.session_cookie_name, old or "")
    assert (await replay.get("/api/v1/auth/me")).status_code == 401


async def test_password_change_ends_every_other_session(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    account = await member_with_password(db_session, settings)
    laptop, phone = make_client(), make_client()
    await login(laptop, account.user.email)
    await login(phone, account.user.email)
    old = session_cookie(laptop, settings)
    changed = await laptop.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=await csrf_headers(laptop, settings),
    )
    assert changed.status_code == 200, changed.text
    assert (await phone.get("/api/v1/auth/me")).status_code == 401
    assert session_cookie(laptop, settings) != old
    assert (await laptop.get("/api/v1/auth/me")).status_code == 200
    assert (await login(make_client(), account.user.email, PASSWORD)).status_code == 401
    assert (await login(make_client(), account.user.email, NEW_PASSWORD)).status_code == 200


async def test_password_change_checks_the_current_one_and_the_rules(
    member_client: httpx.AsyncClient, db_session: AsyncSession, settings: Settings
) -> None:
    wrong = await member_client.post(
        "/api/v1/auth/password", json={"current_password": "nope", "new_password": NEW_PASSWORD}
    )
    assert wrong.status_code == 422


async def test_a_disabled_user_is_logged_out(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    account = await member_with_password(db_session, settings)
    client = make_client()
    await login(client, account.user.email)
    assert (await client.get("/api/v1/auth/me")).status_code == 200
    await account_service(db_session, settings).set_active(account.user.id, False)
    await db_session.flush()
    assert (await client.get("/api/v1/auth/me")).status_code == 401
    assert (await make_client(account.token).get("/api/v1/auth/me")).status_code == 401
    assert (await login(make_client(), account.user.email)).status_code == 401


async def test_cookie_authenticated_changes_need_the_csrf_token(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    account = await member_with_password(db_session, settings)
    client = make_client()
    await login(client, account.user.email)
    company = f"/api/v1/companies/{account.user.company_id}"
    assert (await client.patch(company, json={"description": "x"})).status_code == 403
    form = await client.post(
        "/api/v1/auth/password", data={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert form.status_code == 403
    ok = await client.patch(company, json={"description": "x"}, headers=await csrf_headers(client, settings))
    assert ok.status_code == 200, ok.text
    # Bearer tokens are not sent by browsers on their own: no CSRF token needed.
    assert (await make_client(account.token).patch(company, json={"description": "y"})).status_code == 200


async def test_failed_logins_are_limited_per_account(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    account = await member_with_password(db_session, settings)
    for _ in range(settings.login_failures_per_account):
        assert (await login(make_client(), account.user.email, "wrong password!!")).status_code == 401
    blocked = await login(make_client(), account.user.email, PASSWORD)
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0


async def test_logins_are_limited_per_address(make_client: MakeClient, settings: Settings) -> None:
    client = make_client()
    for _ in range(settings.login_attempts_per_ip_per_minute):
        response = await login(client, f"{uuid.uuid4().hex}@example.org")
        assert response.status_code == 401
    blocked = await login(client, f"{uuid.uuid4().hex}@example.org")
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0


async def test_login_does_not_tell_whether_an_address_is_registered(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    account = await member_with_password(db_session, settings)
    known = await login(make_client(), account.user.email, "wrong password!!")
    unknown = await login(make_client(), "nobody-" + account.user.email, "wrong password!!")
    assert known.status_code == unknown.status_code == 401
    assert known.json() == unknown.json()


async def test_registration_verification_and_reset(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    client = make_client()
    email = f"founder-{uuid.uuid4().hex[:8]}@example.org"
    registration = {
        "email": email,
        "password": PASSWORD,
        "company": {
            "name": "Neu GmbH",
            "sectors": ["62.01"],
            "employees": 3,
            "founded": 2024,
            "export_experience": "none",
        },
    }
    response = await client.post("/api/v1/auth/register", json=registration)
    assert response.status_code == 202, response.text
    user = await db_session.scalar(select(User).where(User.email == email))
    assert user is not None
    assert user.role == "member"
    assert user.email_verified_at is None
    me = await login(client, email)
    company = await client.get(f"/api/v1/companies/{me.json()['company_id']}")
    assert company.json()["status"] == "pending"

    verify = token_in(mails_to(settings, email)[-1])
    verified = await client.post(
        "/api/v1/auth/verify-email", json={"token": verify}, headers=await csrf_headers(client, settings)
    )
    assert verified.status_code == 204
    assert (await client.get("/api/v1/auth/me")).json()["email_verified"] is True
    used = await make_client().post("/api/v1/auth/verify-email", json={"token": verify})
    assert used.status_code == 422

    # The same address again: the same answer, and a note to the owner instead of a second account.
    again = await make_client().post("/api/v1/auth/register", json={**registration, "email": email.upper()})
    assert again.status_code == 202
    assert again.json() == response.json()
    assert "already has an account" in str(mails_to(settings, email)[-1].get_payload(decode=True))

    reset = await make_client().post("/api/v1/auth/password-reset", json={"email": email})
    assert reset.status_code == 202
    nobody = await make_client().post("/api/v1/auth/password-reset", json={"email": "x" + email})
    assert nobody.json() == reset.json()
    secret = token_in(mails_to(settings, email)[-1])
    confirm = await make_client().post(
        "/api/v1/auth/password-reset/confirm", json={"token": secret, "password": NEW_PASSWORD}
    )
    assert confirm.status_code == 204, confirm.text
    assert (await client.get("/api/v1/auth/me")).status_code == 401  # sessions ended
    assert (await login(make_client(), email, NEW_PASSWORD)).status_code == 200
    reuse = await make_client().post(
        "/api/v1/auth/password-reset/confirm", json={"token": secret, "password": NEW_PASSWORD + "!"}
    )
    assert reuse.status_code == 422


async def test_weak_passwords_are_refused(make_client: MakeClient) -> None:
    for weak in ("short", "password1234", "qwertyqwertyqwerty", "aaaaaaaaaaaaaa"):
        response = await make_client().post(
            "/api/v1/auth/register",
            json={
                "email": "weak@example.org",
                "password": weak,
                "company": {
                    "name": "W",
                    "sectors": ["62.01"],
                    "employees": 1,
                    "founded": 2020,
                    "export_experience": "none",
                },
            },
        )
        assert response.status_code == 422, weak
        assert response.json()["errors"][0]["field"] == "password"


async def test_rejecting_a_company_emails_its_members(
    client: httpx.AsyncClient, make_client: MakeClient, settings: Settings
) -> None:
    email = f"applicant-{uuid.uuid4().hex[:8]}@example.org"
    registration = {
        "email": email,
        "password": PASSWORD,
        "company": {
            "name": "Hopeful UG",
            "sectors": ["62.01"],
            "employees": 2,
            "founded": 2025,
            "export_experience": "none",
        },
    }
    assert (await make_client().post("/api/v1/auth/register", json=registration)).status_code == 202
    pending = (await client.get("/api/v1/companies", params={"q": "Hopeful", "status": "pending"})).json()
    company_id = pending["items"][0]["id"]
    rejected = await client.post(
        f"/api/v1/companies/{company_id}/status", json={"status": "archived", "reason": "not in Berlin"}
    )
    assert rejected.status_code == 201
    notice = mails_to(settings, email)[-1]
    assert "Hopeful UG" in notice["Subject"]
    assert "not in Berlin" in str(notice.get_payload(decode=True))


async def test_read_only_tokens_cannot_change_anything(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings, staff: Account
) -> None:
    _token, secret = await account_service(db_session, settings).create_api_token(
        staff.user.id, "reporting", scopes=frozenset({TokenScope.READ})
    )
    await db_session.flush()
    reader = make_client(secret)
    assert (await reader.get("/api/v1/companies")).status_code == 200
    assert (await reader.post("/api/v1/cities", json={})).status_code == 403


async def test_bad_or_revoked_tokens_are_401(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings, staff: Account
) -> None:
    assert (await make_client("pm_made-up").get("/api/v1/companies")).status_code == 401
    token, secret = await account_service(db_session, settings).create_api_token(staff.user.id, "old")
    await account_service(db_session, settings).revoke_api_token(token.id)
    await db_session.flush()
    response = await make_client(secret).get("/api/v1/companies")
    assert response.status_code == 401
    assert "Bearer" in response.headers["www-authenticate"]
    # Public routes stay public for a browser whose session expired.
    browser = make_client()
    browser.cookies.set(settings.session_cookie_name, "expired")
    assert (await browser.get("/api/v1/cities")).status_code == 200


async def test_admins_disable_accounts_and_manage_tokens(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings, admin: Account
) -> None:
    account = await member_with_password(db_session, settings)
    browser = make_client()
    await login(browser, account.user.email)
    as_admin = make_client(admin.token)
    disabled = await as_admin.patch(f"/api/v1/admin/users/{account.user.id}", json={"is_active": False})
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["is_active"] is False
    assert (await browser.get("/api/v1/auth/me")).status_code == 401
    myself = await as_admin.patch(f"/api/v1/admin/users/{admin.user.id}", json={"is_active": False})
    assert myself.status_code == 422

    issued = await as_admin.post(
        f"/api/v1/admin/users/{admin.user.id}/tokens", json={"name": "nightly export", "scopes": ["read"]}
    )
    assert issued.status_code == 201, issued.text
    secret, token_id = issued.json()["secret"], issued.json()["token"]["id"]
    assert (await make_client(secret).get("/api/v1/companies")).status_code == 200
    listed = (await as_admin.get(f"/api/v1/admin/users/{admin.user.id}/tokens")).json()
    assert "secret" not in listed[0]
    assert {t["name"] for t in listed} >= {"nightly export"}
    assert (await as_admin.delete(f"/api/v1/admin/tokens/{token_id}")).json()["revoked_at"]
    assert (await make_client(secret).get("/api/v1/companies")).status_code == 401


async def test_staff_account_created_without_password_gets_a_reset_link(
    make_client: MakeClient, settings: Settings, admin: Account
) -> None:
    email = f"new-staff-{uuid.uuid4().hex[:8]}@example.org"
    created = await make_client(admin.token).post(
        "/api/v1/admin/users", json={"email": email, "role": "staff"}
    )
    assert created.status_code == 201, created.text
    secret = token_in(mails_to(settings, email)[-1])
    confirm = await make_client().post(
        "/api/v1/auth/password-reset/confirm", json={"token": secret, "password": NEW_PASSWORD}
    )
    assert confirm.status_code == 204
    assert (await login(make_client(), email, NEW_PASSWORD)).status_code == 200
    member_without_company = await make_client(admin.token).post(
        "/api/v1/admin/users", json={"email": "x" + email, "role": "member"}
    )
    assert member_without_company.status_code == 422
