from datetime import datetime
from typing import Any

from advanced_alchemy.base import UUIDv7Base
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column


class FailedJob(UUIDv7Base):
    """A job that failed at every attempt: kept with its arguments and last error for staff to see
    (``GET /api/v1/admin/jobs``) and to run again by hand; its change stays committed."""

    __tablename__ = "failed_jobs"
    __table_args__ = (Index("ix_failed_jobs_failed_at", "failed_at"),)

    name: Mapped[str] = mapped_column(String(100))
    arguments: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class ScheduledRun(UUIDv7Base):
    """One firing of a scheduled job: the row is its claim, so that of all the workers and server processes
    that see the time come, exactly one starts it."""

    __tablename__ = "scheduled_runs"
    __table_args__ = (UniqueConstraint("name", "slot"),)

    name: Mapped[str] = mapped_column(String(100))
    slot: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    """The scheduled time (from the job's cron line in Berlin time), in UTC."""
    claimed_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JsonB, nullable=True)
    """What the job returned (counts), for ``partnermatch jobs status``."""
