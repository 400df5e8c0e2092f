from datetime import datetime
from uuid import UUID

import msgspec


class OutboxMessageRead(msgspec.Struct):
    """What was sent to whom and how it went; never the body, which may hold a one-time link."""

    id: UUID
    created_at: datetime
    kind: str
    to_address: str
    subject: str
    status: str
    attempts: int
    interruptions: int
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None
