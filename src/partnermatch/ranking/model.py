"""The fitted ranking model: what an artifact holds and what serving, the stored batch and evaluation call.

``ml/`` fits it (``ml.training.RankingTrainer``) and never needs to be imported to use it: unpickling an
artifact loads this module, the estimators and the feature code, all in this package.

Scores: every pair's features come from :func:`~partnermatch.ranking.features.lead_blocks`; the learned
score is the mean of two boosted rankers (with and without inverse-propensity weights) plus the tuned
blend of a few features; a monotone map turns it into a probability of interest. Only a company's
candidates (the union of the top leads by sector, text, history, city and popularity) get the learned
score; the others rank after them by the blend.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.isotonic import IsotonicRegression

from partnermatch.ranking.data import Companies, Leads
from partnermatch.ranking.estimators import LeadRanker, MissionRanker, MonotoneCalibrator
from partnermatch.ranking.features import (
    COMPANY_FIELDS,
    FEATURE_NAMES,
    LEAD_FIELDS,
    CompanySide,
    LeadSide,
    SectorCodes,
    State,
    TextModel,
    Vocabulary,
    candidate_mask,
    chunks,
    company_history_of,
    company_index,
    derived_values,
    encode_companies,
    encode_leads,
    lead_blocks,
    lead_history_of,
    lead_index,
    mission_features,
    new_company_state,
    stack,
)
from partnermatch.ranking.reasons import Reason, explain_many

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]

# The features of the hand-weighted blend that is tuned in training and added to the learned score.
BLEND_FEATURES = (
    "nace_depth",
    "affinity_max",
    "tfidf_word",
    "tfidf_char",
    "topic_cosine",
    "city_target",
    "lead_positives",
    "lead_age_days",
)
# Learned scores of candidates sit this far above the blend scores of non-candidates in a block.
CANDIDATE_OFFSET = 1e4


@dataclass(frozen=True)
class RankedItem:
    """One entry of a served list: the id of the lead (or company) in the model's state, best first."""

    key: str
    rank: int
    score: float
    """Calibrated probability of interest."""
    reasons: list[Reason]


@dataclass(frozen=True)
class ScoredChunk:
    """One chunk of the batch path: companies ``part`` (positions in the rows given) against every lead."""

    part: slice
    blocks: dict[str, F32]
    candidates: Bool
    excluded: Bool
    score: F64
    """Learned scores of candidates (offset by ``CANDIDATE_OFFSET``), the blend elsewhere, -inf where excluded."""
    top: list[I64]
    """Per company of the chunk: its best ``top`` lead positions, best first (excluded ones never)."""


