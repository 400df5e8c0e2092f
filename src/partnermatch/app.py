"""The one place that wires routes, plugins and error handling."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import saq
from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from advanced_alchemy.extensions.litestar.plugins.init.config.asyncio import SQLAlchemyAsyncConfig
from litestar import Litestar, Request, Response, Router, get
from litestar.datastructures import CacheControlHeader, State
from litestar.di import NamedDependency, Provide
from litestar.enums import ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.logging import LoggingConfig
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.htmx import HTMXPlugin
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, ControllerRouterHandler, Receive, Scope, Send

from partnermatch import __version__, events, jobs
from partnermatch.access import ACCESS_KEY, Access, access, access_guard, provide_principal
from partnermatch.accounts import notifications
from partnermatch.accounts.admin_controllers import AccountAdminController, ColleagueAdminController
from partnermatch.accounts.auth import (
    AuthenticationMiddleware,
    SessionCSRFMiddleware,
    csrf_config,
    login_rate_limit,
    provide_settings,
    rate_limit_stores,
)
from partnermatch.accounts.controllers import AuthController, ColleagueController
from partnermatch.accounts.service import clean_up_accounts
from partnermatch.analytics.controllers import AnalyticsController
from partnermatch.audit import recorder
from partnermatch.audit.controllers import AuditController
from partnermatch.background.controllers import JobController
from partnermatch.background.service import (
    InlineRunner,
    SaqRunner,
    Scheduled,
    keep_schedule,
    refresh_database_statistics,
    saq_queue,
)
from partnermatch.cities.controllers import CityController
from partnermatch.companies.controllers import CompanyController
from partnermatch.companies.events import CompanyProfileChanged, CompanyRegistered, CompanyStatusChanged
from partnermatch.datasets.controllers import DatasetImportController
from partnermatch.db import alchemy_config, reads_only
from partnermatch.digests import controllers as digest_links
from partnermatch.digests.service import send_digests
from partnermatch.errors import EXCEPTION_HANDLERS, PROBLEM_RESPONSES, check_request_body, unavailable
from partnermatch.interactions.controllers import FeedbackController, InteractionController
from partnermatch.interactions.events import IntroductionRequested
from partnermatch.leads.controllers import LeadController
from partnermatch.leads.events import LeadCreated, LeadProfileChanged, LeadStatusChanged
from partnermatch.leads.service import expire_leads
from partnermatch.missions.controllers import MissionController, ParticipantController
from partnermatch.outbox import service as outbox
from partnermatch.outbox.controllers import OutboxController
from partnermatch.portal import controllers as portal
from partnermatch.portal.templating import STATIC, template_config
from partnermatch.privacy.controllers import ErasureController, MyDataController, delete_my_account
from partnermatch.recommendations import refresh
from partnermatch.recommendations.controllers import (
    LeadCandidateController,
    MissionCandidateController,
    RecommendationController,
)
from partnermatch.recommendations.registry import warm_active_model
from partnermatch.recommendations.training import retrain_job
from partnermatch.sectors.controllers import SectorController
from partnermatch.settings import Settings, get_settings

ROUTE_HANDLERS: list[ControllerRouterHandler] = [
    AuthController,
    MyDataController,
    delete_my_account,
    AccountAdminController,
    ColleagueController,
    ColleagueAdminController,
    ErasureController,
    AnalyticsController,
    DatasetImportController,
    AuditController,
    OutboxController,
    JobController,
    CityController,
    SectorController,
    CompanyController,
    LeadController,
    MissionController,
    ParticipantController,
    InteractionController,
    FeedbackController,
    RecommendationController,
    MissionCandidateController,
    LeadCandidateController,
]


@get(
    "/health",
    tags=["operations"],
    summary="Liveness probe",
    include_in_schema=True,
    opt=access(Access.PUBLIC),
)
async def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


async def _before_request(request: Request[Any, Any, Any]) -> None:
    jobs.open_queue()
    await check_request_body(request)
    await portal.choose_language(request)


def _wants_a_page(request: Request[Any, Any, Any]) -> bool:
    """A browser asking for the portal (or a path that does not exist) gets its error as a page."""
    path = request.url.path
    api = path.startswith(("/api/", "/schema", "/health", "/static/"))
    return not api and "text/html" in request.headers.get("accept", "")


def _handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if _wants_a_page(request):
        # A database or Redis out of reach is the portal's 503 page too, not its 500 one.
        return portal.error_page(request, unavailable(exc) or exc)
    return EXCEPTION_HANDLERS[Exception](request, exc)


# Methods that change nothing (RFC 9110): their requests read in deferred transactions on SQLite.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _safe_methods_read_deferred(app: ASGIApp) -> ASGIApp:
    # The outermost middleware: the authentication middleware begins the request's transaction with
    # its lookup, before Litestar's before_request hook runs, so the mode must be set before it.
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] in SAFE_METHODS:
            with reads_only():
                await app(scope, receive, send)
        else:
            await app(scope, receive, send)

    return middleware


logger = logging.getLogger(__name__)
_background: set[asyncio.Task[object]] = set()
SAQ_QUEUE = "saq_queue"


def runner(state: State, session_maker_key: str) -> jobs.Runner:
    """Where this app's committed jobs go: Redis when a queue is configured, else this process."""
    queue: saq.Queue | None = state.get(SAQ_QUEUE)
    if queue is not None:
        return SaqRunner(queue, state["settings"])
    # The session maker is looked up each time (not captured at start): tests swap it for their own.
    return InlineRunner(jobs.JobContext(state[session_maker_key], state["settings"]), _start_in_background)


