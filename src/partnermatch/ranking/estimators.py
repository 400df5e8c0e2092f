"""The learned scorers, as scikit-learn estimators (parameters in ``__init__``, learned attributes end in ``_``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder, StandardScaler
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads


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
        max_iter: int = 150,
        learning_rate: float = 0.1,
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
        flat = self._flat_forest()
        if len(X) * self.model_.n_iter_ <= SMALL_BATCH_CELLS:
            return flat.decision_function(X)
        return flat.tree_by_tree(X)

    def _flat_forest(self) -> FlatForest:
        flat = self.__dict__.get("_flat")
        if flat is None or flat.model is not self.model_:
            flat = FlatForest(self.model_)
            self.__dict__["_flat"] = flat
        return flat

    def __getstate__(self) -> dict[str, Any]:
        # A cache, rebuilt on first use: the artifact holds only the fitted model.
        state: dict[str, Any] = super().__getstate__()
        state.pop("_flat", None)
        return state

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


# Rows x trees up to which the forest is walked with numpy: scikit-learn's predictor enters an OpenMP
# region per tree, a fixed cost of tens of microseconds per tree (several times that on a busy machine)
# that dominates a few dozen rows. Measured crossover on an idle 2-core machine: 15k-30k cells.
SMALL_BATCH_CELLS = 20_000


class FlatForest:
    """The trees of a fitted binary HistGradientBoostingClassifier as flat arrays, walked for all rows and
    trees at once. Same leaves as scikit-learn's predictor (tests compare the raw scores); built from its
    fitted internals, which the artifact's pinned scikit-learn version keeps stable."""

    def __init__(self, model: HistGradientBoostingClassifier) -> None:
        self.model = model
        trees = [iteration[0] for iteration in model._predictors]
        sizes = np.array([len(t.nodes) for t in trees], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        nodes = np.concatenate([t.nodes for t in trees])
        shift = np.repeat(offsets, sizes)
        own = np.arange(len(nodes), dtype=np.int64)
        leaf = nodes["is_leaf"].astype(bool)
        # A leaf points to itself, so every row can take the same number of steps.
        self.left = np.where(leaf, own, nodes["left"].astype(np.int64) + shift)
        self.right = np.where(leaf, own, nodes["right"].astype(np.int64) + shift)
        self.feature = nodes["feature_idx"].astype(np.int64)
        self.threshold = nodes["num_threshold"].astype(np.float64)
        self.missing_left = nodes["missing_go_to_left"].astype(bool)
        self.value = nodes["value"].astype(np.float64)
        self.roots = offsets
        self.leaf = leaf
        self.categorical = nodes["is_categorical"].astype(bool)
        self.baseline = float(np.asarray(model._baseline_prediction).ravel()[0])
        # Per categorical split, which category codes (0..255) go left; per feature, which are known.
        bitsets = [t.raw_left_cat_bitsets for t in trees]
        bitset_shift = np.repeat(np.cumsum([0] + [len(b) for b in bitsets])[:-1], sizes)
        self.bitset = nodes["bitset_idx"].astype(np.int64) + bitset_shift
        all_bitsets = np.concatenate(bitsets) if any(len(b) for b in bitsets) else np.zeros((0, 8), np.uint32)
        self.goes_left = _unpack(all_bitsets)
        self.known_bitsets, self.f_idx_map = model._bin_mapper.make_known_categories_bitsets()
        self.known = _unpack(np.asarray(self.known_bitsets, dtype=np.uint32))
        self.known_row = np.asarray(self.f_idx_map, dtype=np.int64)
        self.columns, self.categories = _layout(model)

    def _preprocess(self, X: np.ndarray) -> np.ndarray:
        """What the model's own column transformer does (categorical columns first, as category codes;
        unknown categories NaN), without its per-call overhead of milliseconds."""
        if self.columns is None:
            return np.ascontiguousarray(self.model._preprocess_X(X, reset=False), dtype=np.float64)
        data = np.asarray(X)[:, self.columns].astype(np.float64)
        for position, categories in self.categories:
            value = data[:, position]
            code = np.minimum(np.searchsorted(categories, value), len(categories) - 1)
            data[:, position] = np.where(categories[code] == value, code, np.nan)
        return data

    def tree_by_tree(self, X: np.ndarray) -> np.ndarray:
        """scikit-learn's own tree walk (fast for many rows), after the cheap preprocessing above."""
        data = self._preprocess(X)
        threads = _openmp_effective_n_threads()
        raw = np.full(len(data), self.baseline, dtype=np.float64)
        for (tree,) in self.model._predictors:
            raw += tree.predict(
                data, known_cat_bitsets=self.known_bitsets, f_idx_map=self.f_idx_map, n_threads=threads
            )
        return raw

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        data = self._preprocess(X)
        n_rows, n_trees = len(data), len(self.roots)
        node = np.tile(self.roots, n_rows)
        row = np.repeat(np.arange(n_rows, dtype=np.int64), n_trees)
        # Only the cells still inside a tree take the next step: paths end at different depths.
        active = np.flatnonzero(~self.leaf[node])
        while len(active):
            at = node[active]
            feature = self.feature[at]
            x = data[row[active], feature]
            missing = np.isnan(x)
            go_left = x <= self.threshold[at]
            categorical = np.flatnonzero(self.categorical[at])
            if len(categorical):
                c = x[categorical]
                usable = ~np.isnan(c) & (c >= 0) & (c <= 255)
                code = np.where(usable, c, 0).astype(np.int64)
                # scikit-learn's order: a left category goes left, another known one right, the rest
                # (negative, unseen) where missing values go.
                left = usable & self.goes_left[self.bitset[at[categorical]], code]
                known = usable & self.known[self.known_row[feature[categorical]], code]
                missing[categorical] = ~(left | known)
                go_left[categorical] = left
            go_left = np.where(missing, self.missing_left[at], go_left)
            node[active] = np.where(go_left, self.left[at], self.right[at])
            active = active[~self.leaf[node[active]]]
        return np.asarray(
            self.baseline + self.value[node].reshape(n_rows, n_trees).sum(axis=1), dtype=np.float64
        )


def _layout(model: HistGradientBoostingClassifier) -> tuple[np.ndarray | None, list[tuple[int, np.ndarray]]]:
    """The preprocessor's column order and each ordinal-encoded column's sorted categories; ``None`` when
    it is not the plain encoder + passthrough that scikit-learn builds for ``categorical_features``."""
    transformer = getattr(model, "_preprocessor", None)
    if transformer is None:
        return None, []
    order: list[int] = []
    categories: list[tuple[int, np.ndarray]] = []
    for name, step, selection in transformer.transformers_:
        mask = np.asarray(selection)
        columns = np.flatnonzero(mask) if mask.dtype == bool else mask.astype(np.int64)
        if name == "remainder" and not len(columns):
            continue
        if isinstance(step, OrdinalEncoder):
            if step.handle_unknown != "use_encoded_value" or not np.isnan(step.unknown_value):
                return None, []
            for k, known in enumerate(step.categories_):
                known = np.asarray(known, dtype=np.float64)
                if np.isnan(known).any() or np.any(np.diff(known) <= 0):
                    return None, []
                categories.append((len(order) + k, known))
        elif not isinstance(step, FunctionTransformer):
            return None, []
        order.extend(int(c) for c in columns)
    return np.array(order, dtype=np.int64), categories


def _unpack(bitsets: np.ndarray) -> np.ndarray:
    """(n, 8) uint32 bitsets -> (n, 256) booleans, bit i of the 256 being category i."""
    if not len(bitsets):
        return np.zeros((0, 256), dtype=bool)
    as_bytes = np.ascontiguousarray(bitsets, dtype="<u4").view(np.uint8).reshape(len(bitsets), 32)
    return np.unpackbits(as_bytes, axis=1, bitorder="little").astype(bool)
