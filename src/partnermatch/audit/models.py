from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.base import UUIDv7Base
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from sqlalchemy import CheckConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column


class AuditEvent(UUIDv7Base):
    """One changed row, by whom and through which request. Append-only: the API only reads it."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint("operation IN ('insert', 'update', 'delete')", name="operation_valid"),
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_entity", "entity", "entity_id"),
        Index("ix_audit_events_actor", "actor_user_id", "at"),
    )

    at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    # No foreign keys: the record outlives the accounts and rows it mentions.
    actor_user_id: Mapped[UUID] = mapped_column(GUID(length=16))
    actor_token_id: Mapped[UUID | None] = mapped_column(GUID(length=16), nullable=True)
    request: Mapped[str] = mapped_column(String(300))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(200))
    operation: Mapped[str] = mapped_column(String(8))
    # {field: [before, after]}; inserts have before null, deletes after null.
    changes: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
