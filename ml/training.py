"""Fitting the ranking model (``partnermatch.ranking.model.RankingModel``) on a dataset.

Training follows the evaluation protocol one step earlier, several times: inside the data it is
given (everything before the cutoff T), ``snapshots`` back-to-back windows of ``window_days`` end at
T; in each, features are computed as of its start and the labels are what companies did within it --
every positive, whether it came from the recommended list or from the company's own search. (Without
``window_days``: one window from a validation cutoff T_val, chosen by the protocol's own rule, 80 % of
the positives before T, to T.) At serving time the features are recomputed as of T with the same model.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from ml.metrics import mean_ndcg, query_groups
from partnermatch.ranking.data import (
    DECLINED,
    IMPRESSION,
    PARTICIPANT_GRADE,
    VIEW,
    Dataset,
    default_cutoff,
)
from partnermatch.ranking.estimators import LeadRanker, MissionRanker, MonotoneCalibrator
from partnermatch.ranking.features import (
    DAY,
    FEATURE_NAMES,
    KIND_FEATURE,
    State,
    build_state,
    candidate_mask,
    chunks,
    encode_companies,
    encode_leads,
    fit_text,
    lead_blocks,
    mission_features,
    open_leads,
    stack,
)
from partnermatch.ranking.model import BLEND_FEATURES, RankingModel


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
    relevant: int = 0
    """Relevant pairs of the window (candidates or not)."""


def _concatenate(parts: list[TrainingPairs]) -> TrainingPairs:
    total = sum(p.relevant for p in parts)
    found = sum(p.candidate_recall * p.relevant for p in parts)
    return TrainingPairs(
        np.vstack([p.X for p in parts]),
        np.concatenate([p.y for p in parts]),
        np.concatenate([p.weight for p in parts]),
        np.concatenate([p.weight_no_ipw for p in parts]),
        np.concatenate([p.query for p in parts]),
        found / max(total, 1),
        total,
    )


class RankingTrainer(BaseEstimator):  # type: ignore[misc]
    """Fits a :class:`RankingModel` on a dataset (everything before ``cutoff``): ``fit(ds).model_``."""

    def __init__(
        self,
        per_source: int = 120,
        # 40 unexposed negatives per company and window rather than 80: NDCG@10 +5 % on both independent
        # datasets, with one window as with three (README, Measured).
        negatives_per_query: int = 40,
        ipw_clip: float = 10.0,
        svd_components: int = 96,
        # 150 rounds at 0.1 rather than 250 at 0.06: NDCG@10 within 2 % over three generated 10,000 x 5,000
        # seeds (cold start equal) for 60 % of the trees, which is most of a full recompute's time.
        max_iter: int = 150,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        holdout_share: float = 0.2,
        chunk_size: int = 400,
        # Three back-to-back four-week windows before the cutoff rather than the one validation window: with
        # 40 negatives, NDCG@10 within 1 % of one window on both independent datasets, recall@50 +1-2 %,
        # generated seeds within their earlier range; more, fresher positives per model at 2x the pairs.
        snapshots: int = 3,
        window_days: float | None = 28.0,
        labels_until_cutoff: bool = False,
        retrieval_k: int = 0,
        sample_outside_candidates: bool = False,
        random_state: int = 0,
    ) -> None:
        self.per_source = per_source
        self.negatives_per_query = negatives_per_query
        self.ipw_clip = ipw_clip
        self.svd_components = svd_components
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.holdout_share = holdout_share
        self.chunk_size = chunk_size
        self.snapshots = snapshots
        self.window_days = window_days
        self.labels_until_cutoff = labels_until_cutoff
        self.retrieval_k = retrieval_k
        self.sample_outside_candidates = sample_outside_candidates
        self.random_state = random_state

    def fit(self, ds: Dataset, cutoff: float | None = None) -> RankingTrainer:
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
        model = RankingModel(
            per_source=self.per_source, chunk_size=self.chunk_size, retrieval_k=self.retrieval_k
        )
        model.cutoff_ = cutoff
        model.validation_cutoff_ = validation
        model.vocabulary_, model.text_ = fit_text(ds, self.svd_components)
        companies = encode_companies(model.vocabulary_, model.text_, ds.companies)
        leads = encode_leads(model.vocabulary_, model.text_, ds.leads)
        model.propensity_ = propensities(ds, validation)
        # Windows without a labelled company (before the data begins) add nothing; with none at all, the
        # validation window alone.
        windows = [w for w in self._windows(validation, cutoff) if window_labels(ds, *w)]
        windows = windows or [(validation, cutoff)]
        parts = []
        states = []
        for k, (start, end) in enumerate(windows):
            state = build_state(ds, start, model.vocabulary_, model.text_, companies, leads)
            states.append(state)
            part = self._training_pairs(ds, state, start, end, propensities(ds, start))
            # Query ids stay distinct across snapshots: one company in two windows is two queries.
            part.query = part.query + k * len(ds.companies)
            parts.append(part)
        pairs = _concatenate(parts)
        rng = np.random.default_rng(self.random_state)
        queries = np.unique(pairs.query)
        holdout_queries = rng.choice(queries, size=int(len(queries) * self.holdout_share), replace=False)
        hold = np.isin(pairs.query, holdout_queries)
        train = ~hold
        params: dict[str, Any] = {
            "max_iter": self.max_iter,
            "learning_rate": self.learning_rate,
            "max_leaf_nodes": self.max_leaf_nodes,
            "min_samples_leaf": self.min_samples_leaf,
            "l2_regularization": self.l2_regularization,
            "categorical_features": (KIND_FEATURE,),
        }
        # Two views of the same data: positives weighted by grade x inverse propensity of the logged position,
        # and by grade alone. IPW corrects the list's position bias but adds variance; averaging keeps both.
        model.ranker_ipw_ = LeadRanker(**params, random_state=self.random_state).fit(
            pairs.X[train], pairs.y[train], pairs.weight[train]
        )
        model.ranker_grade_ = LeadRanker(**params, random_state=self.random_state).fit(
            pairs.X[train], pairs.y[train], pairs.weight_no_ipw[train]
        )
        model.medians_ = np.nanmedian(pairs.X[pairs.y == 0], axis=0)
        if self.retrieval_k:
            model.retrieval_ = first_stage(pairs.X[train], pairs.y[train], pairs.weight_no_ipw[train])
        model.blend_ = self._tune_blend(model, pairs)
        X_hold, y_hold = pairs.X[hold], pairs.y[hold]
        q_hold = query_groups(pairs.query[hold])
        s_ipw = model.ranker_ipw_.decision_function(X_hold)
        s_grade = model.ranker_grade_.decision_function(X_hold)
        blend_hold = model.blend_rows(X_hold)
        model.selection_ = {
            "holdout_ndcg10_ipw": mean_ndcg(s_ipw, y_hold, q_hold),
            "holdout_ndcg10_grade": mean_ndcg(s_grade, y_hold, q_hold),
        }
        # The weight of the tuned blend in the final score, chosen on held-out companies of the validation window.
        best_weight, best = 0.0, -1.0
        for weight in (0.0, 0.1, 0.2, 0.3, 0.5, 0.8):
            score = mean_ndcg(0.5 * (s_ipw + s_grade) + weight * blend_hold, y_hold, q_hold)
            if score > best + 1e-6:
                best_weight, best = weight, score
        model.blend_weight_ = best_weight
        model.selection_["holdout_ndcg10_final"] = best
        model.selection_["blend_weight"] = best_weight
        # Calibration weights: positives count once, sampled negatives for all they stand for.
        calibration_weight = np.where(pairs.y >= 1, 1.0, pairs.weight_no_ipw)
        final_hold = 0.5 * (s_ipw + s_grade) + best_weight * blend_hold
        model.calibrator_ = MonotoneCalibrator().fit(
            final_hold, y_hold >= 1, sample_weight=calibration_weight[hold]
        )
        # Plain isotonic regression on the same pairs: the evaluation's yardstick for the calibrator.
        model.isotonic_ = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(
            final_hold, (y_hold >= 1).astype(float), sample_weight=calibration_weight[hold]
        )
        model.holdout_metrics_ = self._holdout_metrics(model, pairs, hold)
        model.holdout_metrics_["candidate_recall_validation"] = pairs.candidate_recall
        model.holdout_metrics_.update(model.selection_)
        model.holdout_metrics_["training_pairs"] = int(train.sum())
        model.holdout_metrics_["label_windows"] = len(windows)
        model.mission_ranker_ = self._fit_missions(ds, states[0], cutoff)
        model.state_ = build_state(ds, cutoff, model.vocabulary_, model.text_, companies, leads)
        model.city_names_ = dict(ds.city_names)
        model.city_languages_ = dict(ds.city_languages)
        model.feature_names_ = list(FEATURE_NAMES)
        model.parameters_ = self.get_params()
        model.fit_seconds_ = time.perf_counter() - started
        self.model_ = model
        return self

    def _windows(self, validation: float, cutoff: float) -> list[tuple[float, float]]:
        """Label windows before the cutoff, most recent first: [start, end) with features as of start.

        ``window_days`` unset: the one validation window [T_val, T). Otherwise ``snapshots`` back-to-back
        windows of that length ending at T; each adds positives whose features are as of its own start, so
        time features and behaviour take the values they had then.
        """
        if self.window_days is None:
            return [(validation, cutoff)]
        length = self.window_days * DAY
        starts = [cutoff - (k + 1) * length for k in range(max(1, self.snapshots))]
        if self.labels_until_cutoff:
            return [(start, cutoff) for start in starts]
        return [(start, start + length) for start in starts]

    def _training_pairs(
        self, ds: Dataset, state: State, start: float, end: float, propensity_by_position: np.ndarray
    ) -> TrainingPairs:
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
            # Negatives come from the candidates (what the model will score), or from every lead the company
            # could be shown, which the learned first stage that widens the candidates needs to see.
            pool = ~excluded if self.sample_outside_candidates else candidates
            was_exposed = np.isin(keys, exposed_keys) & pool
            unexposed = pool & ~was_exposed & (label == 0)
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
                    propensity_by_position[
                        min(int(first_position.get(int(k), 1.0)), len(propensity_by_position) - 1)
                    ]
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
            total,
        )

    def _tune_blend(self, model: RankingModel, pairs: TrainingPairs) -> np.ndarray:
        """Coordinate ascent of the validation window's NDCG@10 over a small weight grid; sets the model's
        standardisation of the blend features."""
        idx = [FEATURE_NAMES.index(f) for f in BLEND_FEATURES]
        raw = np.nan_to_num(pairs.X[:, idx])
        model.blend_mean_ = raw.mean(axis=0)
        model.blend_scale_ = raw.std(axis=0) + 1e-6
        Z = (raw - model.blend_mean_) / model.blend_scale_
        groups = query_groups(pairs.query)

        def objective(w: np.ndarray) -> float:
            return mean_ndcg(Z @ w, pairs.y, groups)

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
        return weights

    def _holdout_metrics(self, model: RankingModel, pairs: TrainingPairs, hold: np.ndarray) -> dict[str, Any]:
        if not hold.any():
            return {}
        y = pairs.y[hold] >= 1
        X = pairs.X[hold]
        p = model.probability(model.score_pairs(X, model.blend_rows(X)))
        w = np.where(y, 1.0, pairs.weight_no_ipw[hold])
        metrics: dict[str, Any] = {"holdout_pairs": int(hold.sum())}
        if 0 < y.sum() < len(y):
            metrics["holdout_auc"] = float(roc_auc_score(y, p, sample_weight=w))
        eps = 1e-6
        loss = -(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
        metrics["holdout_log_loss"] = float(np.average(loss, weights=w))
        metrics["holdout_brier"] = float(np.average((p - y) ** 2, weights=w))
        return metrics

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
            X_parts.append(mission_matrix(ds, state, m, chosen, announced))
            y_parts.append(grade[chosen])
        if not X_parts or sum(int((y > 0).sum()) for y in y_parts) < 5:
            return None
        return MissionRanker(random_state=self.random_state).fit(np.vstack(X_parts), np.concatenate(y_parts))


def first_stage(X: np.ndarray, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weights of a logistic regression of interest on every feature (missing ones as zero), per raw feature
    value: a linear score cheap enough for every (company, open lead) cell, which picks candidates that
    the hand-made sources miss."""
    Z = np.nan_to_num(X.astype(np.float64))
    mean, scale = Z.mean(axis=0), Z.std(axis=0) + 1e-6
    model = LogisticRegression(C=1.0, max_iter=500).fit((Z - mean) / scale, y >= 1, sample_weight=weight)
    return np.asarray(model.coef_[0] / scale, dtype=np.float64)


def fit_model(ds: Dataset, params: Mapping[str, Any]) -> RankingModel:
    """The fitter that the service's training reaches through the ``partnermatch.training`` entry point
    (``partnermatch train``, the demo): CPU-bound, so call it outside the event loop."""
    return RankingTrainer(**params).fit(ds).model_


def past_missions(ds: Dataset, m: int, at: float) -> np.ndarray:
    """log1p of each company's participations in other missions before ``at``."""
    pa = ds.participants
    earlier = (pa.at < at) & (pa.mission != m)
    return np.log1p(np.bincount(pa.company[earlier], minlength=len(ds.companies)).astype(np.float32))


def mission_matrix(ds: Dataset, state: State, m: int, rows: np.ndarray, at: float) -> np.ndarray:
    """Mission features of company ``rows`` (of ``ds`` and ``state`` alike) for mission ``m`` as of ``at``."""
    return mission_features(
        state,
        ds.missions.sectors[m],
        ds.missions.cities[m],
        ds.missions.titles[m],
        ds.city_languages.get(ds.missions.cities[m], []),
        rows,
        past_missions(ds, m, at)[rows],
    )
