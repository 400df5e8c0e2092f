"""Keeping stored recommendations current when companies and leads change.

The subscribers (wired in ``app.py``) run in the transaction of the change: the rows it makes stale go at
once, and the recomputation is a job after the commit (``jobs.after_commit``). Meanwhile the endpoint
scores the company on demand, so it never serves rows of an old profile, and the person who made the
change does not wait for the recomputation (seconds at 10,000 companies).

A job takes ids, reads in one short session, scores outside any transaction (on SQLite a transaction
holds the one write lock), writes in another, and writes nothing when a later change of the same company
or lead, or a model switch, overtook it: that change's own job decides.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import numpy as np
import numpy.typing as npt

from partnermatch import jobs
from partnermatch.clock import local_date
from partnermatch.companies.events import CompanyProfileChanged, CompanyRegistered, CompanyStatusChanged
from partnermatch.companies.models import Company
from partnermatch.enums import CompanyStatus
from partnermatch.jobs import Job, JobContext
from partnermatch.leads.events import LeadCreated, LeadProfileChanged, LeadStatusChanged
from partnermatch.leads.models import Lead
from partnermatch.ranking.features import lead_blocks, lead_index, stack
from partnermatch.ranking.model import RankingModel
from partnermatch.ranking.reasons import Reason, explain_many
from partnermatch.recommendations import profiles
from partnermatch.recommendations.batch import active_version, approved_subjects, prepare, rank_prepared
from partnermatch.recommendations.models import ModelVersion
from partnermatch.recommendations.profiles import Placed, Subject, loaded_subjects, method, place
from partnermatch.recommendations.registry import Session, load_model
from partnermatch.recommendations.repository import (
    CandidateRepository,
    ListBounds,
    RecommendableLeadRepository,
    StoredRecommendationRepository,
)

# Profile fields that the features read: a change of any other field (name, contact) keeps the rows.
COMPANY_RANKING_FIELDS = frozenset(
    {"sectors", "target_cities", "languages", "description", "employees", "founded", "export_experience"}
)
LEAD_RANKING_FIELDS = frozenset(
    {"title", "kind", "city", "sectors", "description", "languages", "budget_eur", "published_at", "deadline"}
)
COMPANY_JOB = "recommendations.company"
LEAD_JOB = "recommendations.lead"


async def company_registered(session: Session, event: CompanyRegistered) -> None:
    if event.status is CompanyStatus.APPROVED:
        await refresh_company(session, event.company_id, approved=True)


async def company_profile_changed(session: Session, event: CompanyProfileChanged) -> None:
    if event.status is CompanyStatus.APPROVED and event.fields & COMPANY_RANKING_FIELDS:
        await refresh_company(session, event.company_id, approved=True)


async def company_status_changed(session: Session, event: CompanyStatusChanged) -> None:
    await refresh_company(session, event.company_id, approved=event.status is CompanyStatus.APPROVED)


async def lead_created(session: Session, event: LeadCreated) -> None:
    await refresh_lead(session, event.lead_id)


async def lead_profile_changed(session: Session, event: LeadProfileChanged) -> None:
    if event.fields & LEAD_RANKING_FIELDS:
        await refresh_lead(session, event.lead_id)


async def lead_status_changed(session: Session, event: LeadStatusChanged) -> None:
    await refresh_lead(session, event.lead_id)


async def refresh_company(session: Session, company_id: UUID, *, approved: bool) -> None:
    """The company's stored rows go now; an approved company's list is recomputed after the commit
    (:func:`recompute_company`)."""
    await session.flush()
    await StoredRecommendationRepository(session=session).forget_company(company_id)
    if approved and await active_version(session) is not None:
        jobs.after_commit(session, Job.of(recompute_company, company_id=company_id))


async def refresh_lead(session: Session, lead_id: UUID) -> None:
    """The lead's stored rows go now (of every version: an older one would serve its old profile after a
    rollback); a recommendable lead is merged into the lists it makes after the commit (:func:`merge_lead`)."""
    await session.flush()
    await StoredRecommendationRepository(session=session).forget_lead(lead_id)
    if await active_version(session) is not None:
        jobs.after_commit(session, Job.of(merge_lead, lead_id=lead_id))


@jobs.job(COMPANY_JOB)
async def recompute_company(context: JobContext, *, company_id: UUID) -> None:
    """Job: an approved company's list for the active version, from its current profile (its history stays
    what the model knows)."""
    top = context.settings.stored_recommendations
    async with context.sessions() as session:
        current = await _approved_company(session, company_id)
        if current is None:
            return
        version, _company = current
        seen = _stamp(current)
        prepared = await prepare(session, version, [company_id])
    rows = await rank_prepared(prepared, version, top)
    async with context.sessions.begin() as session:
        stored = StoredRecommendationRepository(session=session)
        await stored.lock(f"{COMPANY_JOB}:{company_id}")
        if _stamp(await _approved_company(session, company_id)) != seen:
            return
        await stored.replace(version.id, [company_id], rows)


@jobs.job(LEAD_JOB)
async def merge_lead(context: JobContext, *, lead_id: UUID) -> None:
    """Job: score a recommendable lead against every approved company with a stored list and merge it into
    each list where it makes the top ``PARTNERMATCH_STORED_RECOMMENDATIONS``. A company without rows is
    scored on demand, which sees this lead anyway."""
    top = context.settings.stored_recommendations
    async with context.sessions() as session:
        current = await _recommendable_lead(session, lead_id)
        if current is None:
            return
        version, lead = current
        seen = _stamp(current)
        stored = StoredRecommendationRepository(session=session)
        bounds = await stored.bounds(version.id)
        if not bounds:
            return
        model = await asyncio.to_thread(load_model, version)
        settled = {c for c, _ in await RecommendableLeadRepository(session=session).settled_pairs([lead_id])}
        companies = await approved_subjects(session, model, version, among=bounds.keys() - settled)
        if not companies:
            return
        (subject,) = loaded_subjects(lead_index(model.state_), [lead], version.created_at)
        placed = place(model, companies, [subject])
    merged, cut, overflow = await asyncio.to_thread(_merge, model, placed, companies, bounds, top)
    computed_at = datetime.now(UTC)
    async with context.sessions.begin() as session:
        stored = StoredRecommendationRepository(session=session)
        await stored.lock(f"{LEAD_JOB}:{lead_id}")
        if _stamp(await _recommendable_lead(session, lead_id)) != seen:
            return
        await stored.forget_lead(lead_id)
        await stored.insert(
            [
                {
                    "model_version_id": version.id,
                    "company_id": companies[m.company].id,
                    "lead_id": lead_id,
                    "ranking_score": m.ranking_score,
                    "score": m.probability,
                    "method": method(bool(placed.company_new[m.company]), bool(placed.lead_new[0])),
                    "reasons": [r.stored() for r in m.reasons],
                    "truncated": bounds[companies[m.company].id].truncated,
                    "computed_at": computed_at,
                }
                for m in merged
            ]
        )
        await stored.drop_lowest(version.id, overflow)
        await stored.mark_truncated(version.id, cut)


async def _approved_company(session: Session, company_id: UUID) -> tuple[ModelVersion, Company] | None:
    """The active version and the company, while both exist and the company is approved."""
    version = await active_version(session)
    found = await CandidateRepository(session=session).by_ids([company_id])
    if version is None or not found or found[0].status != CompanyStatus.APPROVED.value:
        return None
    return version, found[0]


async def _recommendable_lead(session: Session, lead_id: UUID) -> tuple[ModelVersion, Lead] | None:
    """The active version and the lead, while both exist and the lead is recommendable."""
    version = await active_version(session)
    now = datetime.now(UTC)
    if version is None or not await RecommendableLeadRepository(session=session).is_recommendable(
        lead_id, local_date(now), now
    ):
        return None
    lead = await CandidateRepository(session=session).lead(lead_id)
    return None if lead is None else (version, lead)


def _stamp(current: tuple[ModelVersion, Company | Lead] | None) -> tuple[int, datetime] | None:
    """What a job saw: a later change of the row, or another active version, makes its result stale."""
    return None if current is None else (current[0].id, current[1].updated_at)


@dataclass(frozen=True)
class Merge:
    company: int
    ranking_score: float
    probability: float
    reasons: list[Reason]


def _merge(
    model: RankingModel,
    placed: Placed,
    companies: Sequence[Subject],
    bounds: dict[UUID, ListBounds],
    top: int,
) -> tuple[list[Merge], list[UUID], list[tuple[UUID, float]]]:
    now = profiles.scoring_time()
    raw, X = score_lead(model, placed, now)
    probability = np.clip(model.probability(raw), 0.0, 1.0)
    merged, cut, overflow = [], [], []
    for i, s in enumerate(companies):
        b = bounds[s.id]
        # A cut list keeps its length: the lead enters above its lowest row, which leaves. A complete
        # list takes the lead, up to ``top`` rows; beyond, it is cut.
        if b.truncated:
            if raw[i] > b.lowest:
                merged.append(i)
                overflow.append((s.id, b.lowest))
        elif b.count < top:
            merged.append(i)
        elif raw[i] > b.lowest:
            merged.append(i)
            overflow.append((s.id, b.lowest))
        else:
            cut.append(s.id)
    index = np.array(merged, dtype=np.int64)
    reasons = explain_many(
        model,
        placed.state,
        X[index],
        placed.company_rows[index],
        np.repeat(placed.lead_rows, len(index)),
        now=now,
    )
    rows = [Merge(i, float(raw[i]), float(probability[i]), reasons[k]) for k, i in enumerate(merged)]
    return rows, cut, overflow


def score_lead(
    model: RankingModel, placed: Placed, at: float | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
    """Learned scores of the one lead for every company (each as a candidate), and the feature rows, with
    time features as of ``at`` (the time of scoring; default the state's time)."""
    blocks = lead_blocks(placed.state, placed.company_rows, placed.lead_rows, at)
    rows = np.arange(len(placed.company_rows))
    X = stack(blocks, rows, np.zeros(len(rows), dtype=np.int64))
    raw = model.score_pairs(X, model.blend_score(blocks)[:, 0])
    return np.asarray(raw, dtype=np.float64), X