class RankingModel:
    """The fitted lead and mission ranker with the feature state it scores in.

    ``per_source`` and ``chunk_size`` are the parameters serving needs (candidates per source, companies
    per block); everything ending in ``_`` was learned by the trainer.
    """

    cutoff_: float
    validation_cutoff_: float
    vocabulary_: Vocabulary
    text_: TextModel
    state_: State
    """Features as of ``cutoff_``: profiles of every company and lead, behaviour before the cutoff."""
    propensity_: F64
    ranker_ipw_: LeadRanker
    ranker_grade_: LeadRanker
    medians_: F32
    """Per feature, the median over negatives: a typical non-match, which reasons compare against."""
    blend_: F64
    blend_mean_: F64
    blend_scale_: F64
    blend_weight_: float
    calibrator_: MonotoneCalibrator
    mission_ranker_: MissionRanker | None
    city_names_: dict[str, str]
    city_languages_: dict[str, list[str]]
    feature_names_: list[str]
    holdout_metrics_: dict[str, Any]
    selection_: dict[str, float]
    parameters_: dict[str, Any]
    """The trainer's parameters, for the artifact's record."""
    fit_seconds_: float
    retrieval_: F64 | None = None
    """Per feature (``FEATURE_NAMES``), the weight of the learned first stage: a linear score over every
    cell of a block whose best ``retrieval_k`` leads join the candidates. None (an older artifact): none."""
    retrieval_k: int = 0
    isotonic_: IsotonicRegression | None = None
    """Plain isotonic regression fitted beside ``calibrator_``, kept for the evaluation's comparison."""

    def __init__(self, per_source: int, chunk_size: int, retrieval_k: int = 0) -> None:
        self.per_source = per_source
        self.chunk_size = chunk_size
        self.retrieval_k = retrieval_k

    # ----------------------------------------------------------------- scores

    def blend_score(self, blocks: Mapping[str, F32]) -> F32:
        total = np.zeros(blocks["nace_depth"].shape, dtype=np.float32)
        for k, name in enumerate(BLEND_FEATURES):
            if self.blend_[k]:
                value = (np.nan_to_num(blocks[name]) - self.blend_mean_[k]) / self.blend_scale_[k]
                total += np.float32(self.blend_[k]) * value
        return total

    def blend_rows(self, X: F32) -> F64:
        """The blend of feature rows (as :meth:`blend_score` of the blocks they come from)."""
        idx = [FEATURE_NAMES.index(f) for f in BLEND_FEATURES]
        z = (np.nan_to_num(X[:, idx]) - self.blend_mean_) / self.blend_scale_
        return np.asarray(z @ self.blend_, dtype=np.float64)

    def score_pairs(self, X: F32, blend: npt.ArrayLike, variant: str = "final") -> F64:
        """Raw ranking score of feature rows: ``final`` (both models and the blend), ``ipw`` or ``grade``."""
        if variant == "ipw":
            return self.ranker_ipw_.decision_function(X)
        if variant == "grade":
            return self.ranker_grade_.decision_function(X)
        both = 0.5 * (self.ranker_ipw_.decision_function(X) + self.ranker_grade_.decision_function(X))
        return np.asarray(both + self.blend_weight_ * np.asarray(blend), dtype=np.float64)

    def probability(self, raw: npt.ArrayLike) -> F64:
        """Calibrated probability of interest for final raw scores."""
        return np.asarray(self.calibrator_.predict(np.asarray(raw)), dtype=np.float64)

    def retrieval_score(self, blocks: Mapping[str, F32]) -> F32:
        """The learned first stage's score of every cell of a block (missing features count as zero)."""
        total = np.zeros(blocks["nace_depth"].shape, dtype=np.float32)
        if self.retrieval_ is not None:
            for name, weight in zip(FEATURE_NAMES, self.retrieval_, strict=True):
                if weight:
                    total += np.float32(weight) * np.nan_to_num(blocks[name])
        return total

    def candidates(self, blocks: Mapping[str, F32], excluded: Bool | None = None) -> Bool:
        """Union of the hand-made sources' top leads and the learned first stage's best ``retrieval_k``
        (those among leads not excluded, so that exclusions do not use up its places)."""
        mask = candidate_mask(dict(blocks), self.per_source)
        nl = mask.shape[1]
        if self.retrieval_ is not None and 0 < self.retrieval_k < nl:
            score = self.retrieval_score(blocks)
            if excluded is not None:
                score = np.where(excluded, -np.inf, score)
            top = np.argpartition(-score, self.retrieval_k - 1, axis=1)[:, : self.retrieval_k]
            mask[np.arange(mask.shape[0])[:, None], top] = True
        return mask if excluded is None else mask & ~excluded

    def learned_block(self, blocks: Mapping[str, F32], candidates: Bool, variant: str = "final") -> F64:
        """Learned scores for the candidates; other cells rank after them by the blend."""
        blend = self.blend_score(blocks)
        score = blend.astype(np.float64) - CANDIDATE_OFFSET
        ri, ci = np.nonzero(candidates)
        if len(ri):
            score[ri, ci] = (
                self.score_pairs(stack(dict(blocks), ri, ci), blend[ri, ci], variant) + CANDIDATE_OFFSET
            )
        return score

    # ----------------------------------------------------------------- batch path

    def score_in_chunks(
        self,
        state: State,
        company_rows: I64,
        lead_rows: I64,
        top: int,
        visit: Callable[[ScoredChunk], None],
        excluded: Any | None = None,
        at: float | None = None,
    ) -> None:
        """Every company's best ``top`` of ``lead_rows``, chunk by chunk, each chunk handed to ``visit``: the
        stored batch, the evaluation and the benchmark's full recompute all rank this way. ``excluded``: a
        sparse (companies x leads) matrix, in the positions of the rows given, of pairs never to recommend
        (settled, seen before). A chunk is gone before the next is computed: its blocks hold 30 features of
        400 companies x every open lead (130 MB at 2,700 open leads), so no caller may keep one alive.
        ``at``: the time of scoring (time features; default the state's time)."""
        company_rows = np.asarray(company_rows, dtype=np.int64)
        lead_rows = np.asarray(lead_rows, dtype=np.int64)
        for part in chunks(len(company_rows), max(1, self.chunk_size)):
            visit(self._scored_chunk(state, company_rows, lead_rows, part, top, excluded, at))

    def _scored_chunk(
        self,
        state: State,
        company_rows: I64,
        lead_rows: I64,
        part: slice,
        top: int,
        excluded: Any | None,
        at: float | None,
    ) -> ScoredChunk:
        blocks = lead_blocks(state, company_rows[part], lead_rows, at)
        if excluded is None:
            mask = np.zeros((part.stop - part.start, len(lead_rows)), dtype=bool)
        else:
            mask = np.asarray(excluded[part].toarray() > 0)
        candidates = self.candidates(blocks, mask)
        score = self.learned_block(blocks, candidates)
        score[mask] = -np.inf
        best = [top_k(row, top) for row in score]
        best = [b[np.isfinite(row[b])] for b, row in zip(best, score, strict=True)]
        return ScoredChunk(part, blocks, candidates, mask, score, best)

    # ----------------------------------------------------------------- serving

    def rank(
        self,
        company: str,
        leads: Sequence[str],
        limit: int = 10,
        reasons: int = 3,
        state: State | None = None,
        now: float | None = None,
    ) -> list[RankedItem]:
        """The given leads' candidates for one company scored, best first, each with a calibrated probability
        and reasons, with time features (lead age, days to the deadline) as of ``now`` (default: the state's
        time). Both must be known to ``state`` (default: the fitted state; profiles the model lacks:
        :meth:`with_profiles`)."""
        state, company_row = _company_row(self.state_ if state is None else state, company)
        index = lead_index(state)
        lead_rows = np.array([index[lead_id] for lead_id in leads], dtype=np.int64)
        if not len(lead_rows):
            return []
        blocks = lead_blocks(state, np.array([company_row]), lead_rows, now)
        # Only the company's candidates are scored, as in training, evaluation and the batch (where
        # non-candidates only ever fill in after every candidate): scoring every open lead with both boosted
        # models took most of the latency budget. Candidates are chosen among ``leads``, which the caller has
        # filtered already (city, kind, exclusions), so filters apply before the cut. With fewer candidates
        # than ``limit``, every given lead is scored.
        cols = np.flatnonzero(self.candidates(blocks)[0])
        if len(cols) < limit:
            cols = np.arange(len(lead_rows))
        pairs = np.zeros(len(cols), dtype=np.int64)
        picked = self._top_explained(
            state, blocks, (pairs, cols), (np.array([company_row]), lead_rows), limit, reasons, now
        )
        return [
            RankedItem(leads[int(cols[j])], rank, score, why)
            for rank, (j, score, why) in enumerate(picked, start=1)
        ]

    def rank_companies_for_lead(
        self,
        lead: str,
        companies: Sequence[str],
        limit: int = 10,
        reasons: int = 3,
        state: State | None = None,
        now: float | None = None,
    ) -> list[RankedItem]:
        """The given companies scored for one lead, best first: :meth:`rank` the other way round."""
        state = self.state_ if state is None else state
        # A lead given again as changed shares its id with its fitted row; the index keeps the appended one.
        lead_row = lead_index(state)[lead]
        index = company_index(state)
        company_rows = np.array([index[c] for c in companies], dtype=np.int64)
        if not len(company_rows):
            return []
        blocks = lead_blocks(state, company_rows, np.array([lead_row]), now)
        rows = np.arange(len(company_rows))
        cells = (rows, np.zeros(len(rows), dtype=np.int64))
        picked = self._top_explained(
            state, blocks, cells, (company_rows, np.array([lead_row])), limit, reasons, now
        )
        return [
            RankedItem(companies[int(rows[i])], rank, score, why)
            for rank, (i, score, why) in enumerate(picked, start=1)
        ]

    def _top_explained(
        self,
        state: State,
        blocks: dict[str, F32],
        cells: tuple[I64, I64],
        block_of: tuple[I64, I64],
        limit: int,
        reasons: int,
        now: float | None,
    ) -> list[tuple[int, float, list[Reason]]]:
        """The best ``limit`` of the block's ``cells`` (rows, columns), explained: (cell position,
        probability, reasons). ``block_of``: the state's company and lead rows of the block's rows and
        columns."""
        rows, cols = cells
        X = stack(blocks, rows, cols)
        raw = self.score_pairs(X, self.blend_score(blocks)[rows, cols])
        probability = self.probability(raw)
        top = np.argsort(-raw, kind="stable")[:limit]
        company_rows, lead_rows = block_of[0][rows[top]], block_of[1][cols[top]]
        whys = explain_many(self, state, X[top], company_rows, lead_rows, reasons, now)
        return [(int(j), float(probability[j]), why) for j, why in zip(top, whys, strict=True)]

    def mission_scores(
        self,
        state: State,
        sectors: Sequence[str],
        city: str,
        title: str,
        company_rows: I64,
        past_missions: F32,
    ) -> F64:
        """Raw fit of each company row for a trade mission (a partner city with a sector focus);
        ``past_missions``: log1p of each listed company's earlier participations."""
        X = mission_features(
            state, sectors, city, title, self.city_languages_.get(city, []), company_rows, past_missions
        )
        if self.mission_ranker_ is None:
            # No past participations to learn from: sector depth, then text.
            return np.asarray(X[:, 0] + 0.5 * X[:, 2] + 0.1 * X[:, 4], dtype=np.float64)
        return self.mission_ranker_.decision_function(X)

    def with_profiles(self, companies: Companies | None = None, leads: Leads | None = None) -> State:
        """The fitted state plus the given profiles: companies and leads created after training, or known
        ones whose profile changed since (their ids are known; they keep the history the model knows).

        New rows are encoded with the fitted vocabulary and text models and have no behaviour yet, as a
        company registered just before the cutoff would: the features that need no history (sector match
        and affinity, text, topics, city, language, size, freshness) carry them. The result behaves as the
        fitted state with the rows appended; the appended arrays are built only if something reads them
        (:class:`ProfiledState`), which :meth:`rank` for one new company does not.
        """
        state = self.state_
        added_c = added_l = None
        if companies is not None and len(companies):
            added_c = encode_companies(state.vocabulary, state.text, companies)
        if leads is not None and len(leads):
            added_l = encode_leads(state.vocabulary, state.text, leads)
        if added_c is None and added_l is None:
            return state
        return ProfiledState.over(state, added_c, added_l)


