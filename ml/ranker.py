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
