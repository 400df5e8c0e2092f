from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from partnermatch.interactions.schemas import Position


class Recommendation(msgspec.Struct):
    lead_id: UUID
    title: str
    kind: str
    city_id: str
    rank: int
    score: Annotated[
        float,
        msgspec.Meta(
            ge=0.0,
            le=1.0,
            description="Calibrated probability of interest",
        ),
    ]
    method: Annotated[
        str,
        msgspec.Meta(description="`learned`, or `cold_start` for a company or lead created after training"),
    ]
    reasons: list[str]


class RecommendationList(msgspec.Struct):
    company_id: UUID
    model_version: str
    items: list[Recommendation]
    note: Annotated[str | None, msgspec.Meta(description="Why the list is empty, when it must be")] = None
    source: Annotated[
        Literal["stored", "on_demand"],
        msgspec.Meta(
            description="`stored`: the rows computed in batch for the model version; `on_demand`: scored "
            "for this request (no stored rows yet, or a filter left fewer than asked of a cut list)"
        ),
    ] = "on_demand"


class FeedbackCreate(msgspec.Struct, forbid_unknown_fields=True):
    # lead_id and kind are required, but checked after the company is found: another company's member
    # gets 404 whatever the body, and learns nothing from a validation error.
    lead_id: Annotated[UUID, msgspec.Meta(description="Required")] | None = None
    kind: (
        Annotated[
            Literal["view", "interested", "declined", "contacted"], msgspec.Meta(description="Required")
        ]
        | None
    ) = None
    position: (
        Annotated[
            Position,
            msgspec.Meta(description="Rank shown; recorded for views (the dataset format keeps it there)"),
        ]
        | None
    ) = None


class FeedbackRead(msgspec.Struct):
    id: int
    company_id: UUID
    lead_id: UUID
    kind: str
    at: datetime
    position: int | None


class MissionCandidate(msgspec.Struct):
    company_id: UUID
    name: str
    rank: int
    score: Annotated[float, msgspec.Meta(description="Mission fit, scaled to [0, 1] over the candidates")]
    division: str
    employees: int
    is_sme: bool
    reasons: list[str]


class MissionCandidateList(msgspec.Struct):
    mission_id: UUID
    model_version: str
    places: Annotated[
        int, msgspec.Meta(description="Capacity left after invited and participating companies")
    ]
    items: list[MissionCandidate]
    shortfalls: Annotated[list[str], msgspec.Meta(description="Rules the candidates could not satisfy")]


class LeadCandidate(msgspec.Struct):
    company_id: UUID
    name: str
    rank: int
    score: Annotated[
        float,
        msgspec.Meta(
            ge=0.0,
            le=1.0,
            description="Calibrated probability of interest",
        ),
    ]
    method: str
    reasons: list[str]


class LeadCandidateList(msgspec.Struct):
    lead_id: UUID
    model_version: str
    items: list[LeadCandidate]
