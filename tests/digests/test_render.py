"""The digest as an email, in German and in English; the signed tokens of its links."""

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.extract import extract

from partnermatch.digests import tokens
from partnermatch.digests.content import DigestContent, DigestLead, DigestMission
from partnermatch.digests.render import HTML_TEMPLATE, TEXT_TEMPLATE, RenderedDigest, render_digest
from partnermatch.portal import catalogs
from partnermatch.portal.templating import TEMPLATES
from partnermatch.ranking.reasons import Reason
from partnermatch.settings import Settings

USER = uuid.UUID("0192f5a8-0000-7000-8000-000000000001")
COMPANY = uuid.UUID("0192f5a8-0000-7000-8000-000000000002")
SOLAR = uuid.UUID("0192f5a8-0000-7000-8000-000000000003")
TENDER = uuid.UUID("0192f5a8-0000-7000-8000-000000000004")
LINK = re.compile(r'href="(https://partnermatch\.example\.org/digest/open/([^"]+))"')


@pytest.fixture(scope="module")
def mail_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        var_dir=tmp_path_factory.mktemp("var"),
        secret_key="digest-test-secret",
        public_url="https://partnermatch.example.org/",
    )


def digest(company_name: str = "Müller & Söhne <Berlin> GmbH", leads: int = 2) -> DigestContent:
    solar = DigestLead(
        lead_id=SOLAR,
        title="Solar <modules> & inverters",
        kind="distributor",
        city_id="warsaw",
        city_name="Warsaw",
        deadline=date(2026, 12, 3),
        reasons=(
            Reason("same_sector", {"code": "62.01"}),
            Reason("targets_city", {"city": "beijing", "city_name": "Beijing"}),
        ),
        position=1,
    )
    tender = DigestLead(
        lead_id=TENDER,
        title="Hospital software tender",
        kind="tender",
        city_id="beijing",
        city_name="Beijing",
        deadline=None,
        reasons=(Reason("age_suits", {"kind": "tender"}),),
        position=2,
    )
    mission = DigestMission(
        mission_id=uuid.uuid4(),
        title="Delegation to Tokyo",
        city_id="tokyo",
        city_name="Tokyo",
        starts_on=date(2027, 1, 10),
        ends_on=date(2027, 1, 14),
    )
    return DigestContent(COMPANY, company_name, (solar, tender)[:leads], (mission,))


def rendered(settings: Settings, language: str, *, leads: int = 2) -> RenderedDigest:
    return render_digest(digest(leads=leads), user_id=USER, language=language, settings=settings)


def test_the_german_digest(mail_settings: Settings) -> None:
    mail = rendered(mail_settings, "de")
    assert mail.subject == "2 neue Empfehlungen für Müller & Söhne <Berlin> GmbH"
    for part in (mail.text, mail.html):
        assert "Vertriebspartner" in part  # the lead's kind
        for city in ("Warschau", "Peking", "Tokio"):
            assert city in part
        assert "Frist: 3. Dezember 2026" in part
        assert "Gleiche Branche: 62.01 Programmierungstätigkeiten" in part
        assert "Sie zielen auf Peking" in part
        assert "10. Januar 2027 bis 14. Januar 2027" in part  # the mission's dates
        assert "Kommende Delegationsreisen" in part
        assert "Abbestellen" in part
    # The text part is not HTML: nothing escaped.
    assert "Guten Tag, Team von Müller & Söhne <Berlin> GmbH," in mail.text
    assert "1. Solar <modules> & inverters" in mail.text
    assert "&amp;" not in mail.text
    assert "&lt;" not in mail.text
    # The HTML part escapes what it shows.
    assert "Solar &lt;modules&gt; &amp; inverters" in mail.html
    assert "Müller &amp; Söhne &lt;Berlin&gt; GmbH" in mail.html
    assert 'lang="de"' in mail.html


def test_the_english_digest(mail_settings: Settings) -> None:
    mail = rendered(mail_settings, "en")
    assert mail.subject == "2 new matches for Müller & Söhne <Berlin> GmbH"
    for part in (mail.text, mail.html):
        assert "Distributor" in part
        for city in ("Warsaw", "Beijing", "Tokyo"):
            assert city in part
        assert "Deadline: 3 December 2026" in part
        assert "Same sector: 62.01 Computer programming activities" in part
        assert "You target Beijing" in part
        assert "Hospital software tender" in part
        assert "Upcoming trade missions" in part
    assert "Hello Müller & Söhne <Berlin> GmbH team," in mail.text
    assert rendered(mail_settings, "en", leads=1).subject.startswith("1 new match for ")
    assert rendered(mail_settings, "de", leads=1).subject.startswith("1 neue Empfehlung für ")


