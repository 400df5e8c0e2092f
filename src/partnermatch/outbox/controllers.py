from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, access
from partnermatch.enums import MailStatus
from partnermatch.mapping import read_as
from partnermatch.outbox.repository import OutboxRepository
from partnermatch.outbox.schemas import OutboxMessageRead
from partnermatch.pagination import Limit, Offset, Page, list_page, page_window


async def provide_outbox(db_session: NamedDependency[AsyncSession]) -> OutboxRepository:
    return OutboxRepository(db_session)


class OutboxController(Controller):
    """Read only: staff see what waits, what was sent and what failed with which error."""

    path = "/api/v1/admin/mail"
    tags = ["admin: mail"]
    opt = access(Access.STAFF)
    dependencies = {"outbox": Provide(provide_outbox)}

    @get("/", summary="Messages of the mail outbox, newest first (without their bodies)")
    async def list_messages(
        self,
        outbox: NamedDependency[OutboxRepository],
        status: FromQuery[MailStatus | None] = None,
        to: Annotated[str | None, QueryParameter(description="Recipient address", max_length=320)] = None,
        limit: Limit = None,
        offset: Offset = 0,
    ) -> Page[OutboxMessageRead]:
        window = page_window(limit, offset)
        found = outbox.messages(status.value if status else None, to, **window)
        return await list_page(found, window, lambda row: read_as(row, OutboxMessageRead))