def _jobs_after_response(session_maker_key: str) -> Callable[[Request[Any, Any, Any]], Awaitable[None]]:
    async def run(request: Request[Any, Any, Any]) -> None:
        committed = jobs.committed()
        if not committed:
            return
        # Jobs write (a GET's too: the last use of its session or token), so they take the write lock
        # up front even though they run inside the read-only request's context.
        with reads_only(False):
            try:
                await runner(request.app.state, session_maker_key).enqueue(committed)
            except Exception as error:
                # The queue (Redis) is out of reach. The answer has gone and the change is saved; only
                # its jobs are lost, each harmless to lose: the outbox poll sends the mail, a company
                # without stored rows is scored on demand.
                logger.error(
                    "jobs of %s %s could not be queued: %s (%r)",
                    request.method,
                    request.url.path,
                    ", ".join(job.name for job in committed),
                    error,
                )

    return run


def _start_in_background(work: Coroutine[Any, Any, object]) -> None:
    task = asyncio.get_running_loop().create_task(work)
    _background.add(task)
    task.add_done_callback(_background.discard)


def _warm_model_after_start(session_maker_key: str) -> Callable[[Litestar], None]:
    # A task, not awaited: the server accepts requests at once, and the first one that needs the model
    # waits for this same load instead of starting its own.
    def start(app: Litestar) -> None:
        _start_in_background(warm_active_model(app.state[session_maker_key]))

    return start


def _run_jobs_after_start(session_maker_key: str) -> Callable[[Litestar], None]:
    """With a queue, the workers run jobs, the schedule and the outbox's poll; without, this process does."""

    def start(app: Litestar) -> None:
        settings: Settings = app.state["settings"]
        if settings.queue_url:
            app.state[SAQ_QUEUE] = saq_queue(settings)
            return
        context = jobs.JobContext(app.state[session_maker_key], settings)
        for work in background_work(context, runner(app.state, session_maker_key)):
            _start_in_background(work)

    return start


def background_work(context: jobs.JobContext, runner: jobs.Runner) -> list[Coroutine[Any, Any, object]]:
    """What runs beside the jobs, wherever they run: the schedule, and the outbox's poll (retries, and
    messages whose job after the commit was lost when a process stopped in between)."""
    settings = context.settings
    work: list[Coroutine[Any, Any, object]] = []
    if settings.schedule_poll_seconds > 0:
        work.append(keep_schedule(context, runner, schedule(settings), settings.schedule_poll_seconds))
    if settings.outbox_poll_seconds > 0:
        work.append(outbox.poll(context, settings.outbox_poll_seconds))
    return work


def schedule(settings: Settings) -> list[Scheduled]:
    """The scheduled jobs (cron lines in Berlin time, from the settings): the one list of them."""
    return [
        Scheduled.of(send_digests, settings.schedule_digest),
        Scheduled.of(expire_leads, settings.schedule_lead_expiry),
        Scheduled.of(clean_up_accounts, settings.schedule_cleanup),
        Scheduled.of(refresh_database_statistics, settings.schedule_statistics),
        Scheduled.of(retrain_job, settings.schedule_retrain),
    ]


def provide_schedule(settings: NamedDependency[Settings]) -> list[Scheduled]:
    return schedule(settings)


async def _stop_background(app: Litestar) -> None:
    for task in list(_background):
        task.cancel()
    queue: saq.Queue | None = app.state.get(SAQ_QUEUE)
    if queue is not None:
        await queue.disconnect()


