from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.base import UUIDv7Base
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from sqlalchemy import CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from partnermatch.enums import MailKind, MailStatus, sql_in


class OutboxMessage(UUIDv7Base):
    """A message written in the transaction of the change that causes it, sent after the commit.

    Its body is kept only until it is sent (it may hold a one-time link); what was sent to whom, when,
    and how it went stays until the person is erased, and a sent message no longer than
    PARTNERMATCH_OUTBOX_RETENTION_DAYS (accounts.service.clean_up_accounts)."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        CheckConstraint(sql_in("status", MailStatus), name="status_valid"),
        CheckConstraint(sql_in("kind", MailKind), name="kind_valid"),
        Index("ix_outbox_messages_due", "status", "next_attempt_at"),
        Index("ix_outbox_messages_to_address", "to_address"),
        Index("ix_outbox_messages_user_id", "user_id"),
    )

    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    kind: Mapped[str] = mapped_column(String(32))
    to_address: Mapped[str] = mapped_column(String(320))
    # The recipient's account, when the message is to one: erased with it. No foreign key, so that a
    # message to an address that has no account yet (an invitation) is the same row.
    user_id: Mapped[UUID | None] = mapped_column(GUID(length=16), nullable=True)
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    body_html: Mapped[str | None] = mapped_column(Text, nullable=True)
    headers: Mapped[list[Any]] = mapped_column(JsonB, default=list)
    status: Mapped[str] = mapped_column(String(8), default=MailStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Claims that ended without a result (the sender died between handing the message over and
    # noting it); one is retried, a second is not (see outbox.service).
    interruptions: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(1000), nullable=True)


class UndeliverableAddress(UUIDv7Base):
    """An address a mail server refused for good (a 5xx answer to RCPT): nothing more is sent to it."""

    __tablename__ = "undeliverable_addresses"

    address: Mapped[str] = mapped_column(String(320), unique=True)
    since: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    reason: Mapped[str] = mapped_column(String(1000))
