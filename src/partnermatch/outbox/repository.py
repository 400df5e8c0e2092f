"""The outbox's queries. A sender claims messages with a conditional UPDATE, so that any number of
senders (server workers, jobs, the command) may run at once and each message has one sender at a time."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import ColumnElement, Table, and_, bindparam, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session

from partnermatch.enums import MailStatus
from partnermatch.outbox.models import OutboxMessage, UndeliverableAddress

PENDING, SENDING, SENT, FAILED = (s.value for s in MailStatus)


@dataclass(frozen=True)
class Claimed:
    id: UUID
    to_address: str
    subject: str
    body_text: str
    body_html: str | None
    headers: list[Any]
    attempts: int
    interruptions: int
    undeliverable: bool


CLAIMED_COLUMNS = (
    OutboxMessage.id,
    OutboxMessage.to_address,
    OutboxMessage.subject,
    OutboxMessage.body_text,
    OutboxMessage.body_html,
    OutboxMessage.headers,
    OutboxMessage.attempts,
    OutboxMessage.interruptions,
)


_table = cast(Table, OutboxMessage.__table__)
# The body may hold a one-time link: it is not kept once it has been handed over.
MARK_SENT = (
    update(_table)
    .where(_table.c.id == bindparam("message_id"))
    .values(
        status=SENT, sent_at=bindparam("sent_at"), body_text=None, body_html=None, headers=[], last_error=None
    )
)


def _due(now: datetime, stale_before: datetime) -> ColumnElement[bool]:
    """Waiting and due, or claimed by a sender that never finished (see outbox.service)."""
    return or_(
        and_(OutboxMessage.status == PENDING, OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.status == SENDING, OutboxMessage.claimed_at < stale_before),
    )


class OutboxRepository:
    def __init__(self, session: AsyncSession | async_scoped_session[AsyncSession]) -> None:
        self.session = session

    def add(self, message: OutboxMessage) -> None:
        self.session.add(message)

    async def any_due(self, now: datetime, stale_before: datetime) -> bool:
        found = await self.session.scalar(select(OutboxMessage.id).where(_due(now, stale_before)).limit(1))
        return found is not None

    async def claim_due(self, now: datetime, stale_before: datetime, limit: int) -> list[Claimed]:
        """Claims up to ``limit`` messages due now, and those whose sender was interrupted (claimed
        before ``stale_before`` and never marked): each counts an attempt, the latter an interruption.

        One statement for the batch. The condition is checked again on each row as it is updated, so a
        row that another sender claimed since the subquery chose it is left alone (on PostgreSQL such
        rows are skipped while locked; SQLite has one writer at a time). The choice is a materialized
        CTE: as an ``IN (subquery)`` PostgreSQL may run the locking subquery again for each row, each
        run skipping the rows this statement has already updated, and so claimed every due message
        instead of ``limit``."""
        chosen = (
            select(OutboxMessage.id)
            .where(_due(now, stale_before))
            .order_by(OutboxMessage.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("chosen")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        interrupted = case((OutboxMessage.status == SENDING, 1), else_=0)
        rows = await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(select(chosen.c.id)), _due(now, stale_before))
            .values(
                status=SENDING,
                claimed_at=now,
                attempts=OutboxMessage.attempts + 1,
                interruptions=OutboxMessage.interruptions + interrupted,
            )
            .returning(*CLAIMED_COLUMNS)
            .execution_options(synchronize_session=False)
        )
        claimed = list(rows.all())
        refused = await self.undeliverable({row.to_address for row in claimed})
        return [Claimed(**row._mapping, undeliverable=row.to_address in refused) for row in claimed]

    async def undeliverable(self, addresses: Iterable[str]) -> set[str]:
        wanted = list(addresses)
        if not wanted:
            return set()
        rows = await self.session.scalars(
            select(UndeliverableAddress.address).where(UndeliverableAddress.address.in_(wanted))
        )
        return set(rows.all())

    async def mark_sent(self, message_id: UUID, at: datetime) -> None:
        # Once per message, committed before the next one goes: the table's statement, built once,
        # skips the ORM's bulk-update path, which cost more than SQLite's work.
        await self.session.execute(MARK_SENT, {"message_id": message_id, "sent_at": at})

    async def mark_retry(self, message_id: UUID, at: datetime, error: str) -> None:
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(status=PENDING, next_attempt_at=at, claimed_at=None, last_error=error)
        )

    async def mark_failed(self, message_id: UUID, error: str) -> None:
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(status=FAILED, body_text=None, body_html=None, headers=[], last_error=error)
        )

    async def mark_undeliverable(self, address: str, at: datetime, reason: str) -> None:
        if not await self.undeliverable([address]):
            self.session.add(UndeliverableAddress(address=address, since=at, reason=reason))
            await self.session.flush()

    async def counts(self) -> dict[str, int]:
        rows = await self.session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        )
        return {str(status): int(count) for status, count in rows.all()}

    async def messages(
        self, status: str | None = None, to: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[Sequence[OutboxMessage], int]:
        """Newest first, and how many match."""
        conditions = []
        if status is not None:
            conditions.append(OutboxMessage.status == status)
        if to is not None:
            conditions.append(OutboxMessage.to_address == to)
        total = await self.session.scalar(select(func.count()).select_from(OutboxMessage).where(*conditions))
        rows = await self.session.scalars(
            select(OutboxMessage)
            .where(*conditions)
            .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return rows.all(), int(total or 0)

    async def delete_sent(self, sent_before: datetime, limit: int) -> int:
        """Deletes up to ``limit`` messages sent before ``sent_before`` (their bodies went when they were
        sent); how many. Pending, sending and failed messages stay."""
        batch = (
            select(OutboxMessage.id)
            .where(OutboxMessage.status == SENT, OutboxMessage.sent_at < sent_before)
            .limit(limit)
        )
        result = await self.session.execute(
            delete(OutboxMessage)
            .where(OutboxMessage.id.in_(batch.scalar_subquery()))
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def erase(self, addresses: Iterable[str]) -> int:
        """Every message to these addresses, sent or not, and their undeliverable marks (erasure)."""
        wanted = list(addresses)
        if not wanted:
            return 0
        result = await self.session.execute(delete(OutboxMessage).where(OutboxMessage.to_address.in_(wanted)))
        await self.session.execute(
            delete(UndeliverableAddress).where(UndeliverableAddress.address.in_(wanted))
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
