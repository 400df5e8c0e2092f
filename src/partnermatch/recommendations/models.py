from datetime import datetime
from typing import Any

from advanced_alchemy.base import BigIntBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import Boolean, Index, String, text
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
