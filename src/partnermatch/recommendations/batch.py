"""Stored recommendations: every approved company's top leads, computed in batch for a model version.

The batch runs after training (``partnermatch train``, ``partnermatch demo``), when a version without
rows is activated, and on ``partnermatch recommendations refresh``. A company created, approved or
changed gets its rows recomputed, and a created, changed or reopened lead is scored against every
approved company and merged into the lists it makes: the change removes the old rows in its own
transaction and leaves the recomputation to a job after the response (see :func:`refresh_company`,
:func:`refresh_lead`, ``partnermatch.jobs``).

Scoring follows the pipeline's batch path (``RankingPipeline.rank_companies``): features of a chunk of
companies against every open lead at once, the same candidate generation, the learned score for the
candidates; reasons are computed for the stored rows of a whole chunk in one model call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session

from partnermatch import jobs
from partnermatch.clock import local_date
from partnermatch.companies.models import Company
from partnermatch.enums import CompanyStatus
from partnermatch.jobs import Job
from partnermatch.leads.models import Lead
from partnermatch.recommendations.models import ModelVersion
from partnermatch.recommendations.repository import (
    CandidateRepository,
    ListBounds,
    ModelVersionRepository,
    RecommendableLeadRepository,
    StoredRecommendationRepository,
)
from partnermatch.recommendations.service import (
    COLD_START,
    LEARNED,
    NO_STRONG_REASON,
    company_frame,
    external_key,
    lead_frame,
    load_model,
    unknown_lead_profiles,
)
from partnermatch.settings import get_settings

if TYPE_CHECKING:
    from ml.pipeline import RankingPipeline

    from partnermatch.ranking.features import State

# Profile fields that the features read: a change of any other field (name, contact) keeps the rows.
COMPANY_RANKING_FIELDS = frozenset(
    {"sectors", "target_cities", "languages", "description", "employees", "founded", "export_experience"}
)
LEAD_RANKING_FIELDS = frozenset(
    {"title", "kind", "city", "sectors", "description", "languages", "budget_eur", "published_at", "deadline"}
)
# A service's session: the repositories accept either.
Session = AsyncSession | async_scoped_session[AsyncSession]
# Learned scores sit 1e4 above non-candidates in ``learned_block``; stored scores drop that offset.
CANDIDATE_OFFSET = 1e4


@dataclass(frozen=True)
class Subject:
    """A company or lead to score: its key in the model's state, and its profile when it must be encoded
    (unknown to the model, or changed since training)."""

    id: UUID
    key: str
    profile: Company | Lead | None = None


@dataclass
class ServingState:
    state: State
    company_rows: npt.NDArray[np.int64]
    company_new: npt.NDArray[np.bool_]
    lead_rows: npt.NDArray[np.int64]
    lead_new: npt.NDArray[np.bool_]


def serving_state(
    model: RankingPipeline, companies: Sequence[Subject], leads: Sequence[Subject]
) -> ServingState:
    """The fitted state with the given profiles encoded (as ``with_profiles`` does for new ones).

    A known company or lead whose profile is given is encoded again and keeps its behaviour (history,
    popularity) from the fitted state: it was changed, not created.
    """
    fitted = model.state_
    company_index = {k: i for i, k in enumerate(fitted.companies.ids)}
    lead_index = {k: i for i, k in enumerate(fitted.leads.ids)}
    encode_c = [i for i, s in enumerate(companies) if s.profile is not None or s.key not in company_index]
    encode_l = [i for i, s in enumerate(leads) if s.profile is not None or s.key not in lead_index]
    company_rows = np.array([company_index.get(s.key, -1) for s in companies], dtype=np.int64)
    lead_rows = np.array([lead_index.get(s.key, -1) for s in leads], dtype=np.int64)
    company_new = company_rows < 0
    lead_new = lead_rows < 0
    state = fitted
    changes: dict[str, Any] = {}
    if encode_c:
        profiles = [companies[i].profile for i in encode_c]
        added = model.with_profiles(companies=company_frame([p for p in profiles if isinstance(p, Company)]))
        changes.update(_changed_fields(fitted, added))
        old = company_rows[encode_c]
        company_rows[encode_c] = len(fitted.companies.ids) + np.arange(len(encode_c))
        _copy_behaviour(changes, "companies", old, company_rows[encode_c])
    if encode_l:
        profiles = [leads[i].profile for i in encode_l]
        added = model.with_profiles(leads=lead_frame([p for p in profiles if isinstance(p, Lead)]))
        lead_changes = _changed_fields(fitted, added)
        old = lead_rows[encode_l]
        lead_rows[encode_l] = len(fitted.leads.ids) + np.arange(len(encode_l))
        _copy_behaviour(lead_changes, "leads", old, lead_rows[encode_l])
        changes.update(lead_changes)
    if changes:
        state = dataclasses.replace(fitted, **changes)
    return ServingState(state, company_rows, company_new, lead_rows, lead_new)


def _changed_fields(fitted: State, added: State) -> dict[str, Any]:
    # ``with_profiles`` builds new arrays for exactly the fields of the side it extends: the profiles and
    # that side's behaviour. Comparing identities keeps this in step with it, whatever those fields are.
    return {
        f.name: getattr(added, f.name)
        for f in dataclasses.fields(added)
        if getattr(added, f.name) is not getattr(fitted, f.name)
    }


def _copy_behaviour(
    changes: dict[str, Any], side: str, old: npt.NDArray[np.int64], new: npt.NDArray[np.int64]
) -> None:
    known = old >= 0
    if not known.any():
        return
    for name, value in changes.items():
        if name != side and isinstance(value, np.ndarray):
            value[new[known]] = value[old[known]]


@dataclass
class Timings:
    """Seconds per stage of a batch, and how many rows it wrote."""

    load: float = 0.0
    state: float = 0.0
    score: float = 0.0
    reasons: float = 0.0
    write: float = 0.0
    companies: int = 0
    leads: int = 0
    rows: int = 0
    reason_rows: int = 0

    @property
    def total(self) -> float:
        return self.load + self.state + self.score + self.reasons + self.write


@dataclass(frozen=True)
class Ranked:
    """One stored row: ``company`` and ``lead`` are positions in the subjects of :func:`serving_state`."""

    company: int
    lead: int
    ranking_score: float
    probability: float
    truncated: bool
    reasons: list[str]


def rank_and_explain(
    model: RankingPipeline,
    serving: ServingState,
    excluded: set[tuple[int, int]],
    top: int,
    timings: Timings,
) -> list[Ranked]:
    """Each company's top ``top`` leads, best first, with calibrated probability and reasons.

    ``excluded``: (company index, lead index) pairs the company settled. CPU-bound: run it in a thread.
    """
    from ml.pipeline import top_k

    from partnermatch.ranking.features import candidate_mask, chunks, lead_blocks, stack

    state = serving.state
    n_leads = len(serving.lead_rows)
    out: list[Ranked] = []
    if n_leads == 0:
        return out
    by_company: dict[int, list[int]] = {}
    for c, lead in excluded:
        by_company.setdefault(c, []).append(lead)
    size = max(1, int(getattr(model, "chunk_size", 400)))
    for part in chunks(len(serving.company_rows), size):
        started = time.perf_counter()
        indices = np.arange(part.start, part.stop)
        blocks = lead_blocks(state, serving.company_rows[indices], serving.lead_rows)
        mask = np.zeros((len(indices), n_leads), dtype=bool)
        for i, c in enumerate(indices):
            mask[i, by_company.get(int(c), [])] = True
        candidates = candidate_mask(blocks, model.per_source) & ~mask
        score = model.learned_block(blocks, candidates)
        score[mask] = -np.inf
        picked_rows, picked_cols, truncated = [], [], []
        for i in range(len(indices)):
            best = top_k(score[i], top)
            best = best[np.isfinite(score[i][best])]
            picked_rows.append(np.full(len(best), i, dtype=np.int64))
            picked_cols.append(best)
            truncated.append(int((~mask[i]).sum()) > len(best))
        ri = np.concatenate(picked_rows) if picked_rows else np.zeros(0, np.int64)
        ci = np.concatenate(picked_cols) if picked_cols else np.zeros(0, np.int64)
        ranking = score[ri, ci] - CANDIDATE_OFFSET
        X = stack(blocks, ri, ci)
        # Candidates' learned scores are in ``score`` already; a non-candidate is stored only when a
        # company has fewer candidates than ``top``, and then needs its learned score for the probability.
        raw = ranking.astype(np.float64)
        outside = ~candidates[ri, ci]
        if outside.any():
            blend = model.blend_score(blocks)
            raw[outside] = model.score_pairs(X[outside], blend[ri[outside], ci[outside]])
        probability = np.clip(model.probability(raw), 0.0, 1.0)
        timings.score += time.perf_counter() - started
        started = time.perf_counter()
        reasons = explain(
            model, state, X, serving.company_rows[indices][ri], serving.lead_rows[ci], now=time.time()
        )
        timings.reasons += time.perf_counter() - started
        timings.reason_rows += len(ri)
        for k in range(len(ri)):
            i = int(ri[k])
            out.append(
                Ranked(
                    int(indices[i]),
                    int(ci[k]),
                    float(ranking[k]),
                    float(probability[k]),
                    truncated[i],
                    reasons[k],
                )
            )
    return out


def explain(
    model: RankingPipeline,
    state: State,
    X: npt.NDArray[np.float32],
    company_rows: npt.NDArray[np.int64],
    lead_rows: npt.NDArray[np.int64],
    limit: int = 3,
    now: float | None = None,
) -> list[list[str]]:
    """Reasons of many pairs in one model call (see ``ranking.reasons.explain_many``); a pair without a
    strong signal still gets a sentence."""
    from partnermatch.ranking.reasons import explain_many

    reasons = explain_many(model, state, X, company_rows, lead_rows, limit, now)
    return [why or [NO_STRONG_REASON] for why in reasons]


def _method(company_new: bool, lead_new: bool) -> str:
    return COLD_START if company_new or lead_new else LEARNED


@dataclass(frozen=True)
class Inputs:
    companies: list[Subject]
    leads: list[Subject]
    excluded: set[tuple[int, int]]


async def _companies(
    session: Session,
    model: RankingPipeline,
    company_ids: Sequence[UUID] | None,
    changed: Company | None = None,
    among: Collection[UUID] | None = None,
) -> list[Subject]:
    """Approved companies (all, those given, or those ``among`` a large set) as subjects; profiles are
    loaded only for the companies the model does not know, and the changed one comes as it is."""
    known = set(model.state_.companies.ids)
    repository = CandidateRepository(session=session)
    subjects = [
        Subject(cid, external_key(ext, cid))
        for cid, ext in await repository.approved_keys(company_ids)
        if among is None or cid in among
    ]
    profiles: dict[UUID, Company] = {
        c.id: c for c in await repository.by_ids([s.id for s in subjects if s.key not in known])
    }
    if changed is not None:
        profiles[changed.id] = changed
    return [dataclasses.replace(s, profile=profiles.get(s.id)) for s in subjects]


async def _inputs(
    session: Session,
    model: RankingPipeline,
    company_ids: Sequence[UUID] | None,
    changed: Company | None = None,
) -> Inputs:
    """Approved companies and open leads as subjects, and the pairs the companies settled."""
    now = datetime.now(UTC)
    companies = await _companies(session, model, company_ids, changed)
    repository = RecommendableLeadRepository(session=session)
    open_leads = await repository.open_leads(local_date(now), now)
    profiles = await unknown_lead_profiles(repository, model, open_leads)
    leads = [
        Subject(lead.id, external_key(lead.external_id, lead.id), profiles.get(lead.id))
        for lead in open_leads
    ]
    company_at = {s.id: i for i, s in enumerate(companies)}
    lead_at = {s.id: j for j, s in enumerate(leads)}
    settled = await repository.settled_pairs(
        None if len(leads) > 1000 else [s.id for s in leads],
        None if len(companies) > 1000 else [s.id for s in companies],
    )
    excluded = {(company_at[c], lead_at[lead]) for c, lead in settled if c in company_at and lead in lead_at}
    return Inputs(companies, leads, excluded)


async def active_version(session: Session) -> ModelVersion | None:
    return await ModelVersionRepository(session=session).active()


@dataclass
class Prepared:
    """What a batch has read: the model, the subjects, and the state they are scored in."""

    model: RankingPipeline
    inputs: Inputs
    serving: ServingState
    timings: Timings


async def prepare(
    session: Session,
    version: ModelVersion,
    company_ids: Sequence[UUID] | None,
    changed: Company | None = None,
) -> Prepared:
    timings = Timings()
    started = time.perf_counter()
    model = await asyncio.to_thread(load_model, version)
    inputs = await _inputs(session, model, company_ids, changed)
    timings.load = time.perf_counter() - started
    timings.companies, timings.leads = len(inputs.companies), len(inputs.leads)
    begun = time.perf_counter()
    # In the event loop: encoding reads the ORM profiles, which must not load anything from another thread.
    serving = serving_state(model, inputs.companies, inputs.leads)
    timings.state = time.perf_counter() - begun
    return Prepared(model, inputs, serving, timings)


async def rank_prepared(prepared: Prepared, version: ModelVersion, top: int) -> list[dict[str, Any]]:
    """The stored rows of the prepared companies (CPU-bound work in a thread, outside any transaction)."""
    serving, inputs = prepared.serving, prepared.inputs
    ranked = await asyncio.to_thread(
        rank_and_explain, prepared.model, serving, inputs.excluded, top, prepared.timings
    )
    now = datetime.now(UTC)
    return [
        {
            "model_version_id": version.id,
            "company_id": inputs.companies[r.company].id,
            "lead_id": inputs.leads[r.lead].id,
            "ranking_score": r.ranking_score,
            "score": r.probability,
            "method": _method(bool(serving.company_new[r.company]), bool(serving.lead_new[r.lead])),
            "reasons": r.reasons,
            "truncated": r.truncated,
            "computed_at": now,
        }
        for r in ranked
    ]


async def store(
    session: Session,
    version: ModelVersion,
    company_ids: Sequence[UUID] | None = None,
    *,
    top: int | None = None,
    changed: Company | None = None,
) -> Timings:
    """Compute and store the top ``top`` leads of the approved companies (all, or those of ``company_ids``)
    for ``version``, replacing that version's rows of those companies. Does not commit."""
    prepared = await prepare(session, version, company_ids, changed)
    rows = await rank_prepared(prepared, version, top or get_settings().stored_recommendations)
    started = time.perf_counter()
    await StoredRecommendationRepository(session=session).replace(version.id, company_ids, rows)
    timings = prepared.timings
    timings.write = time.perf_counter() - started
    timings.rows = len(rows)
    return timings


