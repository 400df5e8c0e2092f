"""Keeping the catalogs in step with the code: every message the portal can show, extracted from the
Python code and the templates, and written into ``translations/*/LC_MESSAGES/messages.po`` (new ones
untranslated, vanished ones dropped). ``partnermatch translations update`` runs it; a test fails when a
message has no German translation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

from partnermatch.portal.i18n import LANGUAGES, TRANSLATIONS

PACKAGE = Path(__file__).resolve().parents[1]
# Where messages are, relative to the package, and how babel reads them.
METHODS = [("**.py", "python"), ("portal/templates/**.html", "jinja2")]
# The markers beside gettext's own: N_ and NP_ (portal.i18n, ranking.reasons) mark messages where they are
# written, NN_ a singular and plural pair, pgettext translates with a context.
KEYWORDS: dict[str, Any] = {**DEFAULT_KEYWORDS, "N_": None, "NP_": ((1, "c"), 2), "NN_": (1, 2)}


def extract() -> Catalog:
    """Every message of the package, with the flags (python-format, ...) babel gives it."""
    template = Catalog(project="PartnerMatch", fuzzy=False)
    for _filename, lineno, message, comments, context in _found():
        template.add(message, None, [(_filename, lineno)], auto_comments=comments, context=context)
    return template


def _found() -> Iterator[tuple[str, int, Any, list[str], str | None]]:
    yield from extract_from_dir(str(PACKAGE), METHODS, {}, keywords=KEYWORDS)


def path_of(language: str) -> Path:
    return TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"


def load(language: str) -> Catalog:
    with path_of(language).open("rb") as po:
        return read_po(po, locale=language)


def update() -> dict[str, list[str]]:
    """Bring every language's catalog in step with the code; returns, per language, the messages that
    still need a translation (English needs none: its messages are the English text)."""
    template = extract()
    untranslated: dict[str, list[str]] = {}
    for language in LANGUAGES:
        catalog = load(language)
        catalog.update(template, no_fuzzy_matching=True, update_creation_date=False)
        catalog.obsolete.clear()
        with path_of(language).open("wb") as po:
            write_po(po, catalog, width=0, no_location=True, sort_output=True, omit_header=False)
        if language != "en":
            untranslated[language] = [str(m.id) for m in missing(catalog)]
    return untranslated


def missing(catalog: Catalog) -> list[Any]:
    """Messages without a (complete) translation."""
    out = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings):
            out.append(message)
    return out
