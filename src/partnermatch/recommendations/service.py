"""Model registry and serving: which trained ranker is active, and recommendations from it.

Scoring runs the fitted pipeline on the training-time feature state. Companies and leads
created after training are added to a copy of that state from their profiles (cold start,
``method`` = ``"cold_start"``): the same model scores them, without behavioural history.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Principal
from partnermatch.clock import local_date
from partnermatch.companies.models import Company
from partnermatch.companies.repository import CompanyRepository
from partnermatch.enums import CompanyStatus, ParticipantStatus
from partnermatch.errors import Conflict, DomainError, InvalidInput, NotFound
from partnermatch.leads.models import Lead
from partnermatch.missions.models import Mission
from partnermatch.missions.service import HOLDS_PLACE
from partnermatch.ranking.shortlist import Candidate, Shortlist, ShortlistRules, select_shortlist
from partnermatch.recommendations.models import ModelVersion
from partnermatch.recommendations.repository import (
    CandidateRepository,
    ModelVersionRepository,
    OpenLead,
    RecommendableLeadRepository,
    StoredRecommendationRepository,
)

if TYPE_CHECKING:
    from ml.pipeline import RankingPipeline

    from partnermatch.ranking.data import Companies, Leads

logger = logging.getLogger(__name__)

LEARNED = "learned"
# The same model, on a company or lead created after training: its features come from the profile alone.
COLD_START = "cold_start"
# Reasons name only features that lifted the score; a low-ranked pair may have none, and still gets one.
NO_STRONG_REASON = "No single strong signal: ranked by the model's overall fit"


class ModelUnavailable(DomainError):
    # 409, not 503: the server works; the database lacks a trained model, which `partnermatch train` adds.
    status_code = 409
    title = "No ranking model"


class ArtifactRejected(DomainError):
    status_code = 409
    title = "Artifact rejected"


def external_key(external_id: str | None, row_id: UUID) -> str:
    """The id a row has in an exported dataset, hence in the model's feature state."""
    return external_id or str(row_id)


class ModelRegistry:
    def __init__(self, session: AsyncSession) -> None:
        self.repository = ModelVersionRepository(session=session)

    async def list(self) -> Sequence[ModelVersion]:
        return await self.repository.newest_first()

    async def active(self) -> ModelVersion | None:
        return await self.repository.active()

    async def require_active(self) -> ModelVersion:
        row = await self.repository.active()
        if row is None:
            raise ModelUnavailable(
                "no ranking model is active: run `partnermatch train` (or `partnermatch demo`)"
            )
        return row

    async def register(
        self, metadata: dict[str, Any], artifact: str, *, activate: bool = True
    ) -> ModelVersion:
        """``artifact``: the absolute path of the joblib file that the metadata describes."""
        if await self.repository.by_version(metadata["version"]) is not None:
            raise Conflict(f"model version {metadata['version']} is already registered")
        row = ModelVersion(
            version=metadata["version"],
            artifact_path=artifact,
            sha256=metadata["sha256"],
            created_at=datetime.fromisoformat(metadata["created_at"]),
            metrics=metadata.get("holdout_metrics", {}),
            parameters=metadata.get("parameters", {}),
            sklearn_version=metadata["libraries"]["scikit-learn"],
            is_active=False,
        )
        await self.repository.add(row)
        if activate:
            await self.activate(row.version)
        return row

    async def activate(self, version: str) -> ModelVersion:
        row = await self.repository.by_version(version)
        if row is None:
            raise NotFound(f"no model version {version}")
        await self.repository.deactivate_all()
        row.is_active = True
        row.activated_at = datetime.now(UTC)
        await self.repository.session.flush()
        return row

    async def rollback(self) -> ModelVersion:
        """Activate the newest version older than the active one."""
        rows = list(await self.repository.newest_first())
        current = next((i for i, r in enumerate(rows) if r.is_active), None)
        if current is None or current + 1 >= len(rows):
            raise Conflict("there is no older model version to roll back to")
        return await self.activate(rows[current + 1].version)


