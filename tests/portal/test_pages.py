"""The portal's pages without a browser: access, CSRF, forms that keep what was typed, the error pages,
the language, and what the recommendations page logs."""

import re
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.accounts.models import User
from partnermatch.companies.models import Company
from partnermatch.enums import CompanyStatus, InteractionKind
from partnermatch.interactions.models import Interaction
from partnermatch.recommendations.models import ModelVersion
from partnermatch.settings import Settings
from tests.accounts.test_auth import mails_to, token_in
from tests.conftest import Account, MakeClient
from tests.portal.conftest import PASSWORD, Member, browser, csrf_token, post_form, signed_in
from tests.recommendations.test_recommendations import busiest_company

REGISTRATION = {
    "email": "",
    "password": "a long enough passphrase 1",
    "password_again": "a long enough passphrase 1",
    "name": "Spreewerk Robotik GmbH",
    "sectors": ["28.99"],
    "employees": "35",
    "founded": "2011",
    "export_experience": "some",
    "languages": ["de", "en"],
    "target_cities": ["warsaw", "paris"],
    "description": "Roboterzellen für die Lebensmittelindustrie.",
}


def field_error(html: str, field: str) -> str | None:
    found = re.search(rf'<p class="error" id="{field}-error">(.*?)</p>', html, re.S)
    return found.group(1).strip() if found else None


async def test_the_start_page_speaks_the_browsers_language_and_lists_the_partner_cities(
    make_client: MakeClient,
) -> None:
    german = await browser(make_client, "de-DE,de;q=0.9").get("/")
    english = await browser(make_client, "en-GB,en;q=0.8").get("/")
    assert german.status_code == english.status_code == 200
    assert '<html lang="de">' in german.text
    assert '<html lang="en">' in english.text
    assert "Warschau" in german.text
    assert "Warsaw" in english.text
    assert "Unternehmen registrieren" in german.text
    assert "Register your company" in english.text
    # Nothing of a page comes from another host.
    assert not re.search(r'(src|href)="(https?:)?//', german.text)


async def test_forms_are_refused_without_their_csrf_token(make_client: MakeClient) -> None:
    client = browser(make_client)
    await client.get("/login")  # the cookie alone does not do: the form must carry the token
    refused = await client.post("/login", data={"email": "a@example.org", "password": "x"})
    assert refused.status_code == 403
    assert "Nicht erlaubt" in refused.text  # the portal's own error page, in German
    accepted = await post_form(client, "/login", {"email": "a@example.org", "password": "wrong"})
    assert accepted.status_code == 422
    assert "Die E-Mail-Adresse oder das Passwort ist falsch." in accepted.text
    assert 'value="a@example.org"' in accepted.text


