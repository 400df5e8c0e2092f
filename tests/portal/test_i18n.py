"""German and English: complete catalogs, one language per request without shared state, formatting."""

import asyncio
import re
from datetime import date, datetime

import httpx
import pytest
from babel.messages.catalog import Catalog

from partnermatch.portal import catalogs, i18n
from partnermatch.portal.templating import environment
from partnermatch.ranking.reasons import Reason
from tests.conftest import MakeClient
from tests.portal.conftest import browser

PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")


@pytest.fixture(scope="module")
def code_messages() -> Catalog:
    return catalogs.extract()


def test_every_message_of_the_code_and_the_templates_has_a_german_translation(code_messages: Catalog) -> None:
    german = catalogs.load("de")
    wanted = {(m.context, m.id) for m in code_messages if m.id}
    held = {(m.context, m.id) for m in german if m.id}
    assert wanted - held == set(), "run `partnermatch translations update` and translate the new messages"
    assert [m.id for m in catalogs.missing(german)] == []
    assert held - wanted == set(), "the catalog holds messages the code no longer has"
    assert len(wanted) > 250  # templates and code were both read


def test_translations_keep_every_placeholder() -> None:
    for message in catalogs.load("de"):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        expected = set(PLACEHOLDER.findall(ids[-1]))
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) == expected, (message.id, string)


async def test_interleaved_renders_each_keep_their_own_language() -> None:
    """One shared environment, two tasks switching back and forth: the language is the task's."""
    template = environment().from_string("{{ _('Sign in') }} {{ 3|number }}")

    async def render(language: str) -> list[str]:
        i18n.use(language)
        out = []
        for _ in range(5):
            out.append(template.render())
            await asyncio.sleep(0)  # let the other task run and set its language
        return out

    german, english = await asyncio.gather(render("de"), render("en"))
    assert set(german) == {"Anmelden 3"}
    assert set(english) == {"Sign in 3"}


def test_templates_translate_then_fill_in_escaped_values() -> None:
    env = environment()
    html = env.from_string(
        "{{ _('Recommendations for %(company)s', company=name) }}|{{ _('Sign in') }}|"
        "{{ ngettext('closes in %(num)d day', 'closes in %(num)d days', 2) }}|{{ _('100%% sure') }}"
    )
    with i18n.speaking("de"):
        assert html.render(name="Müller & <Söhne>") == (
            "Empfehlungen für Müller &amp; &lt;Söhne&gt;|Anmelden|endet in 2 Tagen|100% sure"
        )
    # A template that does not escape (a plain-text mail) gets the values as they are.
    env.autoescape = False
    text = env.from_string("{{ _('Recommendations for %(company)s', company=name) }}")
    with i18n.speaking("en"):
        assert text.render(name="Müller & Söhne") == "Recommendations for Müller & Söhne"


async def test_concurrent_requests_in_two_languages(make_client: MakeClient) -> None:
    pages: list[httpx.Response] = await asyncio.gather(
        *(browser(make_client, language).get("/login") for language in ["de", "en"] * 4)
    )
    for page, language in zip(pages, ["de", "en"] * 4, strict=True):
        assert f'<html lang="{language}">' in page.text
        assert ("Passwort vergessen?" if language == "de" else "Forgot your password?") in page.text


def test_dates_numbers_and_budgets_are_written_for_the_language() -> None:
    with i18n.speaking("de"):
        assert i18n.day(date(2026, 12, 3)) == "3. Dezember 2026"
        assert i18n.euros(1_250_000) == "1.250.000\xa0€"
        assert i18n.instant(datetime.fromisoformat("2026-07-01T10:30:00+00:00")).endswith("12:30:00")
    with i18n.speaking("en"):
        assert i18n.day(date(2026, 12, 3)) == "3 December 2026"
        assert i18n.euros(1_250_000) == "€1,250,000"


def test_reasons_and_sector_names_are_worded_in_the_language() -> None:
    reasons = [
        Reason("same_sector", {"code": "62.01"}),
        Reason("exporters_extensive", {"kind": "research_partner"}),
        Reason("age_suits", {"kind": "distributor"}),
        Reason("targets_city", {"city": "beijing", "city_name": "Beijing"}),
        Reason("deadline", {"days": 1}),
    ]
    with i18n.speaking("de"):
        assert [i18n.reason_text(r) for r in reasons] == [
            "Gleiche Branche: 62.01 Programmierungstätigkeiten",
            "Forschungspartner hier bevorzugen Exporteure \u2013 Sie exportieren umfangreich",
            "Das Alter Ihres Unternehmens passt zu Vertriebspartnern",
            "Sie zielen auf Peking",
            "Frist endet morgen",
        ]
    with i18n.speaking("en"):
        assert i18n.reason_text(reasons[0]) == "Same sector: 62.01 Computer programming activities"


def test_the_language_is_the_accounts_then_the_pages_then_the_browsers() -> None:
    assert i18n.negotiate("en", "de", "de") == "en"
    assert i18n.negotiate(None, "en", "de-DE") == "en"
    assert i18n.negotiate(None, None, "fr-FR, en;q=0.7, de;q=0.9") == "de"
    assert i18n.negotiate(None, None, "fr, en;q=0") == "de"  # none of ours wanted: German