def subscribe_to_events() -> None:
    """Who follows which domain's changes (``events.py``): the one list of it."""
    events.subscribe(CompanyRegistered, refresh.company_registered)
    events.subscribe(CompanyProfileChanged, refresh.company_profile_changed)
    events.subscribe(CompanyStatusChanged, refresh.company_status_changed)
    events.subscribe(CompanyStatusChanged, notifications.company_status_changed)
    events.subscribe(LeadCreated, refresh.lead_created)
    events.subscribe(LeadProfileChanged, refresh.lead_profile_changed)
    events.subscribe(LeadStatusChanged, refresh.lead_status_changed)
    events.subscribe(IntroductionRequested, notifications.introduction_requested)


def create_app(
    settings: Settings | None = None, *, db_config: SQLAlchemyAsyncConfig | None = None
) -> Litestar:
    settings = settings or get_settings()
    db_config = db_config or alchemy_config(settings)
    recorder.install()
    subscribe_to_events()
    stores, close_stores = rate_limit_stores(settings)
    app = Litestar(
        route_handlers=[
            health,
            *ROUTE_HANDLERS,
            *portal.ROUTE_HANDLERS,
            *digest_links.ROUTE_HANDLERS,
            create_static_files_router(
                "/static",
                directories=[STATIC],
                opt=access(Access.PUBLIC),
                cache_control=CacheControlHeader(max_age=3600, public=True),
            ),
        ],
        plugins=[SQLAlchemyPlugin(config=db_config), HTMXPlugin()],
        template_config=template_config(),
        state=State({"settings": settings}),
        stores=stores,
        on_startup=[
            _warm_model_after_start(db_config.session_maker_app_state_key),
            _run_jobs_after_start(db_config.session_maker_app_state_key),
        ],
        on_shutdown=[*close_stores, _stop_background],
        dependencies={
            "settings": Provide(provide_settings, sync_to_thread=False),
            "principal": Provide(provide_principal, sync_to_thread=False),
            "schedule": Provide(provide_schedule, sync_to_thread=False),
        },
        middleware=[
            _safe_methods_read_deferred,
            DefineMiddleware(AuthenticationMiddleware, settings=settings, db_config=db_config),
            DefineMiddleware(
                SessionCSRFMiddleware,
                config=csrf_config(settings),
                session_cookie=settings.session_cookie_name,
            ),
            login_rate_limit(settings).middleware,
        ],
        # Every handler declares who may call it (access.py); this one guard enforces it.
        guards=[access_guard],
        before_request=_before_request,
        after_response=_jobs_after_response(db_config.session_maker_app_state_key),
        exception_handlers={Exception: _handle_exception},
        request_max_body_size=settings.request_max_bytes,
        openapi_config=OpenAPIConfig(
            title="PartnerMatch API",
            version=__version__,
            description="Matchmaking between Berlin companies and opportunities in Berlin's partner cities.",
            path="/schema",
            openapi_router=Router(
                "/schema", route_handlers=[], include_in_schema=False, opt=access(Access.PUBLIC)
            ),
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
            components=Components(
                security_schemes={
                    "apiToken": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="An API token: `partnermatch users create-staff --token` or POST /api/v1/admin/users/{id}/tokens",
                    ),
                    "session": SecurityScheme(
                        type="apiKey",
                        name=settings.session_cookie_name,
                        security_scheme_in="cookie",
                        description="The session cookie set by POST /api/v1/auth/login",
                    ),
                }
            ),
        ),
        logging_config=LoggingConfig(
            root={"level": settings.log_level, "handlers": ["queue_listener"]},
            log_exceptions="debug" if settings.debug else "never",
            disable_existing_loggers=False,
        ),
        debug=settings.debug,
    )
    _document_problem_responses(app)
    return app


SECURITY: list[dict[str, list[str]]] = [{"apiToken": []}, {"session": []}]


def _document_problem_responses(app: Litestar) -> None:
    # Litestar documents its own 400 body; every error here is a problem+json body instead (errors.py).
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/api/"):
            continue
        for handler in route.route_handlers:
            if isinstance(handler, HTTPRouteHandler):
                handler.responses = {**PROBLEM_RESPONSES, **(handler.responses or {})}
                if handler.opt.get(ACCESS_KEY) != Access.PUBLIC:
                    handler.security = SECURITY


logging.getLogger("partnermatch").addHandler(logging.NullHandler())
