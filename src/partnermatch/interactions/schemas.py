from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from partnermatch.clock import Instant
from partnermatch.enums import DeclineReason, InteractionKind

Position = Annotated[int, msgspec.Meta(ge=1, le=100_000, description="Rank at which the lead was shown")]


class InteractionRead(msgspec.Struct):
    id: int
    company_id: UUID
    lead_id: UUID
    kind: InteractionKind
    at: datetime
    position: int | None
    reason: DeclineReason | None


class InteractionCreate(msgspec.Struct, forbid_unknown_fields=True):
    company_id: UUID
    lead_id: UUID
    kind: InteractionKind
    at: Annotated[Instant, msgspec.Meta(description="When it happened; default now")] | None = None
    position: Annotated[Position, msgspec.Meta(description="Only for impressions and views")] | None = None
    reason: Annotated[DeclineReason, msgspec.Meta(description="Only for declined")] | None = None


class FeedbackCreate(msgspec.Struct, forbid_unknown_fields=True):
    lead_id: UUID
    kind: Literal["view", "interested", "declined", "contacted"]
    position: (
        Annotated[
            Position,
            msgspec.Meta(description="Rank shown; recorded for views (the dataset format keeps it there)"),
        ]
        | None
    ) = None
    reason: (
        Annotated[DeclineReason, msgspec.Meta(description="Why the lead was declined (only with `declined`)")]
        | None
    ) = None


class FeedbackRead(msgspec.Struct):
    id: int
    company_id: UUID
    lead_id: UUID
    kind: str
    at: datetime
    position: int | None
