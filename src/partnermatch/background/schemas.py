from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec


class FailedJobRead(msgspec.Struct):
    id: UUID
    name: str
    arguments: dict[str, Any]
    attempts: int
    error: str
    failed_at: datetime


class ScheduledJobRead(msgspec.Struct):
    name: str
    cron: str
    """Berlin time; empty: never."""
    next_run: datetime | None
    last_run: datetime | None
    last_finished_at: datetime | None
    last_error: str | None
    last_outcome: dict[str, Any] | None