async def test_member_pages_send_visitors_to_sign_in_and_back(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    visitor = browser(make_client)
    answer = await visitor.get("/profile")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/profile"
    member = await signed_in(make_client, db_session, settings)
    assert (await member.client.get("/profile")).status_code == 200
    # A `next` to another host is not followed: signing in lands on the portal's own home page.
    again = browser(make_client)
    token = csrf_token(await again.get("/login"))
    redirect = await again.post(
        "/login",
        data={"_csrf_token": token, "email": member.email, "password": PASSWORD, "next": "//evil.example/x"},
    )
    assert redirect.status_code == 303
    assert redirect.headers["location"] == "/recommendations"


async def test_a_rejected_registration_keeps_what_was_typed_and_names_each_broken_field(
    make_client: MakeClient, db_session: AsyncSession
) -> None:
    client = browser(make_client)
    typed = {
        **REGISTRATION,
        "email": "not-an-address",
        "employees": "viele",
        "founded": "1200",
        "sectors": [],
    }
    answer = await post_form(client, "/register", typed, token_from="/register")
    assert answer.status_code == 422
    html = answer.text
    assert field_error(html, "employees") == "Geben Sie eine ganze Zahl ein."
    assert field_error(html, "founded") == "Geben Sie eine Zahl ab 1600 ein."
    assert field_error(html, "sectors") == "Wählen Sie mindestens 1."
    assert 'value="viele"' in html
    assert 'value="Spreewerk Robotik GmbH"' in html
    assert 'value="warsaw" checked' in html
    assert "Roboterzellen für die Lebensmittelindustrie." in html
    assert 'aria-invalid="true"' in html
    assert "a long enough passphrase" not in html  # passwords are never sent back
    # Nothing was saved.
    assert await db_session.scalar(select(Company).where(Company.name == "Spreewerk Robotik GmbH")) is None


async def test_registering_in_the_portal_then_confirming_the_address_by_the_mailed_link(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    client = browser(make_client)
    email = f"founder-{uuid.uuid4().hex[:8]}@example.org"
    # The service's own rule (a known NACE code) is shown by its field too.
    unknown = await post_form(
        client, "/register", {**REGISTRATION, "email": email, "sectors": ["99.99"]}, token_from="/register"
    )
    assert field_error(unknown.text, "sectors") == "Wählen Sie eine Branche aus der Liste."
    done = await post_form(client, "/register", {**REGISTRATION, "email": email}, token_from="/register")
    assert done.status_code == 200, done.text
    assert "Bitte prüfen Sie Ihr E-Mail-Postfach" in done.text
    company = await db_session.scalar(select(Company).where(Company.name == REGISTRATION["name"]))
    assert company is not None
    assert company.status == CompanyStatus.PENDING
    assert company.target_cities == ["paris", "warsaw"]
    assert company.sectors == ["28.99"]
    link = token_in(mails_to(settings, email)[-1])
    landing = await client.get(f"/verify-email?token={link}")
    assert "Adresse bestätigen" in landing.text  # a button: opening the link changes nothing
    user = await db_session.scalar(select(User).where(User.email == email))
    assert user is not None
    assert user.email_verified_at is None
    confirmed = await post_form(
        client, "/verify-email", {"token": link}, token_from=f"/verify-email?token={link}"
    )
    assert "Ihre Adresse ist bestätigt" in confirmed.text
    await db_session.refresh(user)
    assert user.email_verified_at is not None


async def test_a_pending_company_sees_what_happens_next_and_a_rejected_one_the_reason(
    member_page: Member, db_session: AsyncSession
) -> None:
    company = await db_session.get_one(Company, member_page.company_id)
    company.status = CompanyStatus.PENDING.value
    await db_session.flush()
    pending = await member_page.client.get("/recommendations")
    assert "Ihre Registrierung wartet auf Freigabe" in pending.text
    company.status, company.status_reason = CompanyStatus.ARCHIVED.value, "kein Sitz in Berlin"
    await db_session.flush()
    rejected = await member_page.client.get("/recommendations")
    assert "wurde nicht freigegeben" in rejected.text
    assert "kein Sitz in Berlin" in rejected.text


async def test_another_companys_invitation_is_a_404_page(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings
) -> None:
    owner = await signed_in(make_client, db_session, settings)
    invited = await post_form(
        owner.client, "/colleagues", {"email": "new@example.org"}, token_from="/colleagues"
    )
    assert invited.status_code == 200
    assert "new@example.org" in invited.text
    revoke = re.search(r'action="(/colleagues/invitations/[^"]+/revoke)"', invited.text)
    assert revoke is not None
    stranger = await signed_in(make_client, db_session, settings)
    answer = await post_form(stranger.client, revoke.group(1), {}, token_from="/colleagues")
    assert answer.status_code == 404
    assert "Seite nicht gefunden" in answer.text
    assert (await post_form(owner.client, revoke.group(1), {}, token_from="/colleagues")).status_code == 303


async def test_the_language_is_switched_on_any_page_and_kept_by_the_account(
    member_page: Member, db_session: AsyncSession
) -> None:
    switched = await post_form(member_page.client, "/language", {"language": "en", "next": "/settings"})
    assert switched.status_code == 303
    assert switched.headers["location"] == "/settings"
    page = await member_page.client.get("/settings")
    assert '<html lang="en">' in page.text
    assert "Language and email" in page.text
    user = await db_session.scalar(select(User).where(User.email == member_page.email))
    assert user is not None
    assert user.language == "en"


async def test_preferences_keep_when_consent_was_given(member_page: Member, db_session: AsyncSession) -> None:
    data = {"language": "de", "digest_frequency": "fortnightly", "digest_consent": "yes"}
    saved = await post_form(member_page.client, "/settings/preferences", data, token_from="/settings")
    assert saved.status_code == 303
    user = await db_session.scalar(select(User).where(User.email == member_page.email))
    assert user is not None
    assert (user.digest_frequency, user.language) == ("fortnightly", "de")
    consent = user.digest_consent_at
    assert consent is not None
    await post_form(member_page.client, "/settings/preferences", data, token_from="/settings")
    await db_session.refresh(user)
    assert user.digest_consent_at == consent
    await post_form(
        member_page.client, "/settings/preferences", {"digest_frequency": "monthly"}, token_from="/settings"
    )
    await db_session.refresh(user)
    assert user.digest_consent_at is None
    assert user.language is None


async def test_the_profile_form_saves_with_the_apis_rules_and_keeps_a_broken_entry(
    member_page: Member, db_session: AsyncSession
) -> None:
    form = {
        "name": "Umbenannt GmbH",
        "sectors": ["62.01", "70.22"],
        "employees": "12",
        "founded": "2015",
        "export_experience": "extensive",
        "languages": ["de"],
        "target_cities": ["tokyo"],
        "description": "",
        "contact_email": "",
        "website": "ftp://nope",
    }
    broken = await post_form(member_page.client, "/profile", form, token_from="/profile")
    assert broken.status_code == 422
    assert field_error(broken.text, "website") == "Bitte prüfen Sie das Format dieser Angabe."
    assert 'value="ftp://nope"' in broken.text
    company = await db_session.get_one(Company, member_page.company_id)
    assert company.name == "Member GmbH" or company.name.startswith("Portal ")
    saved = await post_form(member_page.client, "/profile", {**form, "website": ""}, token_from="/profile")
    assert saved.status_code == 303
    await db_session.refresh(company)
    assert (company.name, company.sectors, company.target_cities) == (
        "Umbenannt GmbH",
        ["62.01", "70.22"],
        ["tokyo"],
    )
    assert company.website is None
    assert company.export_experience == "extensive"


async def test_the_sector_picker_finds_german_and_english_words_and_keeps_five(member_page: Member) -> None:
    german = await member_page.client.get("/sectors", params={"q": "Programmierung"})
    english = await member_page.client.get("/sectors", params={"q": "programming"})
    assert "62.01" in german.text
    assert "62.01" in english.text
    chosen = await member_page.client.get(
        "/sectors/chosen",
        params=[("sectors", c) for c in ("10.11", "62.01", "70.22", "72.19", "46.51")] + [("add", "28.99")],
    )
    assert chosen.text.count('name="sectors"') == 5
    assert "bis zu fünf Branchen" in chosen.text
    removed = await member_page.client.get(
        "/sectors/chosen", params=[("sectors", "10.11"), ("sectors", "62.01"), ("remove", "10.11")]
    )
    assert removed.text.count('name="sectors"') == 1
    assert "Hauptbranche" in removed.text


async def test_the_recommendations_page_logs_the_list_it_rendered_once_a_minute(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings, active_model: ModelVersion
) -> None:
    company_id = await busiest_company(db_session)
    member = await signed_in(make_client, db_session, settings, company_id)
    started = datetime.now(UTC) - timedelta(seconds=1)
    page = await member.client.get("/recommendations")
    assert page.status_code == 200
    rendered = re.findall(r'<li class="item" id="lead-([0-9a-f-]+)">', page.text)
    assert rendered
    logged = (
        await db_session.scalars(
            select(Interaction)
            .where(
                Interaction.company_id == company_id,
                Interaction.kind == "impression",
                Interaction.at >= started,
            )
            .order_by(Interaction.position)
        )
    ).all()
    assert [(str(i.lead_id), i.position) for i in logged] == [
        (lead, n) for n, lead in enumerate(rendered, start=1)
    ]
    # Reasons are in the reader's language.
    assert "Gleiche Branche" in page.text or "Unternehmen Ihrer Branche" in page.text
    await member.client.get("/recommendations")
    again = await db_session.scalar(
        select(Interaction.id)
        .where(
            Interaction.company_id == company_id, Interaction.kind == "impression", Interaction.at >= started
        )
        .offset(len(rendered))
    )
    assert again is None  # the same list again within a minute is not logged twice


async def test_acting_on_a_recommendation_updates_it_in_place_and_is_recorded(
    make_client: MakeClient,
    db_session: AsyncSession,
    settings: Settings,
    active_model: ModelVersion,
    staff: Account,
) -> None:
    company_id = await busiest_company(db_session)
    member = await signed_in(make_client, db_session, settings, company_id)
    page = await member.client.get("/recommendations")
    first, second, third = re.findall(r'<li class="item" id="lead-([0-9a-f-]+)">', page.text)[:3]
    token = csrf_token(page)
    htmx = {"HX-Request": "true", "x-csrftoken": token}
    liked = await member.client.post(
        f"/recommendations/{first}/feedback", data={"action": "interested", "position": "1"}, headers=htmx
    )
    assert liked.status_code == 200
    assert liked.text.lstrip().startswith(f'<li class="item done" id="lead-{first}"')
    assert "<html" not in liked.text  # a fragment, swapped into the list
    declined = await member.client.post(
        f"/recommendations/{second}/feedback",
        data={"action": "not_relevant", "reason": "wrong_city", "position": "2"},
        headers=htmx,
    )
    assert "Ausgeblendet" in declined.text
    introduced = await member.client.post(
        f"/recommendations/{third}/feedback", data={"action": "introduction", "position": "3"}, headers=htmx
    )
    assert "stellt Sie" in introduced.text
    recorded = {
        (str(i.lead_id), i.kind, i.reason)
        for i in await db_session.scalars(
            select(Interaction).where(Interaction.company_id == company_id, Interaction.kind != "impression")
        )
    }
    assert {
        (first, "interested", None),
        (second, "declined", "wrong_city"),
        (third, "contacted", None),
    } <= recorded
    told = [m for m in mails_to(settings, staff.user.email) if "Introduction requested" in str(m["Subject"])]
    assert told, "staff are told of the introduction request"
    after = await member.client.get("/recommendations")
    assert f'id="lead-{second}"' not in after.text  # a declined lead is not recommended again


async def test_opening_a_lead_records_a_view_with_the_position_it_was_shown_at(
    make_client: MakeClient, db_session: AsyncSession, settings: Settings, active_model: ModelVersion
) -> None:
    company_id = await busiest_company(db_session)
    member = await signed_in(make_client, db_session, settings, company_id)
    page = await member.client.get("/recommendations")
    lead = re.findall(r'<li class="item" id="lead-([0-9a-f-]+)">', page.text)[1]
    detail = await member.client.get(f"/leads/{lead}?position=2")
    assert detail.status_code == 200
    assert "Organisation" in detail.text
    views = (
        await db_session.scalars(
            select(Interaction).where(
                Interaction.company_id == company_id,
                Interaction.kind == InteractionKind.VIEW.value,
                Interaction.lead_id == uuid.UUID(lead),
            )
        )
    ).all()
    assert [v.position for v in views][-1:] == [2]
    missing = await member.client.get(f"/leads/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert "Seite nicht gefunden" in missing.text


async def test_registrations_count_against_the_limit_per_address_like_sign_ins(
    make_client: MakeClient, settings: Settings
) -> None:
    client = browser(make_client)
    broken = {**REGISTRATION, "email": "not-an-address"}
    for _ in range(settings.login_attempts_per_ip_per_minute):
        answer = await post_form(client, "/register", broken, token_from="/register")
        assert answer.status_code == 422
    blocked = await post_form(client, "/register", broken, token_from="/register")
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "Zu viele Versuche" in blocked.text  # the portal's own page, not the API's JSON