async def store_if_missing(session: Session, version: ModelVersion) -> Timings | None:
    """The batch for a version that has no stored rows yet (activated, rolled back to)."""
    if await StoredRecommendationRepository(session=session).has_rows(version.id):
        return None
    return await store(session, version)


COMPANY_JOB = "recommendations.company"
LEAD_JOB = "recommendations.lead"


async def refresh_company(session: Session, company: Company) -> None:
    """After a company is created, approved or changed: its stored rows go now, in the change's
    transaction, and an approved company's list is recomputed after the commit (:func:`recompute_company`).

    Meanwhile the endpoint scores the company on demand, so it never serves rows of an old profile; the
    person who made the change does not wait for the recomputation (seconds at 10,000 companies)."""
    await session.flush()
    await StoredRecommendationRepository(session=session).forget_company(company.id)
    if company.status == CompanyStatus.APPROVED.value and await active_version(session) is not None:
        jobs.after_commit(
            session, Job((COMPANY_JOB, str(company.id)), partial(recompute_company, company_id=company.id))
        )


async def refresh_lead(session: Session, lead: Lead) -> None:
    """After a lead is created, changed, reopened or closed: its stored rows go now (of every version: an
    older one would serve its old profile after a rollback), and a recommendable lead is merged into the
    lists it makes after the commit (:func:`merge_lead`)."""
    await session.flush()
    await StoredRecommendationRepository(session=session).forget_lead(lead.id)
    if await active_version(session) is not None:
        jobs.after_commit(session, Job((LEAD_JOB, str(lead.id)), partial(merge_lead, lead_id=lead.id)))


