from typing import Annotated, Literal
from uuid import UUID

import msgspec


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