class ProfiledState(State):
    """The fitted state with profiles appended, as :meth:`RankingModel.with_profiles` returns it.

    Appending copies every known row (the 10,000 companies' texts, topics and histories: milliseconds and
    tens of megabytes per request), so the per-company and per-lead fields are concatenated on first access,
    each side at once; until then they are not in the instance and ``__getattr__`` builds them. A request for
    one new company reads :meth:`new_companies` instead, the new rows alone. A profile whose id the fitted
    state knows was changed, not created: its appended row keeps the known row's history.
    """

    @classmethod
    def over(cls, base: State, companies: CompanySide | None, leads: LeadSide | None) -> ProfiledState:
        # Not ``__init__``: ``dataclasses.replace`` still builds a (complete) instance from all fields.
        state = cls.__new__(cls)
        values = state.__dict__
        for f in dataclasses.fields(State):
            lazy = (f.name in COMPANY_FIELDS and companies is not None) or (
                f.name in LEAD_FIELDS and leads is not None
            )
            if not lazy:
                values[f.name] = getattr(base, f.name)
        values["_overlay"] = (base, companies, leads)
        if leads is None:
            # Same leads as the fitted state: its lead views (the costly part of a request) serve here too.
            values["_derived"] = derived_values(base)
        return state

    def __getstate__(self) -> dict[str, Any]:
        for name in (*COMPANY_FIELDS, *LEAD_FIELDS):
            getattr(self, name)
        return super().__getstate__()

    def __getattr__(self, name: str) -> Any:
        overlay = self.__dict__.get("_overlay")
        if overlay is None or name not in (*COMPANY_FIELDS, *LEAD_FIELDS):
            raise AttributeError(name)
        base, companies, leads = overlay
        group: tuple[str, ...]
        if name in COMPANY_FIELDS:
            group, added = COMPANY_FIELDS, companies
            blank = company_history_of(base, _known_rows(company_index(base), companies.ids))
        else:
            group, added = LEAD_FIELDS, leads
            blank = lead_history_of(base, _known_rows(lead_index(base), leads.ids))
        blank[group[0]] = added
        for field_name in group:
            old, new = getattr(base, field_name), blank[field_name]
            self.__dict__[field_name] = (
                _append_side(old, new) if field_name == group[0] else np.concatenate([old, new], axis=0)
            )
        return self.__dict__[name]

    def new_companies(self) -> State | None:
        """A state of the appended companies alone (see ``new_company_state``), or None if there are none."""
        overlay = self.__dict__.get("_overlay")
        if overlay is None or overlay[1] is None:
            return None
        base, companies, _leads = overlay
        found = self.__dict__.get("_new_companies")
        if found is None:
            # History from the base: this state's own company fields would be the costly appended copies.
            rows = _known_rows(company_index(base), companies.ids)
            found = new_company_state(self, companies, company_history_of(base, rows))
            self.__dict__["_new_companies"] = found
        return found


