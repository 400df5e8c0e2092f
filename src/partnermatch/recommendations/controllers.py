from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, Principal, access
from partnermatch.enums import LeadKind
from partnermatch.errors import PROBLEM_JSON, ProblemDetails
from partnermatch.ranking.reasons import sentence
from partnermatch.recommendations.mission_candidates import MissionCandidateService
from partnermatch.recommendations.schemas import (
    LeadCandidate,
    LeadCandidateList,
    MissionCandidate,
    MissionCandidateList,
    Recommendation,
    RecommendationList,
)
from partnermatch.recommendations.service import STORED, LeadCandidateService, RecommendationService

NO_MODEL = {
    409: ResponseSpec(
        data_container=ProblemDetails,
        media_type=PROBLEM_JSON,
        description="No ranking model is active yet (run `partnermatch train` or `partnermatch demo`)",
    )
}


async def provide_recommendation_service(db_session: NamedDependency[AsyncSession]) -> RecommendationService:
    return RecommendationService(db_session)


class RecommendationController(Controller):
    path = "/api/v1/companies"
    tags = ["recommendations"]
    # Members reach their own company only: the service looks it up through repository.visible_to.
    opt = access(Access.MEMBER)
    dependencies = {"recommendations": Provide(provide_recommendation_service)}

    @get(
        "/{company_id:uuid}/recommendations",
        summary="Open leads ranked for an approved company, with score, model version and reasons",
        responses=NO_MODEL,
    )
    async def recommendations(
        self,
        recommendations: NamedDependency[RecommendationService],
        principal: NamedDependency[Principal],
        company_id: FromPath[UUID],
        limit: Annotated[int, QueryParameter(ge=1, le=100, description="How many leads")] = 10,
        city: Annotated[
            str | None, QueryParameter(description="Only leads in this partner city", max_length=64)
        ] = None,
        kind: FromQuery[LeadKind | None] = None,
    ) -> RecommendationList:
        result = await recommendations.recommend(
            company_id, principal, limit, city, kind.value if kind is not None else None
        )
        return RecommendationList(
            company_id=result.company_id,
            model_version=result.model_version,
            note=result.note,
            source="stored" if result.source == STORED else "on_demand",
            items=[
                Recommendation(
                    lead_id=s.lead.id,
                    title=s.lead.title,
                    kind=s.lead.kind,
                    city_id=s.lead.city_id,
                    rank=rank,
                    score=min(1.0, max(0.0, s.score)),
                    method=s.method,
                    reasons=[sentence(r) for r in s.reasons],
                )
                for rank, s in enumerate(result.items, start=1)
            ],
        )


async def provide_mission_candidate_service(
    db_session: NamedDependency[AsyncSession],
) -> MissionCandidateService:
    return MissionCandidateService(db_session)


class MissionCandidateController(Controller):
    path = "/api/v1/missions"
    tags = ["recommendations"]
    opt = access(Access.STAFF)
    dependencies = {"candidates": Provide(provide_mission_candidate_service)}

    @get(
        "/{mission_id:uuid}/candidates",
        summary="A shortlist of companies for a trade mission, within capacity, division and SME rules",
        responses=NO_MODEL,
    )
    async def mission_candidates(
        self,
        candidates: NamedDependency[MissionCandidateService],
        mission_id: FromPath[UUID],
        max_division_share: Annotated[
            float, QueryParameter(gt=0.0, le=1.0, description="Most places one NACE division may take")
        ] = 0.4,
        min_sme_share: Annotated[
            float,
            QueryParameter(ge=0.0, le=1.0, description="Least share of places for SMEs (< 250 employees)"),
        ] = 0.5,
    ) -> MissionCandidateList:
        result = await candidates.shortlist(mission_id, max_division_share, min_sme_share)
        return MissionCandidateList(
            mission_id=result.mission.id,
            model_version=result.model_version,
            places=result.places,
            shortfalls=list(result.shortlist.shortfalls),
            items=[
                MissionCandidate(
                    company_id=UUID(pick.candidate.company_id),
                    name=result.companies[pick.candidate.company_id].name,
                    rank=pick.rank,
                    score=min(1.0, max(0.0, pick.candidate.score)),
                    division=pick.candidate.division,
                    employees=pick.candidate.employees,
                    is_sme=pick.candidate.is_sme,
                    reasons=[sentence(r) for r in pick.reasons],
                )
                for pick in result.shortlist.picks
            ],
        )


async def provide_lead_candidate_service(db_session: NamedDependency[AsyncSession]) -> LeadCandidateService:
    return LeadCandidateService(db_session)


class LeadCandidateController(Controller):
    path = "/api/v1/leads"
    tags = ["recommendations"]
    opt = access(Access.STAFF)
    dependencies = {"candidates": Provide(provide_lead_candidate_service)}

    @get(
        "/{lead_id:uuid}/candidates",
        summary="Approved companies ranked for a lead, with score and reasons",
        responses=NO_MODEL,
    )
    async def lead_candidates(
        self,
        candidates: NamedDependency[LeadCandidateService],
        lead_id: FromPath[UUID],
        limit: Annotated[int, QueryParameter(ge=1, le=100, description="How many companies")] = 10,
    ) -> LeadCandidateList:
        result = await candidates.candidates(lead_id, limit)
        return LeadCandidateList(
            lead_id=result.lead.id,
            model_version=result.model_version,
            items=[
                LeadCandidate(
                    company_id=s.company.id,
                    name=s.company.name,
                    rank=rank,
                    score=min(1.0, max(0.0, s.score)),
                    method=s.method,
                    reasons=[sentence(r) for r in s.reasons],
                )
                for rank, s in enumerate(result.items, start=1)
            ],
        )