def test_the_html_part_survives_mail_clients(mail_settings: Settings) -> None:
    html = rendered(mail_settings, "de").html
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert "<style" not in html.lower()  # inlined, then dropped
    assert 'role="presentation"' in html  # tables for the layout
    assert re.search(r'<body[^>]* style="[^"]*background-color', html)
    assert re.search(r'<a[^>]*class="button"[^>]*style="[^"]*background-color: *#00487a', html)
    assert "/static/" not in html  # nothing to fetch


def test_every_link_is_absolute_and_signed(mail_settings: Settings) -> None:
    mail = rendered(mail_settings, "en")
    base = "https://partnermatch.example.org"
    links = LINK.findall(mail.html)
    assert [tokens.read_click(mail_settings, token) for _url, token in links] == [
        tokens.Click(USER, COMPANY, SOLAR, 1),
        tokens.Click(USER, COMPANY, TENDER, 2),
    ]
    for url, _token in links:
        assert url in mail.text
    for path in ("/recommendations", "/settings", "/missions"):
        assert f'href="{base}{path}"' in mail.html
        assert f"{base}{path}\n" in mail.text
    [unsubscribe] = re.findall(rf'href="({base}/digest/unsubscribe/[^"]+)"', mail.html)
    assert tokens.read_unsubscribe(mail_settings, unsubscribe.rsplit("/", 1)[1]) == USER
    assert unsubscribe in mail.text
    assert mail.headers == (
        ("List-Unsubscribe", f"<{unsubscribe}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    )


def messages_of(template: str) -> set[str | tuple[str, ...]]:
    with (TEMPLATES / template).open("rb") as source:
        return {
            message for _line, message, _comments, _context in extract("jinja2", source, catalogs.KEYWORDS)
        }


def test_every_message_of_the_text_part_is_translated() -> None:
    # The catalogs are extracted from the .html templates: the .txt part must say nothing they lack.
    german = {m.id: m for m in catalogs.load("de") if m.id}
    text = messages_of(TEXT_TEMPLATE)
    assert len(text) > 5
    assert text <= messages_of(HTML_TEMPLATE)
    for message in text:
        strings = german[message].string
        assert all(strings if isinstance(strings, tuple) else (strings,)), message


# ----------------------------------------------------------------- tokens


def test_a_token_gives_its_payload_back_for_its_purpose_only(mail_settings: Settings) -> None:
    token = tokens.sign(mail_settings, "digest-click", {"u": "abc", "p": 3})
    assert tokens.verify(mail_settings, "digest-click", token) == {"u": "abc", "p": 3}
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)  # URL-safe, no padding
    assert tokens.verify(mail_settings, "digest-unsubscribe", token) is None
    click = tokens.click_token(mail_settings, user_id=USER, company_id=COMPANY, lead_id=SOLAR, position=1)
    assert tokens.read_unsubscribe(mail_settings, click) is None
    assert tokens.read_click(mail_settings, tokens.unsubscribe_token(mail_settings, USER)) is None


def test_a_tampered_or_foreign_token_fails(mail_settings: Settings, tmp_path: Path) -> None:
    token = tokens.unsubscribe_token(mail_settings, USER)
    body, signature = token.split(".")
    other_body = tokens.unsubscribe_token(mail_settings, COMPANY).split(".")[0]
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for bad in (
        f"{other_body}.{signature}",  # another user's payload under this signature
        f"{body}.{flipped}",
        f"{body}.",
        body,
        "",
        "not-a-token",
        f"{body}.{signature}.x",
        f"{body}ä.{signature}",
    ):
        assert tokens.read_unsubscribe(mail_settings, bad) is None, bad
    elsewhere = Settings(var_dir=tmp_path, secret_key="another-installation")
    assert tokens.read_unsubscribe(elsewhere, token) is None
    assert tokens.read_unsubscribe(mail_settings, token) == USER


def test_click_tokens_expire_and_unsubscribe_tokens_do_not(mail_settings: Settings) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=tokens.CLICK_MAX_AGE_DAYS + 1)
    old_click = tokens.click_token(
        mail_settings, user_id=USER, company_id=COMPANY, lead_id=SOLAR, position=1, now=long_ago
    )
    assert tokens.read_click(mail_settings, old_click) is None
    assert tokens.read_click(mail_settings, old_click, now=long_ago + timedelta(days=1)) is not None
    years_ago = datetime.now(UTC) - timedelta(days=3650)
    old_unsubscribe = tokens.sign(mail_settings, tokens.UNSUBSCRIBE, {"u": USER.hex}, now=years_ago)
    assert tokens.read_unsubscribe(mail_settings, old_unsubscribe) == USER
