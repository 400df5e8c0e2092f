"""The digest as an email: subject, a plain-text and an HTML part, and the headers of RFC 8058.

Rendered by the portal's templates (``portal/templates/mail/digest.{txt,html}``) with the portal's own
callables (gettext, dates, city names, reason sentences) in the reader's language. The HTML part is what
mail clients show reliably: tables for the layout, no script, no stylesheet to fetch; its ``<style>``
block is written into ``style=`` attributes by css-inline, since many clients drop ``<style>``.

Every link is absolute (``PARTNERMATCH_PUBLIC_URL``). A lead's link goes through ``/digest/open/{token}``,
which records the click; the unsubscribe link, also in ``List-Unsubscribe``, works with one POST and no
sign-in (``digests.controllers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import css_inline

from partnermatch.digests import tokens
from partnermatch.digests.content import DigestContent, DigestLead
from partnermatch.portal import i18n
from partnermatch.portal.controllers import KIND_NAMES
from partnermatch.portal.templating import environment
from partnermatch.settings import Settings

# One environment for every mail, as the portal has one for every page: the same templates and callables.
# Its autoescape is by file name (select_autoescape(["html"])), so the .txt part is not HTML-escaped.
MAIL = environment()
HTML_TEMPLATE = "mail/digest.html"
TEXT_TEMPLATE = "mail/digest.txt"
# No <link> is followed: the HTML part must render without fetching anything.
_INLINER = css_inline.CSSInliner(keep_style_tags=False, keep_link_tags=False, load_remote_stylesheets=False)


@dataclass(frozen=True)
class RenderedDigest:
    subject: str
    text: str
    html: str
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class LinkedLead:
    """A lead of the digest with its signed link."""

    lead: DigestLead
    url: str


def base_url(settings: Settings) -> str:
    return settings.public_url.rstrip("/")


def click_url(settings: Settings, *, user_id: UUID, company_id: UUID, lead_id: UUID, position: int) -> str:
    token = tokens.click_token(
        settings, user_id=user_id, company_id=company_id, lead_id=lead_id, position=position
    )
    return f"{base_url(settings)}/digest/open/{token}"


def unsubscribe_url(settings: Settings, user_id: UUID) -> str:
    return f"{base_url(settings)}/digest/unsubscribe/{tokens.unsubscribe_token(settings, user_id)}"


def subject_of(content: DigestContent) -> str:
    """In the current language."""
    if content.leads:
        return i18n.ngettext(
            "%(num)d new match for %(company)s", "%(num)d new matches for %(company)s", len(content.leads)
        ) % {"num": len(content.leads), "company": content.company_name}
    if content.missions:
        return i18n.ngettext(
            "%(num)d upcoming trade mission for %(company)s",
            "%(num)d upcoming trade missions for %(company)s",
            len(content.missions),
        ) % {"num": len(content.missions), "company": content.company_name}
    return i18n.gettext("Your match digest for %(company)s") % {"company": content.company_name}


def render_digest(
    content: DigestContent, *, user_id: UUID, language: str, settings: Settings
) -> RenderedDigest:
    """The message for one member (``user_id``: whose clicks and unsubscribe the links carry), worded in
    ``language`` (German or English; anything else is the portal's default)."""
    base = base_url(settings)
    unsubscribe = unsubscribe_url(settings, user_id)
    with i18n.speaking(language):
        subject = subject_of(content)
        context: dict[str, Any] = {
            "language": i18n.current(),
            "subject": subject,
            "content": content,
            "leads": [
                LinkedLead(
                    lead,
                    click_url(
                        settings,
                        user_id=user_id,
                        company_id=content.company_id,
                        lead_id=lead.lead_id,
                        position=lead.position,
                    ),
                )
                for lead in content.leads
            ],
            "missions": content.missions,
            "kind_names": KIND_NAMES,
            "recommendations_url": f"{base}/recommendations",
            "missions_url": f"{base}/missions",
            "settings_url": f"{base}/settings",
            "unsubscribe_url": unsubscribe,
        }
        text = MAIL.get_template(TEXT_TEMPLATE).render(context)
        html = _INLINER.inline(MAIL.get_template(HTML_TEMPLATE).render(context))
    headers = (
        ("List-Unsubscribe", f"<{unsubscribe}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    )
    return RenderedDigest(subject=subject, text=text, html=html, headers=headers)
