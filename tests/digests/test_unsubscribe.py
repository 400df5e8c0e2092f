"""Where a digest's links land: unsubscribing (a page, and RFC 8058's one-click POST) and a lead's link."""

import uuid
from collections.abc import Sequence

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import partnermatch.app
from partnermatch import jobs
from partnermatch.access import Principal
from partnermatch.accounts.models import User
from partnermatch.digests import tokens
from partnermatch.enums import (
    DigestFrequency,
    InteractionKind,
    InteractionSource,
    LeadKind,
    UserRole,
)
from partnermatch.interactions.models import Interaction
from partnermatch.leads.schemas import LeadCreate
from partnermatch.leads.service import LeadService
from partnermatch.mail import mailer_for
from partnermatch.privacy.service import PrivacyService
from partnermatch.settings import Settings
from tests.conftest import Account, MakeClient, create_account, create_company


def browser(make_client: MakeClient, language: str = "de") -> httpx.AsyncClient:
    client = make_client()
    client.headers.update({"Accept": "text/html", "Accept-Language": language})
    return client


async def reader(db_session: AsyncSession, settings: Settings) -> Account:
    company_id = await create_company(db_session, f"Digest {uuid.uuid4().hex[:6]} GmbH")
    account = await create_account(db_session, settings, UserRole.MEMBER, company_id=company_id)
    account.user.language = "en"
    await db_session.flush()
    return account


async def frequency_of(db_session: AsyncSession, user: User) -> str:
    await db_session.refresh(user)
    return user.digest_frequency


