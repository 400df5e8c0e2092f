from datetime import date, datetime
from uuid import UUID

from advanced_alchemy.base import UUIDv7Base
from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import Date, ForeignKey, Index, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column


class SentDigest(UUIDv7Base):
    """One member's digest of one period, written in the transaction that puts its message into the
    outbox: a run that finds it sends nothing more for that period (so a rerun, or a run after a crash,
    sends each member's digest once)."""

    __tablename__ = "sent_digests"
    __table_args__ = (
        UniqueConstraint("user_id", "period"),
        Index("ix_sent_digests_company_id", "company_id"),
    )

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    company_id: Mapped[UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    period: Mapped[date] = mapped_column(Date)
    """The first day of the period (a Monday for weekly and fortnightly digests, the 1st for monthly)."""
    sent_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    leads: Mapped[int] = mapped_column(Integer)
    missions: Mapped[int] = mapped_column(Integer)
    outbox_message_id: Mapped[UUID] = mapped_column(GUID(length=16))
