"""The portal's languages, German and English: catalogs, the language of a request, and formatting.

Litestar has no i18n of its own and renders every page with one Jinja environment, shared by all
requests. So nothing here is switched per request on a shared object: the request's language is a
context variable (:func:`use`), and the gettext callables installed in the environment (newstyle, so
templates call ``_("…")`` and ``ngettext``) read it at the moment they translate. Two requests in
different languages, interleaved on one event loop, each get their own.

The catalogs are the ``.po`` files in ``translations/`` (edited by people, kept in the repository); they
are compiled in memory the first time a page needs them, so there is no build step and no ``.mo`` file.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import NumberPattern, format_decimal, parse_pattern
from babel.support import Translations
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from partnermatch.clock import local_zone
from partnermatch.enums import Language
from partnermatch.ranking.reasons import Reason, sentence
from partnermatch.sectors.nace import load_english_titles, load_german_titles

LANGUAGES = tuple(language.value for language in Language)
# Berlin's agency: German unless the browser prefers English.
DEFAULT_LANGUAGE = Language.DE.value
LANGUAGE_COOKIE = "partnermatch_language"
TRANSLATIONS = Path(__file__).parent / "translations"

_language: ContextVar[str] = ContextVar("partnermatch_portal_language", default=DEFAULT_LANGUAGE)


@cache
def catalog(language: str) -> Translations:
    """The compiled catalog of a language (English: the messages as written, unless its .po says else)."""
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        messages = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, messages)
    compiled.seek(0)
    return Translations(compiled, domain="messages")


def current() -> str:
    return _language.get()


def use(language: str) -> Token[str]:
    """Make ``language`` the current request's (the context of the request, nobody else's)."""
    return _language.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)


@contextmanager
def speaking(language: str) -> Iterator[None]:
    """``language`` for the block only: rendering a mail or a test in a given language."""
    token = use(language)
    try:
        yield
    finally:
        _language.reset(token)


def gettext(message: str) -> str:
    return str(catalog(current()).ugettext(message))


def ngettext(singular: str, plural: str, n: int) -> str:
    return str(catalog(current()).ungettext(singular, plural, n))


def pgettext(context: str, message: str) -> str:
    return str(catalog(current()).upgettext(context, message))


_ = gettext


# What templates call. jinja2.ext's newstyle callables do the same, behind two more context lookups per
# message (its ``_`` resolves ``gettext``, which calls the function through the context); a
# recommendations page translates about 200 messages. As there: escaped where the template escapes,
# and always a format string (``%%`` is a percent sign), the variables filled in after translation —
# except that a message without a ``%`` skips the formatting, which would give it back unchanged.
@pass_context
def template_gettext(context: Context, message: str, **variables: Any) -> str:
    translated = gettext(message)
    if context.eval_ctx.autoescape:
        translated = Markup(translated)
    return translated % variables if "%" in translated else translated


@pass_context
def template_ngettext(context: Context, singular: str, plural: str, n: int, **variables: Any) -> str:
    variables.setdefault("num", n)
    translated = ngettext(singular, plural, n)
    if context.eval_ctx.autoescape:
        translated = Markup(translated)
    return translated % variables


def N_(message: str) -> str:
    """Marks a message for the catalogs where it is written; it is translated where it is shown."""
    return message


def NP_(context: str, message: str) -> str:
    """As :func:`N_`, with the context the word is translated in."""
    return message


# Berlin's partner cities by their English names (cities/data.py), marked so that the catalogs give the
# German ones: Warschau, Moskau, Peking, ... (city_name looks them up).
PARTNER_CITY_NAMES = (
    NP_("city", "Los Angeles"), NP_("city", "Paris"), NP_("city", "Madrid"), NP_("city", "Istanbul"),
    NP_("city", "Warsaw"), NP_("city", "Moscow"), NP_("city", "Brussels"), NP_("city", "Budapest"),
    NP_("city", "Tashkent"), NP_("city", "Mexico City"), NP_("city", "Jakarta"), NP_("city", "Beijing"),
    NP_("city", "Tokyo"), NP_("city", "Buenos Aires"), NP_("city", "Prague"), NP_("city", "Windhoek"),
    NP_("city", "London"),
)  # fmt: skip


def negotiate(account: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The account's setting, else the language chosen on a page (cookie), else the browser's."""
    for chosen in (account, cookie):
        if chosen in LANGUAGES:
            return str(chosen)
    for wanted in _preferences(accept_language or ""):
        if wanted in LANGUAGES:
            return wanted
    return DEFAULT_LANGUAGE


def _preferences(header: str) -> list[str]:
    """Accept-Language's primary subtags, most wanted first (``de-DE,de;q=0.9,en;q=0.8`` -> de, de, en)."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, parameters = part.strip().partition(";")
        quality = 1.0
        if parameters.strip().startswith("q="):
            try:
                quality = float(parameters.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, position, tag.split("-")[0].lower()))
    return [tag for _quality, _position, tag in sorted(weighted)]


# ----------------------------------------------------------------- names in the current language


def sector_name(code: str) -> str:
    """The NACE Rev. 2 title of a code: Eurostat's English, or Destatis' WZ 2008 German."""
    names = load_german_titles() if current() == Language.DE else load_english_titles()
    return names.get(code, code)


class CurrentWords:
    """Reasons in the current request's language (``ranking.reasons.Words``)."""

    def gettext(self, message: str) -> str:
        return gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        return pgettext(context, message)

    def sector(self, code: str) -> str:
        return sector_name(code)

    def city(self, city_id: str, name: str) -> str:
        return city_name(city_id, name)


WORDS = CurrentWords()


def reason_text(reason: Reason) -> str:
    return sentence(reason, WORDS)


def city_name(city_id: str, name: str) -> str:
    """A partner city's name in the current language; the catalog knows the 17, others keep their own."""
    translated = pgettext("city", name)
    return translated if translated != name else name


# ----------------------------------------------------------------- formatting for the language


# English as written in Europe: 3 December 2026, 14:05.
FORMATS = {Language.DE.value: "de_DE", Language.EN.value: "en_GB"}


@cache
def _locale(language: str) -> Locale:
    return Locale.parse(FORMATS.get(language, language))


def locale() -> Locale:
    return _locale(current())


def day(value: date) -> str:
    """3. Dezember 2026 / 3 December 2026."""
    return str(format_date(value, format="long", locale=locale()))


def short_day(value: date) -> str:
    return str(format_date(value, format="medium", locale=locale()))


def instant(value: datetime) -> str:
    """A moment as the clocks of the agency's city (PARTNERMATCH_TIMEZONE, Berlin) showed it."""
    return str(format_datetime(value, format="medium", tzinfo=local_zone(), locale=locale()))


def number(value: int | float) -> str:
    return str(format_decimal(value, locale=locale()))


@cache
def _whole_currency(language: str) -> NumberPattern:
    return parse_pattern(_locale(language).currency_formats["standard"].pattern.replace(".00", ""))


def euros(value: int) -> str:
    """Whole euros (budgets have no cents): 250.000 € / €250,000."""
    language = current()
    # The pattern applied directly: format_currency would parse and validate it again for every budget.
    return str(
        _whole_currency(language).apply(value, _locale(language), currency="EUR", currency_digits=False)
    )
