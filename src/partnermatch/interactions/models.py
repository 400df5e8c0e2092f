from datetime import datetime
from uuid import UUID

from advanced_alchemy.base import BigIntBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from partnermatch.enums import DeclineReason, InteractionKind, InteractionSource, sql_in


class Interaction(BigIntBase):
    """One logged event of a company with a lead: the data the ranking model learns from."""

    __tablename__ = "interactions"
    __table_args__ = (
        CheckConstraint(sql_in("kind", InteractionKind), name="kind_valid"),
        CheckConstraint("position IS NULL OR position >= 1", name="position_positive"),
        CheckConstraint(f"reason IS NULL OR {sql_in('reason', DeclineReason)}", name="reason_valid"),
        CheckConstraint(f"source IS NULL OR {sql_in('source', InteractionSource)}", name="source_valid"),
        # Same event twice is the same fact: makes re-imports idempotent.
        Index("uq_interactions_event", "company_id", "lead_id", "kind", "at", unique=True),
        Index("ix_interactions_lead", "lead_id"),
        Index("ix_interactions_at", "at"),
    )

    company_id: Mapped[UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    lead_id: Mapped[UUID] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    position: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Why a lead was declined, when the company said so (not part of the dataset format).
    reason: Mapped[str | None] = mapped_column(String(24), nullable=True)
    # Where it was shown or clicked (InteractionSource), when not the portal or the API.
    source: Mapped[str | None] = mapped_column(String(16), nullable=True)
