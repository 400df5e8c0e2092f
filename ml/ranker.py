"""The learned scorers, as scikit-learn estimators (parameters in ``__init__``, learned attributes end in ``_``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


class MonotoneCalibrator(BaseEstimator):  # type: ignore[misc]
    """Probability of interest from a raw score: isotonic regression, made strictly increasing.

    Plain isotonic regression is a step function: many raw scores share one probability, so a ranked list
    showed equal scores for leads of different rank. Here each isotonic step is replaced by a knot at its
    (weighted) mean raw score, the knots are joined linearly in log-odds, and beyond the outer knots the
    log-odds continue with the slope of the outer segment, at most one to one with the raw score. Each
    step's probability stays what isotonic regression fitted, at its centre, so the calibration is kept;
    the holdout metrics report it.
    """

    def __init__(self, eps: float = 1e-6) -> None:
        self.eps = eps

    def fit(
        self, raw: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> MonotoneCalibrator:
        raw = np.asarray(raw, dtype=np.float64)
        target = (np.asarray(y) >= 1).astype(np.float64)
        weight = np.ones(len(raw)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        isotonic = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(
            raw, target, sample_weight=weight
        )
        fitted = isotonic.predict(raw)
        steps, step = np.unique(fitted, return_inverse=True)
        centre = np.bincount(step, weights=weight * raw) / np.maximum(
            np.bincount(step, weights=weight), 1e-12
        )
        log_odds = _logit(np.clip(steps, self.eps, 1 - self.eps))
        keep = np.concatenate([[True], np.diff(log_odds) > 0]) & np.concatenate([[True], np.diff(centre) > 0])
        self.knots_ = centre[keep]
        self.log_odds_ = log_odds[keep]
        if len(self.knots_) < 2:
            # One step (no signal in the scores): a logistic fit keeps the order and the base rate.
            both = len(np.unique(target)) == 2
            if both:
                model = LogisticRegression().fit(raw[:, None], target, sample_weight=weight)
                slope, intercept = float(model.coef_[0, 0]), float(model.intercept_[0])
            else:
                slope, intercept = 1.0, float(self.log_odds_[0]) - float(self.knots_[0])
            slope = max(slope, 1e-6)
            self.knots_ = np.array([0.0, 1.0])
            self.log_odds_ = np.array([intercept, intercept + slope])
        # Beyond the data the tails trust the raw score (itself on a log-odds scale) at most at face value:
        # a steep outer segment would otherwise send the best leads to a probability of exactly 1.
        self.slopes_ = (
            min(1.0, float((self.log_odds_[1] - self.log_odds_[0]) / (self.knots_[1] - self.knots_[0]))),
            min(1.0, float((self.log_odds_[-1] - self.log_odds_[-2]) / (self.knots_[-1] - self.knots_[-2]))),
        )
        return self

    def predict(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        z = np.interp(raw, self.knots_, self.log_odds_)
        low, high = raw < self.knots_[0], raw > self.knots_[-1]
        z[low] = self.log_odds_[0] + self.slopes_[0] * (raw[low] - self.knots_[0])
        z[high] = self.log_odds_[-1] + self.slopes_[1] * (raw[high] - self.knots_[-1])
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def _logit(p: np.ndarray) -> np.ndarray:
    return np.asarray(np.log(p) - np.log1p(-p), dtype=np.float64)


class LeadRanker(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Gradient-boosted probability that a company acts on a lead (grade >= 1).

    Positives are weighted by their grade (a deal teaches more than a click on "interested") times their
    inverse propensity; ``calibrate`` fits an isotonic map on a held-out part passed to :meth:`calibrate`.
    """

    def __init__(
        self,
        max_iter: int = 250,
        learning_rate: float = 0.06,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        categorical_features: tuple[int, ...] = (),
        random_state: int = 0,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.categorical_features = categorical_features
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> LeadRanker:
        categorical: Any = list(self.categorical_features) or None
        self.model_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            categorical_features=categorical,
            early_stopping=False,
            random_state=self.random_state,
        ).fit(X, (np.asarray(y) >= 1).astype(int), sample_weight=sample_weight)
        self.classes_ = np.array([0, 1])
        self.calibrator_: IsotonicRegression | None = None
        self.n_features_in_ = X.shape[1]
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_.decision_function(X), dtype=np.float64)

    def calibrate(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> LeadRanker:
        """Isotonic calibration on held-out pairs, weighted so that they stand for all candidates."""
        self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(
            self.decision_function(X), (np.asarray(y) >= 1).astype(float), sample_weight=sample_weight
        )
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        score = self.decision_function(X)
        if self.calibrator_ is not None:
            p = np.asarray(self.calibrator_.predict(score), dtype=np.float64)
        else:
            p = 1.0 / (1.0 + np.exp(-score))
        return np.column_stack([1 - p, p])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


class MissionRanker(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Regularised logistic regression for mission participation: few missions, so a simple model."""

    def __init__(self, C: float = 0.3, random_state: int = 0) -> None:
        self.C = C
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> MissionRanker:
        self.model_ = make_pipeline(
            StandardScaler(),
            LogisticRegression(
                C=self.C, class_weight="balanced", max_iter=2000, random_state=self.random_state
            ),
        ).fit(np.nan_to_num(X, nan=-1.0), (np.asarray(y) >= 1).astype(int))
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_.decision_function(np.nan_to_num(X, nan=-1.0)), dtype=np.float64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(np.nan_to_num(X, nan=-1.0)), dtype=np.float64)
