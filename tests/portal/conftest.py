"""Portal tests: a browser-like client (HTML, cookies, the CSRF token every form carries) on the test app."""

import re
import uuid
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.enums import UserRole
from partnermatch.settings import Settings
from tests.conftest import MakeClient, create_account, create_company
from tests.recommendations.conftest import active_model, imported, trial

__all__ = ["active_model", "imported", "trial"]

PASSWORD = "portal-test-password-42"
TOKEN = re.compile(r'name="_csrf_token" value="([^"]+)"')


def csrf_token(page: httpx.Response) -> str:
    found = TOKEN.search(page.text)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


async def post_form(
    client: httpx.AsyncClient, path: str, data: dict[str, str | list[str]], *, token_from: str = "/login"
) -> httpx.Response:
    """What a browser does: open a page (which sets the CSRF cookie), then post its form with the token."""
    token = csrf_token(await client.get(token_from))
    return await client.post(path, data={"_csrf_token": token, **data})


def browser(make_client: MakeClient, language: str = "de") -> httpx.AsyncClient:
    client = make_client()
    client.headers.update({"Accept": "text/html", "Accept-Language": language})
    return client


@dataclass(frozen=True)
class Member:
    email: str
    company_id: uuid.UUID
    client: httpx.AsyncClient


async def signed_in(
    make_client: MakeClient,
    db_session: AsyncSession,
    settings: Settings,
    company_id: uuid.UUID | None = None,
    *,
    language: str = "de",
    verified: bool = True,
) -> Member:
    company_id = company_id or await create_company(db_session, f"Portal {uuid.uuid4().hex[:6]} GmbH")
    account = await create_account(
        db_session, settings, UserRole.MEMBER, company_id=company_id, password=PASSWORD, verified=verified
    )
    client = browser(make_client, language)
    answer = await post_form(client, "/login", {"email": account.user.email, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    return Member(account.user.email, company_id, client)


@pytest.fixture
async def member_page(make_client: MakeClient, db_session: AsyncSession, settings: Settings) -> Member:
    return await signed_in(make_client, db_session, settings)
