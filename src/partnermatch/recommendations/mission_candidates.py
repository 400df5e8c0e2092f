"""Companies for a trade mission: the model's mission scores, then the constrained shortlist (``ranking.shortlist``)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.companies.models import Company
from partnermatch.enums import HOLDS_PLACE, NOT_PROPOSED_AGAIN
from partnermatch.errors import InvalidInput, NotFound
from partnermatch.missions.models import Mission
from partnermatch.ranking.features import company_index
from partnermatch.ranking.model import RankingModel
from partnermatch.ranking.reasons import mission_reasons
from partnermatch.ranking.shortlist import Candidate, Shortlist, ShortlistRules, select_shortlist
from partnermatch.recommendations.profiles import Subject, loaded_subjects, place
from partnermatch.recommendations.registry import ModelRegistry
from partnermatch.recommendations.repository import CandidateRepository


@dataclass(frozen=True)
class MissionShortlist:
    mission: Mission
    model_version: str
    places: int
    companies: dict[str, Company]
    shortlist: Shortlist


class MissionCandidateService:
    def __init__(self, session: AsyncSession) -> None:
        self.repository = CandidateRepository(session=session)
        self.registry = ModelRegistry(session)

    async def shortlist(
        self, mission_id: UUID, max_division_share: float, min_sme_share: float
    ) -> MissionShortlist:
        mission = await self.repository.mission(mission_id)
        if mission is None:
            raise NotFound.for_id("mission", mission_id)
        row, model = await self.registry.active_model()
        participants = await self.repository.participants(mission.id)
        taken = sum(status in HOLDS_PLACE for status in participants.values())
        places = max(0, mission.capacity - taken)
        approved = list(await self.repository.approved())
        companies = {str(c.id): c for c in approved}
        if places == 0:
            return MissionShortlist(
                mission, row.version, 0, companies, Shortlist(shortfalls=["the mission is full"])
            )
        try:
            rules = ShortlistRules(places, max_division_share, min_sme_share)
        except ValueError as invalid:
            raise InvalidInput(str(invalid)) from None
        # A company without sectors has no division for the shortlist's rules.
        eligible = [c for c in approved if c.sectors]
        subjects = loaded_subjects(company_index(model.state_), eligible, row.created_at)
        past = await self.repository.past_participations(mission.id)
        candidates = mission_candidates(model, mission, eligible, subjects, past)
        excluded = [str(c) for c, status in participants.items() if status in NOT_PROPOSED_AGAIN]
        return MissionShortlist(
            mission, row.version, places, companies, select_shortlist(candidates, rules, excluded)
        )


def mission_candidates(
    model: RankingModel,
    mission: Mission,
    companies: list[Company],
    subjects: list[Subject],
    past: dict[UUID, int],
) -> list[Candidate]:
    """The companies scored by the model for the mission, scaled to [0, 1] (the shortlist trades score
    against resemblance), each with its reasons."""
    if not companies:
        return []
    placed = place(model, subjects, [])
    history = np.log1p(np.array([past.get(c.id, 0) for c in companies], dtype=np.float32))
    raw = model.mission_scores(
        placed.state, mission.sectors, mission.city_id, mission.title, placed.company_rows, history
    )
    low, high = float(raw.min()), float(raw.max())
    score = (raw - low) / (high - low) if high > low else np.ones(len(raw))
    city = model.city_names_.get(mission.city_id, mission.city_id)
    return [
        Candidate(
            company_id=str(company.id),
            score=float(s),
            division=company.sectors[0][:2],
            employees=company.employees,
            reasons=mission_reasons(
                company.sectors,
                company.target_cities,
                past.get(company.id, 0),
                mission.sectors,
                mission.city_id,
                city,
            ),
        )
        for company, s in zip(companies, score, strict=True)
    ]
