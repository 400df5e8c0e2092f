"""The whole ranking model: features as of a time, candidate generation, the learned scorers, reasons.

Training follows the evaluation protocol one step earlier: inside the data it is given
(everything before the cutoff T), a validation cutoff T_val is chosen by the same
rule (80 % of the positives before T), features are computed as of T_val, and the
labels are what companies did in [T_val, T) -- every positive, whether it came from
the recommended list or from the company's own search. At serving time the
features are recomputed as of T with the same model.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.metrics import roc_auc_score

from ml.ranker import LeadRanker, MissionRanker, MonotoneCalibrator
from partnermatch.ranking.data import (
    DECLINED,
    IMPRESSION,
    PARTICIPANT_GRADE,
    VIEW,
    Companies,
    Dataset,
    Leads,
    default_cutoff,
)
from partnermatch.ranking.features import (
    COMPANY_FIELDS,
    FEATURE_NAMES,
    KIND_FEATURE,
    LEAD_FIELDS,
    CompanySide,
    LeadSide,
    SectorCodes,
    State,
    build_state,
    candidate_mask,
    chunks,
    company_history_of,
    company_index,
    derived_values,
    encode_companies,
    encode_leads,
    fit_text,
    lead_blocks,
    lead_history_of,
    lead_index,
    mission_features,
    new_company_state,
    open_leads,
    stack,
)
from partnermatch.ranking.reasons import explain_many

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
TOP_N = 100


def window_labels(ds: Dataset, start: float, end: float) -> dict[int, dict[int, int]]:
    """Strongest grade per (company, lead) from events in [start, end), for companies registered before start."""
    it = ds.interactions
    grade = it.grade
    mask = (it.at >= start) & (it.at < end) & (grade >= 1)
    mask &= ds.companies.registered[it.company] < start
    labels: dict[int, dict[int, int]] = {}
    for c, lead, g in zip(it.company[mask], it.lead[mask], grade[mask], strict=True):
        row = labels.setdefault(int(c), {})
        row[int(lead)] = max(row.get(int(lead), 0), int(g))
    return labels


def interacted_before(ds: Dataset, at: float) -> Any:
    """(companies x leads) sparse indicator of the pairs with any interaction before ``at``."""
    it = ds.interactions
    m = it.at < at
    data = np.ones(int(m.sum()), dtype=np.float32)
    return sp.csr_matrix(
        (data, (it.company[m], it.lead[m])), shape=(len(ds.companies), len(ds.leads))
    ).tocsr()


def propensities(ds: Dataset, before: float, max_position: int = 50) -> np.ndarray:
    """Examination probability by list position, relative to position 1, from the logs before ``before``.

    A pair shown at position k counts as examined if it was viewed or acted on afterwards.
    """
    it = ds.interactions
    m = it.at < before
    n_l = len(ds.leads)
    shown = m & (it.kind == IMPRESSION) & np.isfinite(it.position)
    acted = m & (it.kind != IMPRESSION)
    acted_keys = np.unique(it.company[acted] * n_l + it.lead[acted])
    keys = it.company[shown] * n_l + it.lead[shown]
    examined = np.isin(keys, acted_keys)
    position = np.clip(it.position[shown].astype(np.int64), 1, max_position)
    views = np.bincount(position, weights=examined, minlength=max_position + 1)
    total = np.bincount(position, minlength=max_position + 1)
    rate = (views + 1.0) / (total + 10.0)
    if total[1] == 0:
        return np.ones(max_position + 1)
    p = rate / rate[1]
    # Rates must not rise with the position: a noisy late position would otherwise get a tiny weight.
    p = np.minimum.accumulate(np.clip(p, 1e-3, 1.0))
    p[0] = 1.0
    return p


@dataclass
class TrainingPairs:
    X: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    """Inverse-propensity x grade for positives; 1 / sampling rate for negatives."""
    weight_no_ipw: np.ndarray
    query: np.ndarray
    candidate_recall: float


class RankingPipeline(BaseEstimator):  # type: ignore[misc]
    """Fit on a dataset (everything before ``cutoff``) and rank leads for companies and companies for missions."""

    def __init__(
        self,
        per_source: int = 120,
        negatives_per_query: int = 80,
        ipw_clip: float = 10.0,
        svd_components: int = 96,
        # 150 rounds at 0.1 rather than 250 at 0.06: NDCG@10 within 2 % over three generated 10,000 x 5,000
        # seeds (cold start equal) for 60 % of the trees, which is most of a full recompute's time.
        max_iter: int = 150,
        learning_rate: float = 0.1,
        holdout_share: float = 0.2,
        chunk_size: int = 400,
        random_state: int = 0,
    ) -> None:
        self.per_source = per_source
        self.negatives_per_query = negatives_per_query
        self.ipw_clip = ipw_clip
        self.svd_components = svd_components
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.holdout_share = holdout_share
        self.chunk_size = chunk_size
        self.random_state = random_state

    # ----------------------------------------------------------------- training

    def fit(self, ds: Dataset, cutoff: float | None = None) -> RankingPipeline:
        started = time.perf_counter()
        it = ds.interactions
        if cutoff is None:
            latest = [
                it.at.max() if len(it) else 0.0,
                ds.leads.published.max(),
                ds.companies.registered.max(),
            ]
            cutoff = float(max(latest)) + 1.0
        before = it.take(it.at < cutoff)
        validation = default_cutoff(before)
        self.cutoff_ = cutoff
        self.validation_cutoff_ = validation
        self.vocabulary_, self.text_ = fit_text(ds, self.svd_components)
        companies = encode_companies(self.vocabulary_, self.text_, ds.companies)
        leads = encode_leads(self.vocabulary_, self.text_, ds.leads)
        state = build_state(ds, validation, self.vocabulary_, self.text_, companies, leads)
        self.propensity_ = propensities(ds, validation)
        pairs = self._training_pairs(ds, state, validation, cutoff)
        rng = np.random.default_rng(self.random_state)
        queries = np.unique(pairs.query)
        holdout_queries = rng.choice(queries, size=int(len(queries) * self.holdout_share), replace=False)
        hold = np.isin(pairs.query, holdout_queries)
        train = ~hold
        params: dict[str, Any] = {
            "max_iter": self.max_iter,
            "learning_rate": self.learning_rate,
            "categorical_features": (KIND_FEATURE,),
        }
        # Two views of the same data: positives weighted by grade x inverse propensity of the logged position,
        # and by grade alone. IPW corrects the list's position bias but adds variance; averaging keeps both.
        self.ranker_ipw_ = LeadRanker(**params, random_state=self.random_state).fit(
            pairs.X[train], pairs.y[train], pairs.weight[train]
        )
        self.ranker_grade_ = LeadRanker(**params, random_state=self.random_state).fit(
            pairs.X[train], pairs.y[train], pairs.weight_no_ipw[train]
        )
        self.medians_ = np.nanmedian(pairs.X[pairs.y == 0], axis=0)
        self.blend_ = self._tune_blend(pairs)
        X_hold, y_hold, q_hold = pairs.X[hold], pairs.y[hold], pairs.query[hold]
        s_ipw = self.ranker_ipw_.decision_function(X_hold)
        s_grade = self.ranker_grade_.decision_function(X_hold)
        blend_hold = self._blend_rows(X_hold)
        self.selection_: dict[str, float] = {
            "holdout_ndcg10_ipw": _mean_ndcg10(s_ipw, y_hold, q_hold),
            "holdout_ndcg10_grade": _mean_ndcg10(s_grade, y_hold, q_hold),
        }
        # The weight of the tuned blend in the final score, chosen on held-out companies of the validation window.
        best_weight, best = 0.0, -1.0
        for weight in (0.0, 0.1, 0.2, 0.3, 0.5, 0.8):
            score = _mean_ndcg10(0.5 * (s_ipw + s_grade) + weight * blend_hold, y_hold, q_hold)
            if score > best + 1e-6:
                best_weight, best = weight, score
        self.blend_weight_ = best_weight
        self.selection_["holdout_ndcg10_final"] = best
        self.selection_["blend_weight"] = best_weight
        # Calibration weights: positives count once, sampled negatives for all they stand for.
        calibration_weight = np.where(pairs.y >= 1, 1.0, pairs.weight_no_ipw)
        self.calibrator_ = MonotoneCalibrator().fit(
            0.5 * (s_ipw + s_grade) + best_weight * blend_hold,
            y_hold >= 1,
            sample_weight=calibration_weight[hold],
        )
        self.holdout_metrics_ = self._holdout_metrics(pairs, hold)
        self.holdout_metrics_["candidate_recall_validation"] = pairs.candidate_recall
        self.holdout_metrics_.update(self.selection_)
        self.holdout_metrics_["training_pairs"] = int(train.sum())
        self.mission_ranker_ = self._fit_missions(ds, state, cutoff)
        self.state_ = build_state(ds, cutoff, self.vocabulary_, self.text_, companies, leads)
        self.city_names_ = dict(ds.city_names)
        self.city_languages_ = dict(ds.city_languages)
        self.feature_names_ = list(FEATURE_NAMES)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _training_pairs(self, ds: Dataset, state: State, start: float, end: float) -> TrainingPairs:
        labels = window_labels(ds, start, end)
        universe = open_leads(state, start)
        seen = interacted_before(ds, start)
        it = ds.interactions
        window = (it.at >= start) & (it.at < end)
        n_l = len(ds.leads)
        exposed = window & ((it.kind == IMPRESSION) | (it.kind == VIEW) | (it.kind == DECLINED))
        exposed_keys = np.unique(it.company[exposed] * n_l + it.lead[exposed])
        shown = window & np.isfinite(it.position)
        # Position at which each pair was first shown in the window; organic finds have none.
        first_position: dict[int, float] = {}
        for key, pos in zip(it.company[shown] * n_l + it.lead[shown], it.position[shown], strict=True):
            first_position.setdefault(int(key), float(pos))
        query_rows = np.array(sorted(labels), dtype=np.int64)
        rng = np.random.default_rng(self.random_state)
        X_parts, y_parts, w_parts, w0_parts, q_parts = [], [], [], [], []
        found = total = 0
        for part in chunks(len(query_rows), self.chunk_size):
            rows = query_rows[part]
            blocks = lead_blocks(state, rows, universe)
            excluded = np.asarray(seen[rows][:, universe].toarray() > 0)
            candidates = candidate_mask(blocks, self.per_source) & ~excluded
            label = np.zeros(candidates.shape, dtype=np.int64)
            position = {int(lead): j for j, lead in enumerate(universe)}
            for i, c in enumerate(rows):
                for lead, g in labels[int(c)].items():
                    j = position.get(lead)
                    if j is not None and not excluded[i, j]:
                        label[i, j] = g
            found += int((candidates & (label > 0)).sum())
            total += int((label > 0).sum())
            keys = rows[:, None] * n_l + universe[None, :]
            was_exposed = np.isin(keys, exposed_keys) & candidates
            unexposed = candidates & ~was_exposed & (label == 0)
            count = np.maximum(unexposed.sum(axis=1, keepdims=True), 1)
            rate = np.minimum(1.0, self.negatives_per_query / count)
            sampled = unexposed & (rng.random(candidates.shape) < rate)
            keep = (label > 0) | (was_exposed & (label == 0)) | sampled
            ri, ci = np.nonzero(keep)
            X_parts.append(stack(blocks, ri, ci))
            y = label[ri, ci]
            y_parts.append(y)
            negative_weight = np.where(sampled[ri, ci], 1.0 / np.broadcast_to(rate, keep.shape)[ri, ci], 1.0)
            pair_keys = keys[ri, ci]
            propensity = np.array(
                [
                    self.propensity_[min(int(first_position.get(int(k), 1.0)), len(self.propensity_) - 1)]
                    for k in pair_keys
                ]
            )
            ipw = np.minimum(1.0 / np.maximum(propensity, 1e-6), self.ipw_clip)
            w_parts.append(np.where(y > 0, y * ipw, negative_weight))
            w0_parts.append(np.where(y > 0, y.astype(np.float64), negative_weight))
            q_parts.append(rows[ri])
        return TrainingPairs(
            np.vstack(X_parts),
            np.concatenate(y_parts),
            np.concatenate(w_parts),
            np.concatenate(w0_parts),
            np.concatenate(q_parts),
            found / max(total, 1),
        )

    def blend_score(self, blocks: dict[str, np.ndarray]) -> np.ndarray:
        total = np.zeros(blocks["nace_depth"].shape, dtype=np.float32)
        for k, name in enumerate(BLEND_FEATURES):
            if self.blend_[k]:
                value = (np.nan_to_num(blocks[name]) - self.blend_mean_[k]) / self.blend_scale_[k]
                total += np.float32(self.blend_[k]) * value
        return total

    def _blend_rows(self, X: np.ndarray) -> np.ndarray:
        idx = [FEATURE_NAMES.index(f) for f in BLEND_FEATURES]
        z = (np.nan_to_num(X[:, idx]) - self.blend_mean_) / self.blend_scale_
        return np.asarray(z @ self.blend_, dtype=np.float64)

    def score_pairs(self, X: np.ndarray, blend: np.ndarray, variant: str = "final") -> np.ndarray:
        """Raw ranking score of feature rows: ``final`` (both models and the blend), ``ipw`` or ``grade``."""
        if variant == "ipw":
            return self.ranker_ipw_.decision_function(X)
        if variant == "grade":
            return self.ranker_grade_.decision_function(X)
        both = 0.5 * (self.ranker_ipw_.decision_function(X) + self.ranker_grade_.decision_function(X))
        return np.asarray(both + self.blend_weight_ * blend, dtype=np.float64)

    def probability(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probability of interest for final raw scores."""
        return np.asarray(self.calibrator_.predict(raw), dtype=np.float64)

    def _tune_blend(self, pairs: TrainingPairs) -> np.ndarray:
        """Coordinate ascent of the validation window's NDCG@10 over a small weight grid."""
        idx = [FEATURE_NAMES.index(f) for f in BLEND_FEATURES]
        raw = np.nan_to_num(pairs.X[:, idx])
        self.blend_mean_ = raw.mean(axis=0)
        self.blend_scale_ = raw.std(axis=0) + 1e-6
        Z = (raw - self.blend_mean_) / self.blend_scale_
        order = np.argsort(pairs.query, kind="stable")
        Z, y, q = Z[order], pairs.y[order], pairs.query[order]
        bounds = np.flatnonzero(np.diff(q)) + 1
        groups = np.split(np.arange(len(q)), bounds)

        def objective(w: np.ndarray) -> float:
            s = Z @ w
            return float(np.mean([_ndcg10(s[g], y[g]) for g in groups]))

        weights = np.zeros(len(BLEND_FEATURES))
        weights[0] = weights[2] = 1.0
        best = objective(weights)
        for _ in range(2):
            for k in range(len(weights)):
                for value in (-1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0):
                    trial = weights.copy()
                    trial[k] = value
                    score = objective(trial)
                    if score > best + 1e-6:
                        best, weights = score, trial
        self.blend_validation_ndcg_ = best
        return weights

    def _holdout_metrics(self, pairs: TrainingPairs, hold: np.ndarray) -> dict[str, Any]:
        if not hold.any():
            return {}
        y = pairs.y[hold] >= 1
        X = pairs.X[hold]
        p = self.probability(self.score_pairs(X, self._blend_rows(X)))
        w = np.where(y, 1.0, pairs.weight_no_ipw[hold])
        metrics: dict[str, Any] = {"holdout_pairs": int(hold.sum())}
        if 0 < y.sum() < len(y):
            metrics["holdout_auc"] = float(roc_auc_score(y, p, sample_weight=w))
        eps = 1e-6
        loss = -(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
        metrics["holdout_log_loss"] = float(np.average(loss, weights=w))
        metrics["holdout_brier"] = float(np.average((p - y) ** 2, weights=w))
        return metrics

    # ----------------------------------------------------------------- missions

    def _mission_matrix(self, ds: Dataset, state: State, m: int, rows: np.ndarray, at: float) -> np.ndarray:
        pa = ds.participants
        earlier = (pa.at < at) & (pa.mission != m)
        past = np.bincount(pa.company[earlier], minlength=len(ds.companies)).astype(np.float32)
        return mission_features(
            state,
            ds.missions.sectors[m],
            ds.missions.cities[m],
            ds.missions.titles[m],
            ds.city_languages.get(ds.missions.cities[m], []),
            rows,
            np.log1p(past),
        )

    def _fit_missions(self, ds: Dataset, state: State, cutoff: float) -> MissionRanker | None:
        X_parts, y_parts = [], []
        rng = np.random.default_rng(self.random_state)
        for m in range(len(ds.missions)):
            announced = float(ds.missions.announced[m])
            mine = ds.participants.mission == m
            if announced >= cutoff or not mine.any():
                continue
            rows = np.flatnonzero(ds.companies.registered < announced)
            grade = np.zeros(len(ds.companies), dtype=np.int64)
            np.maximum.at(
                grade, ds.participants.company[mine], PARTICIPANT_GRADE[ds.participants.status[mine]]
            )
            negatives = rows[grade[rows] == 0]
            if len(negatives) > 3000:
                negatives = rng.choice(negatives, 3000, replace=False)
            chosen = np.concatenate([rows[grade[rows] > 0], negatives])
            X_parts.append(self._mission_matrix(ds, state, m, chosen, announced))
            y_parts.append(grade[chosen])
        if not X_parts or sum(int((y > 0).sum()) for y in y_parts) < 5:
            return None
        return MissionRanker(random_state=self.random_state).fit(np.vstack(X_parts), np.concatenate(y_parts))

    def mission_scores(self, ds: Dataset, m: int) -> tuple[np.ndarray, np.ndarray]:
        """(company rows registered before the cutoff, their scores) for mission ``m``."""
        rows = np.flatnonzero(ds.companies.registered < self.cutoff_)
        X = self._mission_matrix(ds, self.state_, m, rows, self.cutoff_)
        if self.mission_ranker_ is None:
            # No past participations to learn from: sector depth, then text.
            score = X[:, 0] + 0.5 * X[:, 2] + 0.1 * X[:, 4]
        else:
            score = self.mission_ranker_.decision_function(X)
        return rows, score

    # ----------------------------------------------------------------- ranking

    def excluded(self, ds: Dataset) -> Any:
        return interacted_before(ds, self.cutoff_)

    def learned_block(
        self,
        blocks: dict[str, np.ndarray],
        candidates: np.ndarray,
        variant: str = "final",
    ) -> np.ndarray:
        """Learned scores for the candidates; other cells rank after them by the blend."""
        blend = self.blend_score(blocks)
        score = blend.astype(np.float64) - 1e4
        ri, ci = np.nonzero(candidates)
        if len(ri):
            score[ri, ci] = self.score_pairs(stack(blocks, ri, ci), blend[ri, ci], variant) + 1e4
        return score

    def rank_companies(
        self, ds: Dataset, company_rows: np.ndarray, top: int = TOP_N
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Top leads (rows of ``ds.leads``) and scores for each company, per the protocol's candidates."""
        universe = open_leads(self.state_)
        seen = self.excluded(ds)
        out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for part in chunks(len(company_rows), self.chunk_size):
            rows = company_rows[part]
            blocks = lead_blocks(self.state_, rows, universe)
            excluded = np.asarray(seen[rows][:, universe].toarray() > 0)
            candidates = candidate_mask(blocks, self.per_source) & ~excluded
            score = self.learned_block(blocks, candidates)
            score[excluded] = -np.inf
            for i, c in enumerate(rows):
                top_idx = top_k(score[i], top)
                top_idx = top_idx[np.isfinite(score[i][top_idx])]
                out[int(c)] = (universe[top_idx], score[i][top_idx])
        return out

    def rank(
        self,
        company: str,
        leads: Sequence[str],
        limit: int = 10,
        reasons: int = 3,
        state: State | None = None,
        now: float | None = None,
    ) -> list[dict[str, Any]]:
        """Serving: the given leads' candidates for one company (see below) scored, best first, each with a
        calibrated probability of interest and reasons (a deadline counted from ``now``). Both must be known
        to ``state`` (default: the fitted state; new profiles: :meth:`with_profiles`)."""
        state, company_row = _company_rows(self.state_ if state is None else state, company)
        index = lead_index(state)
        lead_rows = np.array([index[lead_id] for lead_id in leads], dtype=np.int64)
        blocks = lead_blocks(state, np.array([company_row]), lead_rows)
        # Scoring every open lead with both boosted models took most of the on-demand latency budget, so only
        # this company's candidates (the same generation, with the same ``per_source``, as training,
        # evaluation and the batch path, where non-candidates only ever fill in after every candidate) are
        # scored. Consequence: a lead outside the company's candidate set is never recommended on demand,
        # unless there are fewer candidates than ``limit``, when every given lead is scored. Candidates are
        # chosen among ``leads``, which the caller has already filtered (city, kind, exclusions), so the
        # filters still apply before truncation.
        cols = np.flatnonzero(candidate_mask(blocks, self.per_source)[0])
        if len(cols) < limit:
            cols = np.arange(len(lead_rows))
        X = stack(blocks, np.zeros(len(cols), dtype=np.int64), cols)
        raw = self.score_pairs(X, self.blend_score(blocks)[0][cols])
        probability = self.probability(raw)
        result = []
        top = np.argsort(-raw, kind="stable")[:limit]
        whys = explain_many(
            self, state, X[top], np.full(len(top), company_row), lead_rows[cols[top]], reasons, now
        )
        for rank, (j, why) in enumerate(zip(top, whys, strict=True), start=1):
            lead = int(cols[j])
            result.append(
                {"lead_id": leads[lead], "rank": rank, "score": float(probability[j]), "reasons": why}
            )
        return result

    def rank_companies_for_lead(
        self,
        lead: str,
        companies: Sequence[str],
        limit: int = 10,
        reasons: int = 3,
        state: State | None = None,
        now: float | None = None,
    ) -> list[dict[str, Any]]:
        """Serving: the given companies scored for one lead, best first, like :meth:`rank` the other way
        round. Both must be known to ``state`` (default: the fitted state)."""
        state = self.state_ if state is None else state
        # A lead appended as changed shares its id with its fitted row; the index keeps the last, appended one.
        lead_row = lead_index(state)[lead]
        index = {company_id: i for i, company_id in enumerate(state.companies.ids)}
        company_rows = np.array([index[c] for c in companies], dtype=np.int64)
        if not len(company_rows):
            return []
        blocks = lead_blocks(state, company_rows, np.array([lead_row]))
        rows = np.arange(len(company_rows))
        X = stack(blocks, rows, np.zeros(len(rows), dtype=np.int64))
        raw = self.score_pairs(X, self.blend_score(blocks)[:, 0])
        probability = self.probability(raw)
        top = np.argsort(-raw, kind="stable")[:limit]
        whys = explain_many(self, state, X[top], company_rows[top], np.full(len(top), lead_row), reasons, now)
        result = []
        for rank, (i, why) in enumerate(zip(top, whys, strict=True), start=1):
            result.append(
                {"company_id": companies[i], "rank": rank, "score": float(probability[i]), "reasons": why}
            )
        return result

    def with_profiles(
        self, companies: Companies | None = None, leads: Leads | None = None, *, changed: bool = False
    ) -> State:
        """The fitted state plus companies and leads created after training (cold start).

        New rows are encoded from their profiles with the fitted vocabulary and text models and have no
        behaviour yet, as a company registered just before the cutoff would: the features that need no
        history (sector match and affinity, text, topics, city, language, size, freshness) carry them.
        The result behaves as the fitted state with the new rows appended; the appended arrays are built
        only if something reads them (:class:`ProfiledState`), which :meth:`rank` for a new company does not.
        ``changed``: the given companies and leads may be known ones whose profiles changed since training;
        :meth:`rank` and :meth:`rank_companies_for_lead` then score them from these profiles with the
        history the model knows of them.
        """
        state = self.state_
        added_c = added_l = None
        if companies is not None and len(companies):
            added_c = encode_companies(state.vocabulary, state.text, companies)
        if leads is not None and len(leads):
            added_l = encode_leads(state.vocabulary, state.text, leads)
        return ProfiledState.over(state, added_c, added_l, changed=changed)


class ProfiledState(State):
    """The fitted state with new profiles appended, as :meth:`RankingPipeline.with_profiles` returns it.

    Appending copies every known row (the 10,000 companies' texts, topics and histories: milliseconds and
    tens of megabytes per request), so the per-company and per-lead fields are concatenated on first access,
    each side at once; until then they are not in the instance and ``__getattr__`` builds them. A request for
    a new company reads :meth:`new_companies` instead, the new rows alone.
    """

    @classmethod
    def over(
        cls, base: State, companies: CompanySide | None, leads: LeadSide | None, *, changed: bool = False
    ) -> ProfiledState:
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
        values["_changed"] = changed
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
        # Profiles given as changed keep the history of the known row with their id.
        changed = bool(self.__dict__.get("_changed"))
        if name in COMPANY_FIELDS:
            group, added = COMPANY_FIELDS, companies
            rows = _known_rows(company_index(base), added.ids, changed)
            blank = company_history_of(base, rows)
        else:
            group, added = LEAD_FIELDS, leads
            rows = _known_rows(lead_index(base), added.ids, changed)
            blank = lead_history_of(base, rows)
        blank[group[0]] = added
        for field_name in group:
            old, new = getattr(base, field_name), blank[field_name]
            self.__dict__[field_name] = (
                _append_side(old, new) if field_name == group[0] else np.concatenate([old, new], axis=0)
            )
        return self.__dict__[name]

    def new_companies(self) -> State | None:
        """A state of the new companies alone (see ``new_company_state``), or None if there are none."""
        overlay = self.__dict__.get("_overlay")
        companies = None if overlay is None else overlay[1]
        if companies is None:
            return None
        found = self.__dict__.get("_new_companies")
        if found is None:
            # History from the base: this state's own company fields would be the costly appended copies.
            base = overlay[0]
            rows = _known_rows(company_index(base), companies.ids, bool(self.__dict__.get("_changed")))
            found = new_company_state(self, companies, company_history_of(base, rows))
            self.__dict__["_new_companies"] = found
        return found


def _known_rows(index: dict[str, int], ids: Sequence[str], changed: bool) -> np.ndarray:
    return np.array([index.get(i, -1) if changed else -1 for i in ids], dtype=np.int64)


def _company_rows(state: State, company: str) -> tuple[State, int]:
    """The state to compute ``company``'s features from and its row there: a new company's own small state
    when ``state`` came from :meth:`RankingPipeline.with_profiles` (same features, none of the copying)."""
    if isinstance(state, ProfiledState):
        new = state.new_companies()
        base = state.__dict__["_overlay"][0] if new is not None else None
        # A known id keeps its fitted row, unless its profile was given as a changed one.
        changed = bool(state.__dict__.get("_changed"))
        if new is not None and base is not None and (changed or company not in company_index(base)):
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


def top_k(score: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(score))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-score, k - 1)[:k]
    return part[np.argsort(-score[part], kind="stable")]


def _mean_ndcg10(score: np.ndarray, grade: np.ndarray, query: np.ndarray) -> float:
    order = np.argsort(query, kind="stable")
    bounds = np.flatnonzero(np.diff(query[order])) + 1
    groups = np.split(order, bounds)
    return float(np.mean([_ndcg10(score[g], grade[g]) for g in groups])) if groups else 0.0


def _ndcg10(score: np.ndarray, grade: np.ndarray) -> float:
    if grade.max(initial=0) <= 0:
        return 0.0
    order = np.argsort(-score, kind="stable")[:10]
    discount = 1.0 / np.log2(np.arange(2, 12))
    dcg = float((grade[order] * discount[: len(order)]).sum())
    ideal = np.sort(grade)[::-1][:10]
    return dcg / float((ideal * discount[: len(ideal)]).sum())


def describe_time(at: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(at, UTC).isoformat()


__all__ = ["RankingPipeline", "describe_time", "top_k", "window_labels"]
