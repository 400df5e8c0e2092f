"""Stored recommendations: every approved company's top leads, computed in batch for a model version.

The batch runs after training (``partnermatch train``, ``partnermatch demo``), when a version without
rows is activated, and on ``partnermatch recommendations refresh``; a company or lead that changes gets
its rows refreshed by the jobs of ``refresh.py``. Scoring is the model's batch path
(``RankingModel.score_in_chunks``): features of a chunk of companies against every open lead at once, the
same candidate generation and exclusions as on demand, the learned score for the candidates; the reasons of
a whole chunk's stored rows come from one model call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import numpy as np
import scipy.sparse as sp

from partnermatch.clock import local_date
from partnermatch.db import refresh_statistics
from partnermatch.ranking.features import company_index, lead_index, stack
from partnermatch.ranking.model import CANDIDATE_OFFSET, RankingModel, ScoredChunk
from partnermatch.ranking.reasons import Reason, explain_many
from partnermatch.recommendations import profiles
from partnermatch.recommendations.models import ModelVersion
from partnermatch.recommendations.profiles import Placed, Subject, method, place, subjects
from partnermatch.recommendations.registry import Session, load_model
from partnermatch.recommendations.repository import (
    CandidateRepository,
    ModelVersionRepository,
    RecommendableLeadRepository,
    StoredRecommendationRepository,
)


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

    def describe(self, version: str) -> str:
        return (
            f"stored {self.rows:,} recommendations of model {version} for {self.companies:,} companies and "
            f"{self.leads:,} open leads in {self.total:.1f} s (load {self.load:.1f} s, profiles "
            f"{self.state:.1f} s, scoring {self.score:.1f} s, reasons {self.reasons:.1f} s for "
            f"{self.reason_rows:,} rows, writing {self.write:.1f} s)"
        )


@dataclass(frozen=True)
class Ranked:
    """One stored row: ``company`` and ``lead`` are positions in the subjects that were placed."""

    company: int
    lead: int
    ranking_score: float
    probability: float
    truncated: bool
    reasons: list[Reason]


def rank_and_explain(
    model: RankingModel, placed: Placed, excluded: set[tuple[int, int]], top: int, timings: Timings
) -> list[Ranked]:
    """Each company's top ``top`` leads, best first, with calibrated probability and reasons.

    ``excluded``: (company position, lead position) pairs the company settled. CPU-bound: run it in a thread.
    """
    n_companies, n_leads = len(placed.company_rows), len(placed.lead_rows)
    out: list[Ranked] = []
    if n_leads == 0 or n_companies == 0:
        return out
    pairs = np.array(sorted(excluded), dtype=np.int64).reshape(-1, 2)
    settled = sp.csr_matrix(
        (np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n_companies, n_leads)
    )
    started = [time.perf_counter()]
    now = profiles.scoring_time()

    def keep(chunk: ScoredChunk) -> None:
        indices = np.arange(chunk.part.start, chunk.part.stop)
        ri = np.concatenate([np.full(len(best), i, dtype=np.int64) for i, best in enumerate(chunk.top)])
        ci = np.concatenate(chunk.top).astype(np.int64)
        truncated = [int((~chunk.excluded[i]).sum()) > len(best) for i, best in enumerate(chunk.top)]
        ranking = chunk.score[ri, ci] - CANDIDATE_OFFSET
        X = stack(chunk.blocks, ri, ci)
        # Candidates' learned scores are in ``score`` already; a non-candidate is stored only when a
        # company has fewer candidates than ``top``, and then needs its learned score for the probability.
        raw = ranking.astype(np.float64)
        outside = ~chunk.candidates[ri, ci]
        if outside.any():
            blend = model.blend_score(chunk.blocks)
            raw[outside] = model.score_pairs(X[outside], blend[ri[outside], ci[outside]])
        probability = np.clip(model.probability(raw), 0.0, 1.0)
        scored = time.perf_counter()
        timings.score += scored - started[0]
        reasons = explain_many(
            model, placed.state, X, placed.company_rows[indices][ri], placed.lead_rows[ci], now=now
        )
        started[0] = time.perf_counter()
        timings.reasons += started[0] - scored
        timings.reason_rows += len(ri)
        out.extend(
            Ranked(
                int(indices[i]),
                int(j),
                float(ranking[k]),
                float(probability[k]),
                truncated[i],
                reasons[k],
            )
            for k, (i, j) in enumerate(zip(ri.tolist(), ci.tolist(), strict=True))
        )

    model.score_in_chunks(placed.state, placed.company_rows, placed.lead_rows, top, keep, settled, now)
    return out


@dataclass(frozen=True)
class Inputs:
    companies: list[Subject]
    leads: list[Subject]
    excluded: set[tuple[int, int]]


async def approved_subjects(
    session: Session,
    model: RankingModel,
    version: ModelVersion,
    company_ids: Sequence[UUID] | None = None,
    among: Collection[UUID] | None = None,
) -> list[Subject]:
    """Approved companies (all, those given, or those ``among`` a large set) as subjects; profiles are
    loaded only for the companies the model needs them of."""
    repository = CandidateRepository(session=session)
    keys = [k for k in await repository.approved_keys(company_ids) if among is None or k.id in among]
    return await subjects(company_index(model.state_), keys, version.created_at, repository.by_ids)


async def _inputs(
    session: Session, model: RankingModel, version: ModelVersion, company_ids: Sequence[UUID] | None
) -> Inputs:
    """Approved companies and open leads as subjects, and the pairs the companies settled."""
    now = datetime.now(UTC)
    companies = await approved_subjects(session, model, version, company_ids)
    repository = RecommendableLeadRepository(session=session)
    open_leads = await repository.open_leads(local_date(now), now)
    leads = await subjects(lead_index(model.state_), open_leads, version.created_at, repository.profiles)
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

    model: RankingModel
    inputs: Inputs
    placed: Placed
    timings: Timings


async def prepare(session: Session, version: ModelVersion, company_ids: Sequence[UUID] | None) -> Prepared:
    timings = Timings()
    started = time.perf_counter()
    model = await asyncio.to_thread(load_model, version)
    inputs = await _inputs(session, model, version, company_ids)
    timings.load = time.perf_counter() - started
    timings.companies, timings.leads = len(inputs.companies), len(inputs.leads)
    begun = time.perf_counter()
    # In the event loop: encoding reads the ORM profiles, which must not load anything from another thread.
    placed = place(model, inputs.companies, inputs.leads)
    timings.state = time.perf_counter() - begun
    return Prepared(model, inputs, placed, timings)


async def rank_prepared(prepared: Prepared, version: ModelVersion, top: int) -> list[dict[str, Any]]:
    """The stored rows of the prepared companies (CPU-bound work in a thread, outside any transaction)."""
    placed, inputs = prepared.placed, prepared.inputs
    ranked = await asyncio.to_thread(
        rank_and_explain, prepared.model, placed, inputs.excluded, top, prepared.timings
    )
    now = datetime.now(UTC)
    return [
        {
            "model_version_id": version.id,
            "company_id": inputs.companies[r.company].id,
            "lead_id": inputs.leads[r.lead].id,
            "ranking_score": r.ranking_score,
            "score": r.probability,
            "method": method(bool(placed.company_new[r.company]), bool(placed.lead_new[r.lead])),
            "reasons": [reason.stored() for reason in r.reasons],
            "truncated": r.truncated,
            "computed_at": now,
        }
        for r in ranked
    ]


async def store(
    session: Session, version: ModelVersion, top: int, company_ids: Sequence[UUID] | None = None
) -> Timings:
    """Compute and store the top ``top`` leads of the approved companies (all, or those of ``company_ids``)
    for ``version``, replacing that version's rows of those companies. Does not commit."""
    prepared = await prepare(session, version, company_ids)
    rows = await rank_prepared(prepared, version, top)
    return await write(session, version, company_ids, rows, prepared.timings)


async def write(
    session: Session,
    version: ModelVersion,
    company_ids: Sequence[UUID] | None,
    rows: Sequence[dict[str, Any]],
    timings: Timings,
) -> Timings:
    """Store the rows that :func:`rank_prepared` computed, replacing ``version``'s rows of ``company_ids``
    (or all); ``timings`` (the prepared batch's) gets the write. Does not commit."""
    started = time.perf_counter()
    await StoredRecommendationRepository(session=session).replace(version.id, company_ids, rows)
    if company_ids is None:
        await refresh_statistics(session)  # a whole version's rows are new to the planner
    timings.write = time.perf_counter() - started
    timings.rows = len(rows)
    return timings


async def store_if_missing(session: Session, version: ModelVersion, top: int) -> Timings | None:
    """The batch for a version that has no stored rows yet (activated, rolled back to)."""
    if await StoredRecommendationRepository(session=session).has_rows(version.id):
        return None
    return await store(session, version, top)
