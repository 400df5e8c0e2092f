from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.base import BigIntBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column


class ModelVersion(BigIntBase):
    """A trained ranking artifact; the one row with ``is_active`` serves recommendations."""

    __tablename__ = "model_versions"
    __table_args__ = (
        # At most one active version, enforced by the database on both backends.
        Index(
            "uq_model_versions_active",
            "is_active",
            unique=True,
            sqlite_where=text("is_active"),
            postgresql_where=text("is_active"),
        ),
    )

    version: Mapped[str] = mapped_column(String(64), unique=True)
    artifact_path: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    metrics: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    parameters: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    sklearn_version: Mapped[str] = mapped_column(String(32))
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    activated_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)


class StoredRecommendation(BigIntBase):
    """One of a company's top leads as computed in batch by one model version.

    The list is read best first by ``ranking_score``; ranks are positions in what a request gets after its
    filters, so merging a changed lead into a list never renumbers the other rows. Rows of an inactive
    version are kept until that version's rows are replaced, so a rollback finds them.
    """

    __tablename__ = "stored_recommendations"
    __table_args__ = (
        Index("uq_stored_recommendations_pair", "model_version_id", "company_id", "lead_id", unique=True),
        # Serving reads one company's rows of the active version.
        Index("ix_stored_recommendations_company", "company_id", "model_version_id"),
        Index("ix_stored_recommendations_lead", "lead_id"),
        CheckConstraint("score >= 0 AND score <= 1", name="score_probability"),
    )

    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    company_id: Mapped[UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    lead_id: Mapped[UUID] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    ranking_score: Mapped[float] = mapped_column(Float)
    """The model's uncalibrated score: it orders the list (calibration ties many pairs)."""
    score: Mapped[float] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
    """``ranking.reasons.Reason.stored()`` of each reason: put into words when read, in the reader's language."""
    truncated: Mapped[bool] = mapped_column(Boolean)
    """The company had more recommendable leads than were stored (the same on all its rows)."""
    computed_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