async def test_the_link_shows_a_confirmation_and_changes_nothing(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    account = await reader(db_session, settings)
    token = tokens.unsubscribe_token(settings, account.user.id)
    page = await browser(make_client, "de").get(f"/digest/unsubscribe/{token}")
    assert page.status_code == 200
    # The member's own language (English), not the browser's.
    assert "Unsubscribe from the match digest" in page.text
    assert f'<form method="post" action="/digest/unsubscribe/{token}"' in page.text
    assert 'href="/static/portal.css"' in page.text  # the portal's look
    assert await frequency_of(db_session, account.user) == DigestFrequency.WEEKLY.value


async def test_one_click_from_a_mail_client_unsubscribes_without_cookies_or_csrf(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    account = await reader(db_session, settings)
    account.user.digest_frequency = DigestFrequency.MONTHLY.value
    await db_session.flush()
    token = tokens.unsubscribe_token(settings, account.user.id)
    mail_client = make_client()
    answer = await mail_client.post(f"/digest/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200, answer.text
    assert not mail_client.cookies.get(settings.session_cookie_name)
    assert await frequency_of(db_session, account.user) == DigestFrequency.NEVER.value
    assert account.user.language == "en"  # nothing else changed
    again = await mail_client.post(f"/digest/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200


async def test_the_pages_button_unsubscribes_and_says_so(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    account = await reader(db_session, settings)
    account.user.language = None
    await db_session.flush()
    token = tokens.unsubscribe_token(settings, account.user.id)
    client = browser(make_client, "de")
    await client.get(f"/digest/unsubscribe/{token}")
    done = await client.post(f"/digest/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert "Sie haben die Empfehlungen abbestellt" in done.text
    assert await frequency_of(db_session, account.user) == DigestFrequency.NEVER.value


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_forged_token_is_the_404_page_and_changes_nothing(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings, method: str
) -> None:
    account = await reader(db_session, settings)
    genuine = tokens.unsubscribe_token(settings, account.user.id)
    body, signature = genuine.split(".")
    other = tokens.unsubscribe_token(settings, uuid.uuid4()).split(".")[0]
    click = tokens.click_token(
        settings, user_id=account.user.id, company_id=uuid.uuid4(), lead_id=uuid.uuid4(), position=1
    )
    client = browser(make_client, "de")
    for forged in (f"{other}.{signature}", f"{body}.{signature[::-1]}", click, "nonsense"):
        answer = await client.request(method, f"/digest/unsubscribe/{forged}")
        assert answer.status_code == 404, forged
        assert "Seite nicht gefunden" in answer.text
    assert await frequency_of(db_session, account.user) == DigestFrequency.WEEKLY.value


async def test_the_token_of_a_deleted_account_is_the_404_page(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    account = await reader(db_session, settings)
    user_id, company_id = account.user.id, account.user.company_id
    assert company_id is not None
    unsubscribe = tokens.unsubscribe_token(settings, user_id)
    lead = await a_lead(db_session)
    click = tokens.click_token(settings, user_id=user_id, company_id=company_id, lead_id=lead, position=1)
    principal = Principal(user_id=user_id, role=UserRole.MEMBER, company_id=company_id)
    await PrivacyService(db_session, mailer=mailer_for(settings)).delete_account(
        principal, account.user.email
    )
    await db_session.flush()
    client = browser(make_client, "en")
    for method in ("GET", "POST"):
        answer = await client.request(method, f"/digest/unsubscribe/{unsubscribe}")
        assert answer.status_code == 404
        assert "Page not found" in answer.text
    opened = await client.get(f"/digest/open/{click}")
    assert opened.status_code == 404
    assert await views(db_session, company_id, lead) == []


# ----------------------------------------------------------------- a lead's link


async def a_lead(db_session: AsyncSession) -> uuid.UUID:
    lead = await LeadService(session=db_session).create_lead(
        LeadCreate(
            title="Solar modules for Warsaw",
            kind=LeadKind.DISTRIBUTOR,
            organization="Warsaw Energy",
            city="warsaw",
            sectors=["62.01"],
        )
    )
    await db_session.flush()
    return lead.id


async def views(db_session: AsyncSession, company_id: uuid.UUID, lead_id: uuid.UUID) -> list[Interaction]:
    found = await db_session.scalars(
        select(Interaction).where(
            Interaction.company_id == company_id,
            Interaction.lead_id == lead_id,
            Interaction.kind == InteractionKind.VIEW.value,
        )
    )
    return list(found.all())


class Kept:
    """A runner that keeps the jobs it is given: what the request left for after its response."""

    def __init__(self) -> None:
        self.jobs: list[jobs.Job] = []

    async def enqueue(self, found: Sequence[jobs.Job]) -> None:
        self.jobs.extend(found)


async def test_a_leads_link_records_a_view_from_the_digest_after_the_response(
    make_client: MakeClient,
    db_session: AsyncSession,
    session_maker: async_sessionmaker[AsyncSession],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = await reader(db_session, settings)
    company_id = account.user.company_id
    assert company_id is not None
    lead = await a_lead(db_session)
    token = tokens.click_token(
        settings, user_id=account.user.id, company_id=company_id, lead_id=lead, position=3
    )
    kept = Kept()
    monkeypatch.setattr(partnermatch.app, "runner", lambda _state, _key: kept)
    opened = await browser(make_client).get(f"/digest/open/{token}")
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/leads/{lead}"
    assert await views(db_session, company_id, lead) == []  # the request itself wrote nothing
    [job] = kept.jobs
    await jobs.call(jobs.JobContext(session_maker, settings), job)
    [view] = await views(db_session, company_id, lead)
    assert (view.position, view.source) == (3, InteractionSource.DIGEST.value)


async def test_a_leads_link_clicked_twice_is_one_view_and_lands_on_the_lead(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    account = await reader(db_session, settings)
    company_id = account.user.company_id
    assert company_id is not None
    lead = await a_lead(db_session)
    token = tokens.click_token(
        settings, user_id=account.user.id, company_id=company_id, lead_id=lead, position=1
    )
    client = browser(make_client)
    for _ in range(2):
        opened = await client.get(f"/digest/open/{token}")
        assert opened.status_code == 303
    [view] = await views(db_session, company_id, lead)
    assert (view.position, view.source) == (1, InteractionSource.DIGEST.value)
    # Not signed in, the lead's page asks to sign in first, and comes back to the lead.
    landed = await client.get(opened.headers["location"])
    assert landed.status_code == 303
    assert landed.headers["location"] == f"/login?next=/leads/{lead}"


async def test_a_forged_or_mismatched_click_is_the_404_page_and_records_nothing(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    account = await reader(db_session, settings)
    company_id = account.user.company_id
    assert company_id is not None
    lead = await a_lead(db_session)
    genuine = tokens.click_token(
        settings, user_id=account.user.id, company_id=company_id, lead_id=lead, position=1
    )
    body, signature = genuine.split(".")
    someone_else = await create_company(db_session, "Other GmbH")
    client = browser(make_client, "de")
    for bad in (
        f"{body}.{signature[::-1]}",
        tokens.unsubscribe_token(settings, account.user.id),  # another purpose
        tokens.click_token(
            settings, user_id=account.user.id, company_id=someone_else, lead_id=lead, position=1
        ),
        tokens.click_token(
            settings, user_id=account.user.id, company_id=company_id, lead_id=uuid.uuid4(), position=1
        ),
    ):
        answer = await client.get(f"/digest/open/{bad}")
        assert answer.status_code == 404
        assert "Seite nicht gefunden" in answer.text
    assert await views(db_session, company_id, lead) == []
    assert await views(db_session, someone_else, lead) == []
