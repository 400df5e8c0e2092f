from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.analytics.repository import AnalyticsRepository, Counts
from partnermatch.analytics.schemas import Analytics, CountRow, FunnelGroup, FunnelRow
from partnermatch.errors import InvalidInput


def _rows(counts: Counts) -> list[CountRow]:
    return [CountRow(key=key, companies=c, leads=n, open_leads=o) for key, (c, n, o) in counts.items()]


def iso_week(monday: str) -> str:
    year, week, _day = date.fromisoformat(monday).isocalendar()
    return f"{year}-W{week:02d}"


class AnalyticsService:
    def __init__(self, session: AsyncSession) -> None:
        self.repository = AnalyticsRepository(session)

    async def report(self, group: FunnelGroup, since: date | None, until: date | None) -> Analytics:
        if since is not None and until is not None and until < since:
            raise InvalidInput.for_field("until", "must not be before since")
        funnel = await self.repository.funnel(group, since, until)
        return Analytics(
            by_city=_rows(await self.repository.by_city()),
            by_division=_rows(await self.repository.by_division()),
            by_lead_kind=_rows(await self.repository.by_lead_kind()),
            funnel_group=group,
            since=since,
            until=until,
            funnel=[
                FunnelRow(key=iso_week(key) if group is FunnelGroup.WEEK else key, **stages)
                for key, stages in funnel.items()
            ],
        )