def _known_rows(index: dict[str, int], ids: Sequence[str]) -> I64:
    return np.array([index.get(i, -1) for i in ids], dtype=np.int64)


def _company_row(state: State, company: str) -> tuple[State, int]:
    """The state to compute ``company``'s features from and its row there: an appended company's own small
    state when ``state`` came from :meth:`RankingModel.with_profiles` (same features, none of the copying)."""
    if isinstance(state, ProfiledState):
        new = state.new_companies()
        if new is not None:
            row = company_index(new).get(company)
            if row is not None:
                return new, row
    return state, company_index(state)[company]


def _append_side(side: Any, added: Any) -> Any:
    """Rows of ``added`` after those of ``side`` (a CompanySide or LeadSide), field by field."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(side):
        old, new = getattr(side, f.name), getattr(added, f.name)
        if isinstance(old, list):
            values[f.name] = [*old, *new]
        elif isinstance(old, SectorCodes):
            values[f.name] = SectorCodes(
                [sp.vstack([a, b]).tocsr() for a, b in zip(old.levels, new.levels, strict=True)],
                np.vstack([old.divisions, new.divisions]),
            )
        elif sp.issparse(old):
            values[f.name] = sp.vstack([old, new]).tocsr()
        else:
            values[f.name] = np.concatenate([old, new], axis=0)
    return type(side)(**values)


def top_k(score: npt.NDArray[Any], k: int) -> I64:
    """Positions of the ``k`` largest scores, best first (ties in position order)."""
    k = min(k, len(score))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-score, k - 1)[:k]
    return np.asarray(part[np.argsort(-score[part], kind="stable")], dtype=np.int64)