async def recompute_company(
    sessions: jobs.SessionFactory, company_id: UUID, *, top: int | None = None
) -> None:
    """Job: an approved company's list for the active version, from its current profile (encoded again;
    its history stays what the model knows). Reads, ranks outside any transaction, then writes briefly."""
    async with sessions() as session:
        current = await _approved_company(session, company_id)
        if current is None:
            return
        version, company = current
        seen = _stamp(current)
        prepared = await prepare(session, version, [company_id], changed=company)
    rows = await rank_prepared(prepared, version, top or get_settings().stored_recommendations)
    async with sessions.begin() as session:
        stored = StoredRecommendationRepository(session=session)
        await stored.lock(f"{COMPANY_JOB}:{company_id}")
        if _stamp(await _approved_company(session, company_id)) != seen:
            return  # changed again (or the model was switched): that change's own job recomputes the list
        await stored.replace(version.id, [company_id], rows)


async def merge_lead(sessions: jobs.SessionFactory, lead_id: UUID, *, top: int | None = None) -> None:
    """Job: score a recommendable lead against every approved company with a stored list and merge it
    into each list where it makes the top ``top``. A company without rows is scored on demand, which sees
    this lead anyway. Reads, scores outside any transaction, then writes briefly."""
    top = top or get_settings().stored_recommendations
    async with sessions() as session:
        current = await _recommendable_lead(session, lead_id)
        if current is None:
            return
        version, lead = current
        seen = _stamp(current)
        bounds = await StoredRecommendationRepository(session=session).bounds(version.id)
        if not bounds:
            return
        model = await asyncio.to_thread(load_model, version)
        settled = {c for c, _ in await RecommendableLeadRepository(session=session).settled_pairs([lead_id])}
        companies = await _companies(session, model, None, among=bounds.keys() - settled)
        if not companies:
            return
        subject = Subject(lead.id, external_key(lead.external_id, lead.id), lead)
        serving = serving_state(model, companies, [subject])
    merged, cut, overflow = await asyncio.to_thread(_merge, model, serving, companies, bounds, top)
    computed_at = datetime.now(UTC)
    async with sessions.begin() as session:
        stored = StoredRecommendationRepository(session=session)
        await stored.lock(f"{LEAD_JOB}:{lead_id}")
        if _stamp(await _recommendable_lead(session, lead_id)) != seen:
            return  # changed, closed or the model switched since: a later job (or none) decides
        await stored.forget_lead(lead_id)
        await stored.insert(
            [
                {
                    "model_version_id": version.id,
                    "company_id": companies[m.company].id,
                    "lead_id": lead_id,
                    "ranking_score": m.ranking_score,
                    "score": m.probability,
                    "method": _method(bool(serving.company_new[m.company]), bool(serving.lead_new[0])),
                    "reasons": m.reasons,
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


def _merge(
    model: RankingPipeline,
    serving: ServingState,
    companies: Sequence[Subject],
    bounds: dict[UUID, ListBounds],
    top: int,
) -> tuple[list[Merge], list[UUID], list[tuple[UUID, float]]]:
    raw, X = score_lead(model, serving)
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
    reasons = explain(
        model,
        serving.state,
        X[index],
        serving.company_rows[index],
        np.repeat(serving.lead_rows, len(index)),
        now=time.time(),
    )
    rows = [Merge(i, float(raw[i]), float(probability[i]), reasons[k]) for k, i in enumerate(merged)]
    return rows, cut, overflow


@dataclass(frozen=True)
class Merge:
    company: int
    ranking_score: float
    probability: float
    reasons: list[str]


def score_lead(
    model: RankingPipeline, serving: ServingState
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
    """Learned scores of the one lead for every company (each as a candidate), and the feature rows."""
    from partnermatch.ranking.features import lead_blocks, stack

    blocks = lead_blocks(serving.state, serving.company_rows, serving.lead_rows)
    rows = np.arange(len(serving.company_rows))
    X = stack(blocks, rows, np.zeros(len(rows), dtype=np.int64))
    raw = model.score_pairs(X, model.blend_score(blocks)[:, 0])
    return np.asarray(raw, dtype=np.float64), X
