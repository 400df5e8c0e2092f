"""Serving: open leads ranked for a company, and approved companies ranked for a lead.

A company's list comes from its stored rows (``batch.py``) when they can answer the request, else it is
scored on demand by the active model. Companies and leads created after training, or changed since, are
scored from their current profiles (``profiles.place``); those the model did not know are ``cold_start``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Principal
from partnermatch.clock import local_date
from partnermatch.companies.models import Company
from partnermatch.companies.repository import CompanyRepository
from partnermatch.enums import CompanyStatus
from partnermatch.errors import NotFound
from partnermatch.leads.models import Lead
from partnermatch.ranking.features import company_index, lead_index
from partnermatch.ranking.reasons import Reason, with_deadline
from partnermatch.recommendations import profiles
from partnermatch.recommendations.profiles import loaded_subjects, method, place, subjects
from partnermatch.recommendations.registry import NO_ACTIVE_MODEL, ModelRegistry, ModelUnavailable, load_model
from partnermatch.recommendations.repository import (
    CandidateRepository,
    RecommendableLeadRepository,
    StoredRecommendationRepository,
    serving_start,
)

STORED = "stored"
ON_DEMAND = "on_demand"


class ListedLead(Protocol):
    """What a recommendation shows of its lead: an open lead's or a stored row's columns."""

    @property
    def id(self) -> UUID: ...
    @property
    def title(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def city_id(self) -> str: ...
    @property
    def organization(self) -> str: ...
    @property
    def budget_eur(self) -> int | None: ...
    @property
    def deadline(self) -> date | None: ...


@dataclass(frozen=True)
class Scored:
    lead: ListedLead
    score: float
    method: str
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class Recommendations:
    company_id: UUID
    model_version: str
    items: list[Scored]
    note: str | None
    source: str = ON_DEMAND


class RecommendationService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # Built when first used: most requests are answered from the stored rows, and advanced-alchemy's
    # repositories cost tens of microseconds each to set up.
    @cached_property
    def companies(self) -> CompanyRepository:
        return CompanyRepository(session=self.session)

    @cached_property
    def leads(self) -> RecommendableLeadRepository:
        return RecommendableLeadRepository(session=self.session)

    @cached_property
    def stored(self) -> StoredRecommendationRepository:
        return StoredRecommendationRepository(session=self.session)

    @cached_property
    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.session)

    async def recommend(
        self, company_id: UUID, principal: Principal, limit: int, city: str | None, kind: str | None
    ) -> Recommendations:
        # The stored rows need only the company's status and the active version, read in one query; the
        # whole profile and model are read only for scoring on demand.
        start = await serving_start(self.session, company_id, principal)
        if start.status is None:
            raise NotFound.for_id("company", company_id)
        if start.version_id is None or start.version is None:
            raise ModelUnavailable(NO_ACTIVE_MODEL)
        if start.status != CompanyStatus.APPROVED.value:
            note = f"the company is {start.status}: only approved companies get recommendations"
            return Recommendations(company_id, start.version, [], note)
        now = datetime.now(UTC)
        today = local_date(now)
        # The batch's rows, under the same filters as on demand. They are the company's top leads of all;
        # when a filter (or closed and settled leads) leaves fewer than asked of a list that was cut at
        # PARTNERMATCH_STORED_RECOMMENDATIONS, leads beyond the cut may qualify: those requests, and
        # companies without rows for this version, are scored on demand.
        stored = await self.stored.served(start.version_id, company_id, limit, today, now, city, kind)
        if stored.stored and (len(stored.rows) == limit or not stored.truncated):
            items = [
                Scored(
                    r,
                    r.score,
                    r.method,
                    with_deadline([Reason.from_stored(x) for x in r.reasons], r.deadline, today),
                )
                for r in stored.rows
            ]
            return Recommendations(company_id, start.version, items, None, STORED)
        row = await self.registry.require_active()
        company = await self.companies.get_visible(company_id, principal)
        if company is None:
            raise NotFound.for_id("company", company_id)
        model = await asyncio.to_thread(load_model, row)
        # Open leads are read as columns and whole only where the model needs their profile: reading
        # thousands of leads as objects took half of a request at 10,000 x 5,000.
        open_leads = await self.leads.open_for(company.id, today, now, city, kind)
        lead_subjects = await subjects(
            lead_index(model.state_), open_leads, row.created_at, self.leads.profiles
        )
        (company_subject,) = loaded_subjects(company_index(model.state_), [company], row.created_at)
        if not lead_subjects:
            return Recommendations(company_id, row.version, [], None, ON_DEMAND)
        placed = place(model, [company_subject], lead_subjects)
        listed = {
            s.key: (lead, bool(new))
            for s, lead, new in zip(lead_subjects, open_leads, placed.lead_new, strict=True)
        }
        ranked = model.rank(
            company_subject.key, list(listed), limit=limit, state=placed.state, now=profiles.scoring_time()
        )
        items = [
            Scored(
                listed[item.key][0],
                item.score,
                method(bool(placed.company_new[0]), listed[item.key][1]),
                tuple(item.reasons),
            )
            for item in ranked
        ]
        return Recommendations(company_id, row.version, items, None, ON_DEMAND)


@dataclass(frozen=True)
class CompanyScore:
    company: Company
    score: float
    method: str
    reasons: tuple[Reason, ...]


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
        row, model = await self.registry.active_model()
        settled = await self.repository.settled_companies(lead.id)
        companies = [c for c in await self.repository.approved() if c.id not in settled]
        if not companies:
            return LeadCandidates(lead, row.version, [])
        company_subjects = loaded_subjects(company_index(model.state_), companies, row.created_at)
        (lead_subject,) = loaded_subjects(lead_index(model.state_), [lead], row.created_at)
        placed = place(model, company_subjects, [lead_subject])
        by_key = {
            s.key: (c, bool(new))
            for s, c, new in zip(company_subjects, companies, placed.company_new, strict=True)
        }
        ranked = model.rank_companies_for_lead(
            lead_subject.key, list(by_key), limit=limit, state=placed.state, now=profiles.scoring_time()
        )
        items = [
            CompanyScore(
                by_key[item.key][0],
                item.score,
                method(by_key[item.key][1], bool(placed.lead_new[0])),
                tuple(item.reasons),
            )
            for item in ranked
        ]
        return LeadCandidates(lead, row.version, items)