_cache: dict[tuple[str, str], RankingPipeline] = {}
_cache_lock = threading.Lock()


def load_model(row: ModelVersion) -> RankingPipeline:
    """The artifact of a registered version, verified against the registered sha256 (cached per sha)."""
    from ml.artifact import ArtifactRefused, load

    key = (row.artifact_path, row.sha256)
    with _cache_lock:
        model = _cache.get(key)
        if model is None:
            try:
                model = load(Path(row.artifact_path), expected_sha256=row.sha256)
            except (ArtifactRefused, OSError) as refused:
                raise ArtifactRejected(f"model {row.version} cannot be loaded: {refused}") from None
            # The reasons name sectors from the NACE tables; reading them once here (seconds, in the
            # loading thread) keeps that cost off the first request.
            from partnermatch.ranking.features import sector_names

            sector_names()
            _cache.clear()
            _cache[key] = model
        return model


async def warm_active_model(sessions: Callable[[], AsyncSession]) -> None:
    """Load the active model before the first request needs it (seconds per worker at 10,000 companies).
    A request that comes first waits for the same load; a failure is logged and left to that request."""
    try:
        async with sessions() as session:
            row = await ModelVersionRepository(session=session).active()
        if row is not None:
            await asyncio.to_thread(load_model, row)
    except Exception:
        logger.exception("loading the active ranking model at start-up failed")


