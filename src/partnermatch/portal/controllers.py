"""The company web portal: pages for visitors and for members of Berlin companies, rendered on the server
(Jinja2 through Litestar) and updated in place with htmx.

Every page calls the services the JSON API calls, with the same rules and the same access scoping; what is
here is reading forms, choosing the page and wording it. Pages are reads: what they log (the impressions
of a list, the view of a lead) is recorded by a job after the response. A rejected form comes back with
what was typed and the error by its field, and nothing of it is saved (the request rolls back).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch import jobs
from partnermatch.access import Access, Principal, access, needs_verified_email
from partnermatch.accounts.auth import LOGIN_RATE_LIMITED, clear_session_cookie, set_session_cookie
from partnermatch.accounts.controllers import (
    provide_account_service,
    provide_invitation_service,
    provide_login_throttle,
)
from partnermatch.accounts.invitations import InvitationService, status_of
from partnermatch.accounts.schemas import Preferences, Registration
from partnermatch.accounts.service import AccountService
from partnermatch.accounts.throttle import LoginThrottle
from partnermatch.cities.service import CityService
from partnermatch.clock import local_date
from partnermatch.companies.controllers import provide_company_service
from partnermatch.companies.repository import CompanyStanding
from partnermatch.companies.schemas import CompanyCreate, CompanyUpdate
from partnermatch.companies.service import CompanyService
from partnermatch.enums import (
    CompanyStatus,
    DigestFrequency,
    ExportExperience,
    InteractionKind,
    InvitationStatus,
    Language,
    LeadKind,
    LeadStatus,
    MissionStatus,
    ParticipantStatus,
)
from partnermatch.errors import Conflict, DomainError, InvalidInput, NotFound
from partnermatch.interactions.schemas import FeedbackCreate
from partnermatch.interactions.service import InteractionService, record_seen_later
from partnermatch.jobs import Job
from partnermatch.leads.repository import LeadFilters
from partnermatch.leads.service import LeadService, days_to_deadline, is_open
from partnermatch.missions.repository import MissionFilters
from partnermatch.missions.schemas import ParticipantCreate
from partnermatch.missions.service import MissionService, ParticipantService
from partnermatch.portal import i18n
from partnermatch.portal.forms import Form, read, service_errors, values_of
from partnermatch.portal.i18n import N_
from partnermatch.portal.i18n import gettext as _
from partnermatch.privacy.controllers import provide_privacy_service
from partnermatch.privacy.service import PrivacyService
from partnermatch.recommendations.registry import ModelUnavailable
from partnermatch.recommendations.service import RecommendationService
from partnermatch.sectors.service import SectorService
from partnermatch.settings import Settings

logger = logging.getLogger(__name__)

HOME = "/recommendations"
RECOMMENDATIONS_SHOWN = 20
LEADS_PER_PAGE = 20
COMPANY_LISTS = ("sectors", "languages", "target_cities")
# The working languages a company can tick (ISO 639-1): those of Berlin and its partner cities.
LANGUAGE_CHOICES = (
    "de",
    "en",
    "fr",
    "es",
    "pl",
    "tr",
    "ru",
    "zh",
    "ja",
    "id",
    "hu",
    "cs",
    "nl",
    "uz",
    "af",
    "ar",
    "it",
    "pt",
    "uk",
)
LANGUAGE_NAMES = {
    "de": N_("German"), "en": N_("English"), "fr": N_("French"), "es": N_("Spanish"), "pl": N_("Polish"),
    "tr": N_("Turkish"), "ru": N_("Russian"), "zh": N_("Chinese"), "ja": N_("Japanese"),
    "id": N_("Indonesian"), "hu": N_("Hungarian"), "cs": N_("Czech"), "nl": N_("Dutch"), "uz": N_("Uzbek"),
    "af": N_("Afrikaans"), "ar": N_("Arabic"), "it": N_("Italian"), "pt": N_("Portuguese"),
    "uk": N_("Ukrainian"),
}  # fmt: skip
KIND_NAMES = {
    "buyer": N_("Buyer"),
    "distributor": N_("Distributor"),
    "investor": N_("Investor"),
    "research_partner": N_("Research partner"),
    "tender": N_("Public tender"),
    "joint_venture": N_("Joint venture"),
}
EXPORT_NAMES = {
    "none": N_("Not yet"),
    "some": N_("Some export experience"),
    "extensive": N_("Extensive export experience"),
}
DECLINE_NAMES = {
    "not_our_sector": N_("Not our sector"),
    "wrong_city": N_("Not a city we work in"),
    "too_small": N_("Too small for us"),
    "too_large": N_("Too large for us"),
    "no_capacity": N_("No capacity right now"),
    "other": N_("Another reason"),
}
FREQUENCY_NAMES = {
    "weekly": N_("Every week"),
    "fortnightly": N_("Every two weeks"),
    "monthly": N_("Every month"),
    "never": N_("Never"),
}
ERROR_TITLES = {
    400: N_("This request cannot be read"),
    401: N_("Please sign in"),
    403: N_("Not allowed"),
    404: N_("Page not found"),
    405: N_("Not allowed"),
    409: N_("This cannot be done now"),
    422: N_("Please check your entries"),
    429: N_("Too many attempts"),
    503: N_("Temporarily unavailable"),
    500: N_("Something went wrong"),
}
ERROR_TEXTS = {
    403: N_("You may not open this page, or the form was too old: reload the page and try again."),
    404: N_("There is no such page, or it is not yours to see."),
    429: N_("Please wait a moment before you try again."),
    503: N_("The service cannot do this right now. Nothing was changed; please try again in a minute."),
    500: N_("An unexpected error happened. Nothing was changed; please try again."),
}


# ----------------------------------------------------------------- rendering


def language_of(request: Request[Any, Any, Any]) -> str:
    return i18n.negotiate(
        None, request.cookies.get(i18n.LANGUAGE_COOKIE), request.headers.get("accept-language")
    )


async def choose_language(request: Request[Any, Any, Any]) -> None:
    """The portal's before-request hook: the request's language, in its own context (see i18n)."""
    i18n.use(language_of(request))


def principal_of(request: Request[Any, Any, Any]) -> Principal | None:
    user = request.scope.get("user")
    return user if isinstance(user, Principal) else None


def page(request: Request[Any, Any, Any], name: str, *, status: int = 200, **context: Any) -> Template:
    """A page (or, for htmx, a fragment) with what every page shows: who is signed in, the language."""
    return Template(
        template_name=name,
        context={
            "principal": principal_of(request),
            "language": i18n.current(),
            "languages": i18n.LANGUAGES,
            "here": _local(str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")),
            "kind_names": KIND_NAMES,
            "export_names": EXPORT_NAMES,
            "language_names": LANGUAGE_NAMES,
            "decline_names": DECLINE_NAMES,
            "frequency_names": FREQUENCY_NAMES,
            **context,
        },
        status_code=status,
    )


def _local(target: str | None, default: str = "/") -> str:
    """A path of this site to go back to; anything else (another host, //host) is not followed."""
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return default
    return target


def see_other(path: str) -> Redirect:
    return Redirect(path=path, status_code=HTTP_303_SEE_OTHER)


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


def error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Every error of a portal page as a page in the portal's look and the reader's language."""
    i18n.use(language_of(request))
    status = 500
    headers: dict[str, str] = {}
    if isinstance(exc, DomainError):
        status = exc.status_code
        headers.update(exc.headers)
    elif isinstance(exc, HTTPException):
        status = exc.status_code
        headers.update(exc.headers or {})
    else:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
    if status == 401 and request.method == "GET":
        return see_other(f"/login?next={quote(_local(str(request.url.path)))}")
    title = ERROR_TITLES.get(status, ERROR_TITLES[500 if status >= 500 else 400])
    text = ERROR_TEXTS.get(status)
    if isinstance(exc, DomainError) and status in (409, 422):
        text = exc.detail
    template = page(
        request,
        "error.html",
        status=status,
        title=_(title),
        text=_(text) if text and status not in (409, 422) else text,
    )
    template.headers.update({k: v for k, v in headers.items() if k.lower() != "www-authenticate"})
    return template


PORTAL_ERRORS: dict[type[Exception], Any] = {Exception: error_page}


# ----------------------------------------------------------------- providers


async def provide_sector_service(db_session: NamedDependency[AsyncSession]) -> SectorService:
    return SectorService(session=db_session)


async def provide_city_service(db_session: NamedDependency[AsyncSession]) -> CityService:
    return CityService(session=db_session)


DEPENDENCIES = {
    "accounts": Provide(provide_account_service),
    "invitations": Provide(provide_invitation_service),
    "throttle": Provide(provide_login_throttle, sync_to_thread=False),
    "companies": Provide(provide_company_service),
    "sector_service": Provide(provide_sector_service),
    "cities": Provide(provide_city_service),
    "privacy": Provide(provide_privacy_service),
}


async def form_values(request: Request[Any, Any, Any], lists: Sequence[str] = ()) -> dict[str, Any]:
    return values_of(await request.form(), lists)


@dataclass(frozen=True)
class CompanyChoices:
    """What the company form offers: partner cities, languages, export levels, the chosen sectors' names."""

    cities: Sequence[Any]
    sectors: Mapping[str, str]


async def company_choices(
    cities: CityService, sector_service: SectorService, codes: Sequence[str]
) -> CompanyChoices:
    labels = sector_labels(await sector_service.names_of(codes))
    return CompanyChoices(await cities.list_cities(), {code: labels.get(code, code) for code in codes})


def sector_labels(names: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """Code -> the sector's title in the current language."""
    german = i18n.current() == Language.DE
    return {code: (de if german else en) for code, (en, de) in names.items()}


# ----------------------------------------------------------------- visitors


class VisitorPages(Controller):
    """What anyone may open: the start page, signing in and up, and the pages the emailed links open."""

    path = "/"
    opt = access(Access.PUBLIC)
    include_in_schema = False
    dependencies = DEPENDENCIES

    @get("/")
    async def landing(
        self, request: Request[Any, Any, Any], cities: NamedDependency[CityService]
    ) -> Template | Redirect:
        principal = principal_of(request)
        if principal is not None and principal.company_id is not None:
            return see_other(HOME)
        return page(request, "landing.html", cities=await cities.list_cities())

    @post("/language", status_code=303)
    async def switch_language(
        self,
        request: Request[Any, Any, Any],
        accounts: NamedDependency[AccountService],
        settings: NamedDependency[Settings],
    ) -> Redirect:
        """The language link on every page; a signed-in member keeps it as their setting."""
        values = await form_values(request)
        language = values.get("language", "")
        if language not in i18n.LANGUAGES:
            raise InvalidInput.for_field("language", "must be de or en")
        principal = principal_of(request)
        if principal is not None:
            user = await accounts.get_user(principal.user_id)
            current = Preferences(
                language=Language(language),
                digest_frequency=DigestFrequency(user.digest_frequency),
                digest_consent=user.digest_consent_at is not None,
            )
            await accounts.set_preferences(principal, current)
        redirect = see_other(_local(values.get("next")))
        redirect.set_cookie(language_cookie(language, settings))
        return redirect

    @get("/login")
    async def login_form(
        self, request: Request[Any, Any, Any], next: FromQuery[str | None] = None
    ) -> Template:
        return page(request, "login.html", values={"email": ""}, errors={}, next=_local(next, HOME))

    @post("/login", opt={LOGIN_RATE_LIMITED: True}, status_code=200)
    async def login(
        self,
        request: Request[Any, Any, Any],
        accounts: NamedDependency[AccountService],
        throttle: NamedDependency[LoginThrottle],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        values = await form_values(request)
        target = _local(values.get("next"), HOME)
        try:
            user, secret = await accounts.login(
                values.get("email", ""),
                values.get("password", ""),
                throttle=throttle,
                previous=principal_of(request),
            )
        except DomainError as refused:
            if refused.status_code == 429:
                raise
            values.pop("password", None)
            errors = {"": _("The email address or the password is wrong.")}
            return page(request, "login.html", status=422, values=values, errors=errors, next=target)
        redirect = see_other(target if user.company_id is not None else "/")
        set_session_cookie(redirect, settings, secret)
        if user.language:
            redirect.set_cookie(language_cookie(user.language, settings))
        return redirect

    @get("/register")
    async def register_form(
        self,
        request: Request[Any, Any, Any],
        cities: NamedDependency[CityService],
        sector_service: NamedDependency[SectorService],
    ) -> Template:
        values: dict[str, Any] = {name: [] for name in COMPANY_LISTS}
        values["export_experience"] = ExportExperience.NONE.value
        return await self._registration(request, cities, sector_service, values, {})

    async def _registration(
        self,
        request: Request[Any, Any, Any],
        cities: CityService,
        sector_service: SectorService,
        values: dict[str, Any],
        errors: dict[str, str],
        status: int = 200,
    ) -> Template:
        choices = await company_choices(cities, sector_service, values.get("sectors", []))
        return page(request, "register.html", status=status, values=values, errors=errors, choices=choices)

    @post("/register", opt={LOGIN_RATE_LIMITED: True}, status_code=200)
    async def register(
        self,
        request: Request[Any, Any, Any],
        accounts: NamedDependency[AccountService],
        cities: NamedDependency[CityService],
        sector_service: NamedDependency[SectorService],
    ) -> Template:
        values = await form_values(request, COMPANY_LISTS)
        company: Form[CompanyCreate] = read(CompanyCreate, values)
        errors = dict(company.errors)
        if not values.get("email", "").strip():
            errors["email"] = _("Please fill this in.")
        if not values.get("password"):
            errors["password"] = _("Please fill this in.")
        if values.get("password") and values.get("password") != values.get("password_again"):
            errors["password_again"] = _("The two passwords differ.")
        if not errors and company.data is not None:
            try:
                registration = msgspec.convert(
                    {
                        "email": values["email"].strip(),
                        "password": values["password"],
                        "company": company.data,
                    },
                    Registration,
                    from_attributes=True,
                )
            except msgspec.ValidationError:
                errors["email"] = _("Check the format of this entry.")
            else:
                try:
                    await accounts.register(registration)
                except InvalidInput as invalid:
                    errors.update(service_errors(invalid))
                else:
                    return page(request, "check_email.html", email=registration.email)
        values.pop("password", None)
        values.pop("password_again", None)
        return await self._registration(request, cities, sector_service, values, errors, status=422)

    @get("/verify-email")
    async def verify_form(
        self, request: Request[Any, Any, Any], token: FromQuery[str | None] = None
    ) -> Template:
        # A button, not the link itself: mail scanners open links, and opening a page changes nothing.
        return page(request, "verify_email.html", token=token or "", errors={})

    @post("/verify-email", status_code=200)
    async def verify(
        self, request: Request[Any, Any, Any], accounts: NamedDependency[AccountService]
    ) -> Template:
        values = await form_values(request)
        try:
            await accounts.verify_email(values.get("token", ""))
        except InvalidInput as invalid:
            return page(
                request,
                "verify_email.html",
                status=422,
                token=values.get("token", ""),
                errors=service_errors(invalid),
            )
        return page(request, "verified.html")

    @get("/reset-password")
    async def reset_form(
        self, request: Request[Any, Any, Any], token: FromQuery[str | None] = None
    ) -> Template:
        return page(request, "reset_password.html", token=token or "", values={}, errors={}, sent=False)

    @post("/reset-password", opt={LOGIN_RATE_LIMITED: True}, status_code=200)
    async def reset(
        self, request: Request[Any, Any, Any], accounts: NamedDependency[AccountService]
    ) -> Template:
        values = await form_values(request)
        token = values.get("token", "")
        if not token:
            # The same answer for every address: the page tells nobody which ones have an account.
            await accounts.request_reset(values.get("email", ""))
            return page(request, "reset_password.html", token="", values={}, errors={}, sent=True)
        errors: dict[str, str] = {}
        if values.get("password") != values.get("password_again"):
            errors["password_again"] = _("The two passwords differ.")
        else:
            try:
                await accounts.reset_password(token, values.get("password", ""))
            except InvalidInput as invalid:
                errors = service_errors(invalid)
            else:
                return page(request, "password_changed.html")
        return page(
            request, "reset_password.html", status=422, token=token, values={}, errors=errors, sent=False
        )

    @get("/accept-invitation")
    async def invitation_form(
        self, request: Request[Any, Any, Any], token: FromQuery[str | None] = None
    ) -> Template:
        return page(request, "accept_invitation.html", token=token or "", errors={})

    @post("/accept-invitation", opt={LOGIN_RATE_LIMITED: True}, status_code=200)
    async def accept_invitation(
        self, request: Request[Any, Any, Any], invitations: NamedDependency[InvitationService]
    ) -> Template:
        values = await form_values(request)
        token = values.get("token", "")
        errors: dict[str, str] = {}
        if values.get("password") != values.get("password_again"):
            errors["password_again"] = _("The two passwords differ.")
        else:
            try:
                user = await invitations.accept(
                    token, values.get("password", ""), request=f"{request.method} {request.url.path}"
                )
            except (InvalidInput, Conflict) as refused:
                errors = service_errors(refused)
            else:
                return page(request, "invitation_accepted.html", email=user.email)
        return page(request, "accept_invitation.html", status=422, token=token, errors=errors)

    @get("/sectors")
    async def sector_search(
        self,
        request: Request[Any, Any, Any],
        sector_service: NamedDependency[SectorService],
        q: FromQuery[str | None] = None,
    ) -> Template:
        """The sector picker's suggestions: words of the German or English title, or a code."""
        found = (await sector_service.search(q.strip()[:100], limit=12))[0] if q and q.strip() else []
        labels = sector_labels({s.code: (s.name, s.name_de) for s in found})
        choosable = [s for s in found if s.level != "section"]
        return page(request, "_sector_results.html", found=choosable, labels=labels, q=q or "")

    @get("/sectors/chosen")
    async def sectors_chosen(
        self,
        request: Request[Any, Any, Any],
        sector_service: NamedDependency[SectorService],
        sectors: FromQuery[list[str] | None] = None,
        add: FromQuery[str | None] = None,
        remove: FromQuery[str | None] = None,
    ) -> Template:
        """The chosen sectors after adding or removing one (the form posts them in this order)."""
        # The form's own checkboxes (name="sectors"), sent along by htmx, in their order.
        codes = [c for c in dict.fromkeys(sectors or []) if c != remove]
        if add and add not in codes:
            codes.append(add)
        names = sector_labels(await sector_service.names_of(codes[:5]))
        return page(request, "_sectors_chosen.html", chosen=codes[:5], names=names, too_many=len(codes) > 5)


def language_cookie(language: str, settings: Settings) -> Cookie:
    return Cookie(
        key=i18n.LANGUAGE_COOKIE,
        value=language,
        path="/",
        max_age=365 * 24 * 3600,
        secure=not settings.insecure_cookies,
        httponly=True,
        samesite="lax",
    )


# ----------------------------------------------------------------- members


@dataclass(frozen=True)
class Member:
    principal: Principal
    company: CompanyStanding


async def member_of(request: Request[Any, Any, Any], companies: CompanyService) -> Member:
    principal = principal_of(request)
    if principal is None:
        raise NotAuthorizedException("sign in")
    if principal.company_id is None:
        raise NotFound("the portal is for the members of Berlin companies; staff use the admin API")
    return Member(principal, await companies.standing(principal.company_id, principal))


class MemberPages(Controller):
    """What a member of a Berlin company does: recommendations, leads, missions, the profile, settings."""

    path = "/"
    opt = access(Access.MEMBER)
    include_in_schema = False
    dependencies = DEPENDENCIES

    @post("/logout", status_code=303)
    async def logout(
        self,
        request: Request[Any, Any, Any],
        accounts: NamedDependency[AccountService],
        settings: NamedDependency[Settings],
    ) -> Redirect:
        principal = principal_of(request)
        if principal is not None:
            await accounts.logout(principal)
        redirect = see_other("/")
        clear_session_cookie(redirect, settings)
        return redirect

    @get("/recommendations")
    async def recommendations(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        companies: NamedDependency[CompanyService],
        cities: NamedDependency[CityService],
        city: FromQuery[str | None] = None,
        kind: FromQuery[LeadKind | None] = None,
    ) -> Template:
        member = await member_of(request, companies)
        listed_cities = await cities.list_cities()
        context: dict[str, Any] = {
            "member": member,
            "cities": listed_cities,
            "city_names": {c.id: c.name for c in listed_cities},
            "filters": {"city": city or "", "kind": kind.value if kind else ""},
            "items": [],
            "note": None,
        }
        if member.company.status == CompanyStatus.APPROVED:
            try:
                found = await RecommendationService(db_session).recommend(
                    member.company.id,
                    member.principal,
                    RECOMMENDATIONS_SHOWN,
                    city or None,
                    kind.value if kind else None,
                )
            except ModelUnavailable:
                context["note"] = _("Recommendations are being prepared. Please come back later.")
            else:
                context["items"] = found.items
                shown = [(item.lead.id, position) for position, item in enumerate(found.items, start=1)]
                if shown:
                    # The list logged is the list rendered: these positions, recorded after the response.
                    log_seen(db_session, member.company.id, InteractionKind.IMPRESSION, shown)
        context["today"] = local_date(datetime.now(UTC))
        return page(request, "recommendations.html", **context)

    @post("/recommendations/{lead_id:uuid}/feedback", opt=needs_verified_email(), status_code=200)
    async def feedback(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        companies: NamedDependency[CompanyService],
        lead_id: FromPath[UUID],
    ) -> Template | Redirect:
        member = await member_of(request, companies)
        values = await form_values(request)
        action = values.get("action", "")
        kinds = {"interested": "interested", "not_relevant": "declined", "introduction": "contacted"}
        if action not in kinds:
            raise InvalidInput.for_field("action", "must be interested, not_relevant or introduction")
        reason = values.get("reason") or None
        data = msgspec.convert(
            {
                "lead_id": str(lead_id),
                "kind": kinds[action],
                "reason": reason if action == "not_relevant" else None,
            },
            FeedbackCreate,
        )
        await InteractionService(session=db_session).record_feedback(
            member.company.id, member.principal, data
        )
        if not is_htmx(request):
            return see_other(_local(values.get("next"), HOME))
        lead = await LeadService(session=db_session).get_lead(lead_id)
        return page(
            request,
            "_feedback_done.html",
            lead=lead,
            action=action,
            position=values.get("position", ""),
        )

    @get("/leads")
    async def leads(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        companies: NamedDependency[CompanyService],
        cities: NamedDependency[CityService],
        q: FromQuery[str | None] = None,
        city: FromQuery[str | None] = None,
        kind: FromQuery[LeadKind | None] = None,
        sector: FromQuery[str | None] = None,
        page_number: FromQuery[int] = 1,
    ) -> Template:
        member = await member_of(request, companies)
        page_number = max(1, min(page_number, 10_000))
        filters = LeadFilters(
            status=LeadStatus.OPEN.value,
            open_at=local_date(datetime.now(UTC)),
            city=city or None,
            kind=kind.value if kind else None,
            sector=sector or None,
            q=(q or "").strip()[:200] or None,
            order_by="published_at",
            descending=True,
            limit=LEADS_PER_PAGE,
            offset=(page_number - 1) * LEADS_PER_PAGE,
        )
        try:
            rows, total = await LeadService(session=db_session).search(filters)
        except InvalidInput:
            rows, total = [], 0
        listed_cities = await cities.list_cities()
        return page(
            request,
            "leads.html",
            member=member,
            leads=rows,
            total=total,
            page_number=page_number,
            pages=max(1, -(-total // LEADS_PER_PAGE)),
            cities=listed_cities,
            city_names={c.id: c.name for c in listed_cities},
            today=local_date(datetime.now(UTC)),
            filters={
                "q": q or "",
                "city": city or "",
                "kind": kind.value if kind else "",
                "sector": sector or "",
            },
        )

    @get("/leads/{lead_id:uuid}")
    async def lead(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        companies: NamedDependency[CompanyService],
        sector_service: NamedDependency[SectorService],
        cities: NamedDependency[CityService],
        lead_id: FromPath[UUID],
        position: FromQuery[int | None] = None,
    ) -> Template:
        member = await member_of(request, companies)
        lead = await LeadService(session=db_session).get_lead(lead_id)
        now = datetime.now(UTC)
        if not is_open(lead, now) and lead.status != LeadStatus.OPEN:
            raise NotFound.for_id("lead", lead_id)
        rank = position if position is not None and 1 <= position <= 1000 else None
        log_seen(db_session, member.company.id, InteractionKind.VIEW, [(lead.id, rank)])
        return page(
            request,
            "lead.html",
            member=member,
            lead=lead,
            open=is_open(lead, now),
            days_left=days_to_deadline(lead, now),
            sector_names=sector_labels(await sector_service.names_of(lead.sectors)),
            city_names={c.id: c.name for c in await cities.list_cities()},
            today=local_date(now),
            position=rank,
        )

    @get("/missions")
    async def missions(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        companies: NamedDependency[CompanyService],
        sector_service: NamedDependency[SectorService],
    ) -> Template:
        member = await member_of(request, companies)
        missions = MissionService(session=db_session)
        views, _total = await missions.search(
            MissionFilters(
                status=MissionStatus.PLANNED.value, starts_after=local_date(datetime.now(UTC)), limit=50
            )
        )
        taking_part = await ParticipantService(session=db_session).statuses_of(
            member.company.id, [v.mission.id for v in views]
        )
        codes = [code for view in views for code in view.mission.sectors]
        return page(
            request,
            "missions.html",
            member=member,
            missions=views,
            taking_part=taking_part,
            sector_names=sector_labels(await sector_service.names_of(codes)),
        )

    @post("/missions/{mission_id:uuid}/interest", opt=needs_verified_email(), status_code=200)
    async def mission_interest(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        companies: NamedDependency[CompanyService],
        mission_id: FromPath[UUID],
    ) -> Template | Redirect:
        member = await member_of(request, companies)
        participants = ParticipantService(session=db_session)
        # Already taking part: saying it twice changes nothing.
        with contextlib.suppress(Conflict):
            await participants.add(
                mission_id, ParticipantCreate(company_id=member.company.id, status=ParticipantStatus.APPLIED)
            )
        if not is_htmx(request):
            return see_other("/missions")
        return page(
            request,
            "_mission_interest.html",
            status_text=_("You said you are interested. The agency will be in touch."),
        )

    @get("/profile")
    async def profile(
        self,
        request: Request[Any, Any, Any],
        companies: NamedDependency[CompanyService],
        cities: NamedDependency[CityService],
        sector_service: NamedDependency[SectorService],
    ) -> Template:
        member = await member_of(request, companies)
        company = await companies.get_company(member.company.id, member.principal)
        values: dict[str, Any] = {
            "name": company.name,
            "sectors": company.sectors,
            "employees": str(company.employees),
            "founded": str(company.founded),
            "export_experience": company.export_experience,
            "languages": list(company.languages),
            "target_cities": company.target_cities,
            "description": company.description,
            "contact_email": company.contact_email or "",
            "website": company.website or "",
        }
        return await self._profile(
            request,
            member,
            cities,
            sector_service,
            values,
            {},
            saved=request.query_params.get("saved") == "1",
        )

    async def _profile(
        self,
        request: Request[Any, Any, Any],
        member: Member,
        cities: CityService,
        sector_service: SectorService,
        values: dict[str, Any],
        errors: dict[str, str],
        *,
        status: int = 200,
        saved: bool = False,
    ) -> Template:
        choices = await company_choices(cities, sector_service, values.get("sectors", []))
        return page(
            request,
            "profile.html",
            status=status,
            member=member,
            values=values,
            errors=errors,
            choices=choices,
            saved=saved,
        )

    @post("/profile", opt=needs_verified_email(), status_code=200)
    async def save_profile(
        self,
        request: Request[Any, Any, Any],
        companies: NamedDependency[CompanyService],
        cities: NamedDependency[CityService],
        sector_service: NamedDependency[SectorService],
    ) -> Template | Redirect:
        member = await member_of(request, companies)
        values = await form_values(request, COMPANY_LISTS)
        # Every field is on the form, so an empty list or field means: cleared.
        form: Form[CompanyUpdate] = read(CompanyUpdate, values, blank_is_none=True)
        errors = dict(form.errors)
        for required in ("name", "employees", "founded", "export_experience"):
            if not str(values.get(required, "")).strip():
                errors[required] = _("Please fill this in.")
        if not values.get("sectors"):
            errors["sectors"] = _("Choose at least {n}.").format(n=1)
        if not errors and form.data is not None:
            try:
                await companies.change(member.company.id, form.data, member.principal)
            except InvalidInput as invalid:
                errors = service_errors(invalid)
            else:
                return see_other("/profile?saved=1")
        return await self._profile(request, member, cities, sector_service, values, errors, status=422)

    @get("/colleagues")
    async def colleagues(
        self,
        request: Request[Any, Any, Any],
        companies: NamedDependency[CompanyService],
        invitations: NamedDependency[InvitationService],
    ) -> Template:
        member = await member_of(request, companies)
        return await self._colleagues(request, member, invitations, {}, {})

    async def _colleagues(
        self,
        request: Request[Any, Any, Any],
        member: Member,
        invitations: InvitationService,
        values: dict[str, Any],
        errors: dict[str, str],
        *,
        status: int = 200,
        invited: str | None = None,
    ) -> Template:
        members = await invitations.members(member.company.id, member.principal)
        pending = await invitations.of_company(member.company.id, member.principal, InvitationStatus.PENDING)
        now = datetime.now(UTC)
        return page(
            request,
            "colleagues.html",
            status=status,
            member=member,
            members=members,
            invitations=[(i, status_of(i, now)) for i in pending],
            values=values,
            errors=errors,
            invited=invited,
        )

    @post("/colleagues", opt=needs_verified_email(), status_code=200)
    async def invite(
        self,
        request: Request[Any, Any, Any],
        companies: NamedDependency[CompanyService],
        invitations: NamedDependency[InvitationService],
    ) -> Template:
        member = await member_of(request, companies)
        values = await form_values(request)
        email = values.get("email", "").strip()
        try:
            await invitations.invite(member.company.id, member.principal, email or None)
        except InvalidInput as invalid:
            return await self._colleagues(
                request, member, invitations, values, service_errors(invalid), status=422
            )
        return await self._colleagues(request, member, invitations, {}, {}, invited=email)

    @post("/colleagues/invitations/{invitation_id:uuid}/revoke", opt=needs_verified_email(), status_code=303)
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        companies: NamedDependency[CompanyService],
        invitations: NamedDependency[InvitationService],
        invitation_id: FromPath[UUID],
    ) -> Redirect:
        member = await member_of(request, companies)
        await invitations.revoke(member.company.id, invitation_id, member.principal)
        return see_other("/colleagues")

    @get("/settings")
    async def settings_page(
        self,
        request: Request[Any, Any, Any],
        companies: NamedDependency[CompanyService],
        accounts: NamedDependency[AccountService],
    ) -> Template:
        member = await member_of(request, companies)
        user = await accounts.get_user(member.principal.user_id)
        return page(
            request,
            "settings.html",
            member=member,
            user=user,
            errors={},
            done=request.query_params.get("done"),
        )

    @post("/settings/preferences", status_code=303)
    async def save_preferences(
        self,
        request: Request[Any, Any, Any],
        companies: NamedDependency[CompanyService],
        accounts: NamedDependency[AccountService],
        settings: NamedDependency[Settings],
    ) -> Redirect:
        member = await member_of(request, companies)
        values = await form_values(request)
        form = read(
            Preferences,
            {
                "language": values.get("language") or None,
                "digest_frequency": values.get("digest_frequency", DigestFrequency.WEEKLY.value),
                "digest_consent": "true" if values.get("digest_consent") else "false",
            },
        )
        if form.data is None:
            raise InvalidInput("the preferences are not valid: " + "; ".join(form.errors.values()))
        user = await accounts.set_preferences(member.principal, form.data)
        redirect = see_other("/settings?done=preferences")
        if user.language:
            redirect.set_cookie(language_cookie(user.language, settings))
        return redirect

    @post("/settings/password", status_code=200)
    async def change_password(
        self,
        request: Request[Any, Any, Any],
        companies: NamedDependency[CompanyService],
        accounts: NamedDependency[AccountService],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        member = await member_of(request, companies)
        values = await form_values(request)
        errors: dict[str, str] = {}
        if values.get("new_password") != values.get("new_password_again"):
            errors["new_password_again"] = _("The two passwords differ.")
        else:
            try:
                secret = await accounts.change_password(
                    member.principal, values.get("current_password", ""), values.get("new_password", "")
                )
            except InvalidInput as invalid:
                errors = service_errors(invalid)
            else:
                redirect = see_other("/settings?done=password")
                if secret is not None:
                    set_session_cookie(redirect, settings, secret)
                return redirect
        user = await accounts.get_user(member.principal.user_id)
        return page(request, "settings.html", status=422, member=member, user=user, errors=errors, done=None)

    @get("/settings/export")
    async def export(
        self, request: Request[Any, Any, Any], privacy: NamedDependency[PrivacyService]
    ) -> Response[bytes]:
        principal = principal_of(request)
        if principal is None:
            raise NotAuthorizedException("sign in")
        data = await privacy.export(principal)
        return Response(
            msgspec.json.encode(data),
            media_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="partnermatch-export.json"'},
        )

    @post("/settings/delete", status_code=200)
    async def delete_account(
        self,
        request: Request[Any, Any, Any],
        companies: NamedDependency[CompanyService],
        accounts: NamedDependency[AccountService],
        privacy: NamedDependency[PrivacyService],
        settings: NamedDependency[Settings],
    ) -> Template:
        member = await member_of(request, companies)
        values = await form_values(request)
        try:
            await privacy.delete_account(member.principal, values.get("confirm", ""))
        except (InvalidInput, Conflict) as refused:
            user = await accounts.get_user(member.principal.user_id)
            errors = (
                {"confirm": _("Type your email address exactly as you sign in with it.")}
                if isinstance(refused, InvalidInput)
                else service_errors(refused)
            )
            return page(
                request, "settings.html", status=422, member=member, user=user, errors=errors, done=None
            )
        response = page(request, "account_deleted.html", principal=None)
        clear_session_cookie(response, settings)
        return response

    @post("/verify-email/resend", opt={LOGIN_RATE_LIMITED: True}, status_code=303)
    async def resend_verification(
        self, request: Request[Any, Any, Any], accounts: NamedDependency[AccountService]
    ) -> Redirect:
        principal = principal_of(request)
        if principal is None:
            raise NotAuthorizedException("sign in")
        with contextlib.suppress(Conflict):  # verified meanwhile
            await accounts.resend_verification(principal)
        return see_other("/settings?done=verification")


def log_seen(
    session: AsyncSession, company_id: UUID, kind: InteractionKind, seen: Sequence[tuple[UUID, int | None]]
) -> None:
    """What a page showed, recorded by a job after its response: a page is a read and writes nothing."""
    at = datetime.now(UTC)
    jobs.after_commit(
        session,
        Job.of(record_seen_later, company_id=company_id, kind=kind, seen=list(seen), at=at),
    )


ROUTE_HANDLERS = [VisitorPages, MemberPages]
