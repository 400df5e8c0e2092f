from datetime import date
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, access
from partnermatch.analytics.schemas import Analytics, FunnelGroup
from partnermatch.analytics.service import AnalyticsService


async def provide_analytics_service(db_session: NamedDependency[AsyncSession]) -> AnalyticsService:
    return AnalyticsService(db_session)


DayQuery = Annotated[date | None, QueryParameter(description="A day (UTC), inclusive")]


class AnalyticsController(Controller):
    path = "/api/v1/admin/analytics"
    tags = ["admin: analytics"]
    opt = access(Access.STAFF)
    dependencies = {"analytics": Provide(provide_analytics_service)}

    @get(
        "/",
        summary="Counts of approved companies, leads and open leads by partner city, NACE division and "
        "lead kind; the funnel impression → view → interested → contacted → introduced → deal per ISO "
        "week, city or division",
    )
    async def report(
        self,
        analytics: NamedDependency[AnalyticsService],
        group: Annotated[
            FunnelGroup, QueryParameter(description="How the funnel is grouped")
        ] = FunnelGroup.WEEK,
        since: DayQuery = None,
        until: DayQuery = None,
    ) -> Analytics:
        return await analytics.report(group, since, until)
