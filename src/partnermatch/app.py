"""The one place that wires routes, plugins and error handling."""

import logging

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from advanced_alchemy.extensions.litestar.plugins.init.config.asyncio import SQLAlchemyAsyncConfig
from litestar import Litestar, get
from litestar.handlers import HTTPRouteHandler
from litestar.logging import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.routes import HTTPRoute
from litestar.types import ControllerRouterHandler

from partnermatch import __version__
from partnermatch.cities.controllers import CityController
from partnermatch.companies.controllers import CompanyController
from partnermatch.db import alchemy_config
from partnermatch.errors import EXCEPTION_HANDLERS, PROBLEM_RESPONSES
from partnermatch.interactions.controllers import InteractionController
from partnermatch.leads.controllers import LeadController
from partnermatch.missions.controllers import MissionController, ParticipantController
from partnermatch.sectors.controllers import SectorController
from partnermatch.settings import Settings, get_settings

ROUTE_HANDLERS: list[ControllerRouterHandler] = [
    CityController,
    SectorController,
    CompanyController,
    LeadController,
    MissionController,
    ParticipantController,
    InteractionController,
]


@get("/health", tags=["operations"], summary="Liveness probe", include_in_schema=True)
async def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


def create_app(
    settings: Settings | None = None, *, db_config: SQLAlchemyAsyncConfig | None = None
) -> Litestar:
    settings = settings or get_settings()
    db_config = db_config or alchemy_config(settings)
    app = Litestar(
        route_handlers=[health, *ROUTE_HANDLERS],
        plugins=[SQLAlchemyPlugin(config=db_config)],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        openapi_config=OpenAPIConfig(
            title="PartnerMatch API",
            version=__version__,
            description="Matchmaking between Berlin companies and opportunities in Berlin's partner cities.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
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


def _document_problem_responses(app: Litestar) -> None:
    # Litestar documents its own 400 body; every error here is a problem+json body instead (errors.py).
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/api/"):
            continue
        for handler in route.route_handlers:
            if isinstance(handler, HTTPRouteHandler):
                handler.responses = {**PROBLEM_RESPONSES, **(handler.responses or {})}


logging.getLogger("partnermatch").addHandler(logging.NullHandler())
