"""Where the links of a digest land: a lead's link (the click is recorded, then the lead's page) and
unsubscribing (a page to confirm in the browser, and RFC 8058's one-click POST from the mail client).

Both are public: the signed token in the URL (``digests.tokens``) is what proves who the link is for, so
they work without signing in. A token that is malformed, forged, or of an account or company that has
since been deleted answers the portal's 404 page, and nothing changes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch import jobs
from partnermatch.access import Access, Principal, access
from partnermatch.accounts.controllers import provide_account_service
from partnermatch.accounts.models import User
from partnermatch.accounts.schemas import Preferences
from partnermatch.accounts.service import AccountService
from partnermatch.companies.service import CompanyService
from partnermatch.digests import tokens
from partnermatch.enums import DigestFrequency, InteractionKind, InteractionSource, Language, UserRole
from partnermatch.errors import NotFound
from partnermatch.interactions.service import record_seen_later
from partnermatch.jobs import Job
from partnermatch.leads.service import LeadService
from partnermatch.portal import i18n
from partnermatch.portal.controllers import page, see_other
from partnermatch.settings import Settings

# Litestar's CSRF middleware passes a route whose handler has this opt set (CSRFConfig's
# exclude_from_csrf_key, which accounts.auth.csrf_config leaves at its default).
EXCLUDE_FROM_CSRF = "exclude_from_csrf"
UNSUBSCRIBE_PAGE = "digest_unsubscribe.html"


def _dead_link() -> NotFound:
    # The same answer for every bad link: it says nothing about which part was wrong.
    return NotFound("no such link")


async def _reader(accounts: AccountService, settings: Settings, token: str) -> User:
    """The member an unsubscribe token is for; a bad token or a deleted account is a dead link."""
    user_id = tokens.read_unsubscribe(settings, token)
    if user_id is None:
        raise _dead_link()
    try:
        return await accounts.get_user(user_id)
    except NotFound:
        raise _dead_link() from None


def _speak_to(request: Request[Any, Any, Any], user: User) -> None:
    """The page in the member's language (their setting), else the browser's, as signed in."""
    i18n.use(
        i18n.negotiate(
            user.language,
            request.cookies.get(i18n.LANGUAGE_COOKIE),
            request.headers.get("accept-language"),
        )
    )


class DigestLinks(Controller):
    path = "/digest"
    opt = access(Access.PUBLIC)
    include_in_schema = False
    dependencies = {"accounts": Provide(provide_account_service)}

    @get("/unsubscribe/{token:str}")
    async def confirm_unsubscribe(
        self,
        request: Request[Any, Any, Any],
        accounts: NamedDependency[AccountService],
        settings: NamedDependency[Settings],
        token: FromPath[str],
    ) -> Template:
        """A page with a button: opening the link (or a mail scanner fetching it) changes nothing."""
        user = await _reader(accounts, settings, token)
        _speak_to(request, user)
        return page(
            request,
            UNSUBSCRIBE_PAGE,
            token=token,
            done=False,
            already=user.digest_frequency == DigestFrequency.NEVER.value,
        )

    # The one-click POST of RFC 8058 comes from the mail client (or its provider's server), with no
    # session, no CSRF cookie and no token: the CSRF check would refuse it, so this route is exempt. That
    # is safe because the signed token in the URL is the proof that the request is the member's own link
    # (what a CSRF token proves for a form): a forged request cannot name a valid token, and all it can do
    # is stop that one member's digest, which is what the link is for.
    @post("/unsubscribe/{token:str}", status_code=200, opt={EXCLUDE_FROM_CSRF: True})
    async def unsubscribe(
        self,
        request: Request[Any, Any, Any],
        accounts: NamedDependency[AccountService],
        settings: NamedDependency[Settings],
        token: FromPath[str],
    ) -> Template:
        """Stops the digest (the body, ``List-Unsubscribe=One-Click`` from a mail client or the page's
        form, is not needed); a browser gets the page that says so, a mail client the 200 it needs."""
        user = await _reader(accounts, settings, token)
        # The settings page's own change, for the member the token stands for (the service reads only the
        # user id): language and consent stay as they are.
        member = Principal(
            user_id=user.id,
            role=UserRole(user.role),
            company_id=user.company_id,
            email_verified=user.email_verified_at is not None,
        )
        await accounts.set_preferences(
            member,
            Preferences(
                language=None if user.language is None else Language(user.language),
                digest_frequency=DigestFrequency.NEVER,
                digest_consent=user.digest_consent_at is not None,
            ),
        )
        _speak_to(request, user)
        return page(request, UNSUBSCRIBE_PAGE, token=token, done=True, already=True)

    @get("/open/{token:str}")
    async def open_lead(
        self,
        db_session: NamedDependency[AsyncSession],
        accounts: NamedDependency[AccountService],
        settings: NamedDependency[Settings],
        token: FromPath[str],
    ) -> Redirect:
        """A lead's link in a digest: records the click as a ``view`` from the digest, then the lead's page
        (which asks a visitor who is not signed in to sign in first)."""
        click = tokens.read_click(settings, token)
        if click is None:
            raise _dead_link()
        try:
            user = await accounts.get_user(click.user_id)
        except NotFound:
            raise _dead_link() from None
        if (
            user.company_id != click.company_id
            or not await CompanyService(session=db_session).exists(id=click.company_id)
            or not await LeadService(session=db_session).exists(id=click.lead_id)
        ):
            raise _dead_link()
        # Recorded by a job after the redirect went out, as the portal records a page's views: a GET is a
        # read (a deferred transaction on SQLite) and writes nothing itself. The same view within a minute
        # (the link clicked twice) is recorded once.
        jobs.after_commit(
            db_session,
            Job.of(
                record_seen_later,
                company_id=click.company_id,
                kind=InteractionKind.VIEW,
                seen=[(click.lead_id, click.position)],
                at=datetime.now(UTC),
                source=InteractionSource.DIGEST,
            ),
        )
        return see_other(f"/leads/{click.lead_id}")


ROUTE_HANDLERS = [DigestLinks]