class ListedLead(Protocol):
    """What a recommendation shows of its lead: a ``Lead``, an open lead's or a stored row's columns."""

    @property
    def id(self) -> UUID: ...
    @property
    def title(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def city_id(self) -> str: ...


@dataclass(frozen=True)
class Scored:
    lead: ListedLead
    score: float
    method: str
    reasons: tuple[str, ...]


STORED = "stored"
ON_DEMAND = "on_demand"


@dataclass(frozen=True)
class Recommendations:
    company: Company
    model_version: str
    items: list[Scored]
    note: str | None
    source: str = ON_DEMAND


class RecommendationService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.companies = CompanyRepository(session=session)
        self.leads = RecommendableLeadRepository(session=session)
        self.stored = StoredRecommendationRepository(session=session)
        self.registry = ModelRegistry(session)

    async def company_for(self, company_id: UUID, principal: Principal) -> Company:
        company = await self.companies.get_visible(company_id, principal)
        if company is None:
            raise NotFound.for_id("company", company_id)
        return company

    async def recommend(
        self, company_id: UUID, principal: Principal, limit: int, city: str | None, kind: str | None
    ) -> Recommendations:
        company = await self.company_for(company_id, principal)
        row = await self.registry.require_active()
        if company.status != CompanyStatus.APPROVED.value:
            note = f"the company is {company.status}: only approved companies get recommendations"
            return Recommendations(company, row.version, [], note)
        now = datetime.now(UTC)
        today = local_date(now)
        # The batch's rows, under the same filters as on demand. They are the company's top leads of all;
        # when a filter (or closed and settled leads) leaves fewer than asked of a list that was cut at
        # PARTNERMATCH_STORED_RECOMMENDATIONS, leads beyond the cut may qualify: those requests, and
        # companies without rows for this version, are scored on demand.
        stored = await self.stored.served(row.id, company.id, limit, today, now, city, kind)
        if stored.stored and (len(stored.rows) == limit or not stored.truncated):
            items = [
                Scored(r, r.score, r.method, current_reasons(r.reasons, r.deadline, today))
                for r in stored.rows
            ]
            return Recommendations(company, row.version, items, None, STORED)
        # Unpickling and hashing a large file must not block the event loop.
        model = await asyncio.to_thread(load_model, row)
        leads = await self.leads.open_for(company.id, today, now, city, kind)
        profiles = await unknown_lead_profiles(self.leads, model, leads)
        return Recommendations(
            company,
            row.version,
            score_leads(model, company, leads, limit, row.created_at, profiles),
            None,
            ON_DEMAND,
        )


async def unknown_lead_profiles(
    repository: RecommendableLeadRepository, model: RankingPipeline, leads: Sequence[OpenLead]
) -> dict[UUID, Lead]:
    """Whole leads for those of ``leads`` the model does not know: it needs their profiles, and only theirs
    (reading thousands of leads as objects took half of a request at 10,000 x 5,000)."""
    from partnermatch.ranking.features import lead_index

    known = lead_index(model.state_)
    unknown = [lead.id for lead in leads if external_key(lead.external_id, lead.id) not in known]
    return {lead.id: lead for lead in await repository.profiles(unknown)}


def current_reasons(reasons: Sequence[str], deadline: date | None, today: date) -> tuple[str, ...]:
    """Stored reasons as of today: the deadline sentence was written on the batch's day."""
    from partnermatch.ranking.reasons import DEADLINE_PREFIX, deadline_reason

    if not reasons:
        return (NO_STRONG_REASON,)
    return tuple(
        deadline_reason((deadline - today).days)
        if deadline is not None and reason.startswith(DEADLINE_PREFIX)
        else reason
        for reason in reasons
    )


def company_frame(rows: Sequence[Company]) -> Companies:
    """Database companies in the columns the feature code reads (as a dataset folder would give them)."""
    import numpy as np

    from partnermatch.ranking.data import EXPORT_LEVELS, Companies

    export = {v: i for i, v in enumerate(EXPORT_LEVELS)}
    return Companies(
        [external_key(c.external_id, c.id) for c in rows],
        [c.name for c in rows],
        [list(c.sectors) for c in rows],
        np.array([float(c.employees) for c in rows], dtype=np.float64),
        np.array([float(c.founded) for c in rows], dtype=np.float64),
        np.array([export.get(c.export_experience, 0) for c in rows], dtype=np.int64),
        [list(c.languages) for c in rows],
        [list(c.target_cities) for c in rows],
        [c.description for c in rows],
        np.array([c.registered_at.timestamp() for c in rows], dtype=np.float64),
    )


def lead_frame(rows: Sequence[Lead]) -> Leads:
    import math

    import numpy as np

    from partnermatch.ranking.data import LEAD_KINDS, Leads, deadline_end

    kinds = {v: i for i, v in enumerate(LEAD_KINDS)}
    return Leads(
        [external_key(r.external_id, r.id) for r in rows],
        [r.title for r in rows],
        np.array([kinds.get(r.kind, 0) for r in rows], dtype=np.int64),
        [r.city_id for r in rows],
        [list(r.sectors) for r in rows],
        [r.description for r in rows],
        [list(r.languages) for r in rows],
        np.array([math.nan if r.budget_eur is None else float(r.budget_eur) for r in rows], dtype=np.float64),
        np.array([r.published_at.timestamp() for r in rows], dtype=np.float64),
        np.array(
            [deadline_end(r.deadline.isoformat() if r.deadline else None) for r in rows], dtype=np.float64
        ),
    )


def score_leads(
    model: RankingPipeline,
    company: Company,
    leads: Sequence[OpenLead | Lead],
    limit: int,
    trained_at: datetime | None = None,
    profiles: Mapping[UUID, Lead] | None = None,
) -> list[Scored]:
    """The leads' candidates for the company scored by the model (see ``RankingPipeline.rank``). Profiles
    created after training are added to its state first (a lead the model does not know must be a ``Lead``
    or have its profile in ``profiles``), and so is the company's profile when it changed after
    ``trained_at`` (the stored rows are recomputed from it too)."""
    state = model.state_
    company_key = external_key(company.external_id, company.id)
    by_key = {external_key(lead.external_id, lead.id): lead for lead in leads}
    if not by_key:
        return []
    from partnermatch.ranking.features import company_index, lead_index

    known_leads = lead_index(state)
    new_keys = {key for key in by_key if key not in known_leads}
    new_profiles = [
        lead if isinstance(lead, Lead) else (profiles or {})[lead.id]
        for key, lead in by_key.items()
        if key in new_keys
    ]
    new_company = company_key not in company_index(state)
    changed = not new_company and trained_at is not None and company.updated_at > trained_at
    if new_keys or new_company or changed:
        state = model.with_profiles(
            company_frame([company]) if new_company or changed else None,
            lead_frame(new_profiles) if new_profiles else None,
            changed=changed,
        )
    items = model.rank(company_key, list(by_key), limit=limit, state=state, now=time.time())
    return [
        Scored(
            by_key[item["lead_id"]],
            float(item["score"]),
            COLD_START if new_company or item["lead_id"] in new_keys else LEARNED,
            tuple(item["reasons"]) or (NO_STRONG_REASON,),
        )
        for item in items
    ]


# Companies that hold a place, or said no, are not proposed again.
NOT_AGAIN = frozenset(
    {ParticipantStatus.INVITED.value, ParticipantStatus.PARTICIPATED.value, ParticipantStatus.DECLINED.value}
)


@dataclass(frozen=True)
class MissionShortlist:
    mission: Mission
    model_version: str
    places: int
    companies: dict[str, Company]
    shortlist: Shortlist


class MissionCandidateService:
    """Companies for a trade mission: the model's mission scores, then the constrained shortlist."""

    def __init__(self, session: AsyncSession) -> None:
        self.repository = CandidateRepository(session=session)
        self.registry = ModelRegistry(session)

    async def shortlist(
        self, mission_id: UUID, max_division_share: float, min_sme_share: float
    ) -> MissionShortlist:
        mission = await self.repository.mission(mission_id)
        if mission is None:
            raise NotFound.for_id("mission", mission_id)
        row = await self.registry.require_active()
        model = await asyncio.to_thread(load_model, row)
        participants = await self.repository.participants(mission.id)
        taken = sum(status in HOLDS_PLACE for status in participants.values())
        places = max(0, mission.capacity - taken)
        by_key = {external_key(c.external_id, c.id): c for c in await self.repository.approved()}
        past = await self.repository.past_participations(mission.id)
        excluded = [str(c) for c, status in participants.items() if status in NOT_AGAIN]
        result = MissionShortlist(
            mission, row.version, places, {str(c.id): c for c in by_key.values()}, Shortlist()
        )
        if places == 0:
            result.shortlist.shortfalls.append("the mission is full")
            return result
        try:
            rules = ShortlistRules(places, max_division_share, min_sme_share)
        except ValueError as invalid:
            raise InvalidInput(str(invalid)) from None
        candidates = mission_candidates(model, mission, by_key, past)
        return MissionShortlist(
            mission, row.version, places, result.companies, select_shortlist(candidates, rules, excluded)
        )


def mission_candidates(
    model: RankingPipeline, mission: Mission, by_key: dict[str, Company], past: dict[UUID, int]
) -> list[Candidate]:
    import numpy as np

    from partnermatch.ranking.features import mission_features

    known = set(model.state_.companies.ids)
    new = [c for key, c in by_key.items() if key not in known and c.sectors]
    state = model.with_profiles(company_frame(new)) if new else model.state_
    rows, companies = [], []
    for i, key in enumerate(state.companies.ids):
        company = by_key.get(key)
        if company is not None and company.sectors:
            rows.append(i)
            companies.append(company)
    if not rows:
        return []
    index = np.array(rows, dtype=np.int64)
    history = np.zeros(len(state.companies.ids), dtype=np.float32)
    for i, company in zip(rows, companies, strict=True):
        history[i] = np.log1p(past.get(company.id, 0))
    X = mission_features(
        state,
        mission.sectors,
        mission.city_id,
        mission.title,
        model.city_languages_.get(mission.city_id, []),
        index,
        history,
    )
    if model.mission_ranker_ is None:
        # No past participations to learn from: sector depth, then text (as the pipeline does).
        raw = X[:, 0] + 0.5 * X[:, 2] + 0.1 * X[:, 4]
    else:
        raw = model.mission_ranker_.decision_function(X)
    # The shortlist trades score against resemblance, so scores go to [0, 1] first.
    low, high = float(raw.min()), float(raw.max())
    score = (raw - low) / (high - low) if high > low else np.ones(len(raw))
    from partnermatch.ranking.features import sector_names

    names = sector_names()
    city = model.city_names_.get(mission.city_id, mission.city_id)
    wanted = {code[:2] for code in mission.sectors}
    out = []
    for company, s in zip(companies, score, strict=True):
        reasons = []
        shared = [code for code in company.sectors if code[:2] in wanted]
        if shared:
            reasons.append(f"Sector focus: {shared[0]} {names.get(shared[0], '')}".rstrip())
        if mission.city_id in company.target_cities:
            reasons.append(f"Targets {city}")
        if past.get(company.id):
            reasons.append(f"Took part in {past[company.id]} earlier mission(s)")
        out.append(
            Candidate(
                company_id=str(company.id),
                score=float(s),
                division=company.sectors[0][:2],
                employees=company.employees,
                reasons=tuple(reasons),
            )
        )
    return out


@dataclass(frozen=True)
class CompanyScore:
    company: Company
    score: float
    method: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class LeadCandidates:
    lead: Lead
    model_version: str
    items: list[CompanyScore]


class LeadCandidateService:
    """Approved companies for a lead, except those that declined or already pursued it."""

    def __init__(self, session: AsyncSession) -> None:
        self.repository = CandidateRepository(session=session)
        self.registry = ModelRegistry(session)

    async def candidates(self, lead_id: UUID, limit: int) -> LeadCandidates:
        lead = await self.repository.lead(lead_id)
        if lead is None:
            raise NotFound.for_id("lead", lead_id)
        row = await self.registry.require_active()
        model = await asyncio.to_thread(load_model, row)
        settled = await self.repository.settled_companies(lead.id)
        companies = [c for c in await self.repository.approved() if c.id not in settled]
        return LeadCandidates(
            lead, row.version, score_companies(model, lead, companies, limit, row.created_at)
        )


def score_companies(
    model: RankingPipeline,
    lead: Lead,
    companies: Sequence[Company],
    limit: int,
    trained_at: datetime | None = None,
) -> list[CompanyScore]:
    """The companies scored for the lead (see ``RankingPipeline.rank_companies_for_lead``); profiles created
    after training are added first, and so is the lead's profile when it changed after ``trained_at``."""
    state = model.state_
    lead_key = external_key(lead.external_id, lead.id)
    by_key = {external_key(c.external_id, c.id): c for c in companies}
    if not by_key:
        return []
    from partnermatch.ranking.features import company_index, lead_index

    known = company_index(state)
    new_companies = [c for key, c in by_key.items() if key not in known]
    new_lead = lead_key not in lead_index(state)
    changed = not new_lead and trained_at is not None and lead.updated_at > trained_at
    if new_companies or new_lead or changed:
        state = model.with_profiles(
            company_frame(new_companies) if new_companies else None,
            lead_frame([lead]) if new_lead or changed else None,
            changed=changed,
        )
    items = model.rank_companies_for_lead(lead_key, list(by_key), limit=limit, state=state, now=time.time())
    return [
        CompanyScore(
            by_key[item["company_id"]],
            float(item["score"]),
            COLD_START if new_lead or by_key[item["company_id"]] in new_companies else LEARNED,
            tuple(item["reasons"]) or (NO_STRONG_REASON,),
        )
        for item in items
    ]
