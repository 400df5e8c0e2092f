"""The protocol's metrics (shared/dataset-format.md, "Evaluation protocol")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt


def ndcg(ranked_gains: npt.ArrayLike, gains: npt.ArrayLike, k: int) -> float:
    """NDCG@k: gain = grade, discount 1/log2(rank + 1), the ideal DCG from all ``gains`` (every
    candidate's grade; the ranked list's own come in ``ranked_gains``, best first)."""
    ideal = np.sort(np.asarray(gains, dtype=np.float64))[::-1][:k]
    if not len(ideal) or ideal[0] <= 0:
        return 0.0
    ranked = np.asarray(ranked_gains, dtype=np.float64)[:k]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    return float((ranked * discount[: len(ranked)]).sum()) / float((ideal * discount[: len(ideal)]).sum())


def ndcg_curve(ranked_gains: npt.ArrayLike, gains: npt.ArrayLike, max_k: int) -> npt.NDArray[np.float64]:
    """:func:`ndcg` for k = 1..max_k at once (cumulative sums; equal up to rounding, a test checks)."""
    ranked = np.asarray(ranked_gains, dtype=np.float64)[:max_k]
    ideal = np.sort(np.asarray(gains, dtype=np.float64))[::-1][:max_k]
    if not len(ideal) or ideal[0] <= 0:
        return np.zeros(max_k)
    discount = 1.0 / np.log2(np.arange(2, max_k + 2))
    dcg = np.cumsum(np.pad(ranked * discount[: len(ranked)], (0, max_k - len(ranked))))
    best = np.cumsum(np.pad(ideal * discount[: len(ideal)], (0, max_k - len(ideal))))
    return np.asarray(dcg / best, dtype=np.float64)


def ndcg_at(ranked: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    return ndcg([relevance.get(item, 0) for item in ranked[:k]], list(relevance.values()), k)


def query_groups(query: npt.ArrayLike) -> list[npt.NDArray[np.int64]]:
    """Positions of each query's pairs."""
    query = np.asarray(query)
    order = np.argsort(query, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(query[order])) + 1) if len(order) else []


def mean_ndcg(
    score: npt.ArrayLike, grade: npt.ArrayLike, groups: Sequence[npt.NDArray[np.int64]], k: int = 10
) -> float:
    """Mean NDCG@k over queries of scored pairs (``groups``: see :func:`query_groups`); each query ranks
    its own pairs by score."""
    score, grade = np.asarray(score), np.asarray(grade)
    if not groups:
        return 0.0
    return float(np.mean([ndcg(grade[g][np.argsort(-score[g], kind="stable")], grade[g], k) for g in groups]))


def recall_at(ranked: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    relevant = {item for item, g in relevance.items() if g >= 1}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def average_precision_at(ranked: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    """AP@k normalised by min(number relevant, k)."""
    relevant = {item for item, g in relevance.items() if g >= 1}
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for i, item in enumerate(ranked[:k]):
        if item in relevant:
            hits += 1
            total += hits / (i + 1)
    return total / min(len(relevant), k)


def coverage_at(rankings: Iterable[Sequence[str]], catalogue_size: int, k: int) -> float:
    """Share of the candidate items that appear in anyone's top k."""
    if catalogue_size == 0:
        return 0.0
    seen: set[str] = set()
    for ranked in rankings:
        seen.update(ranked[:k])
    return len(seen) / catalogue_size


def evaluate_rankings(
    rankings: Mapping[str, Sequence[str]],
    relevance: Mapping[str, Mapping[str, int]],
    catalogue_size: int,
    max_k: int = 50,
) -> dict[str, float | list[float] | int]:
    """Metrics averaged over the queries with at least one relevant candidate; NDCG@k for k = 1..max_k."""
    queries = [q for q in rankings if any(g >= 1 for g in relevance.get(q, {}).values())]
    curve = np.zeros(max_k)
    recall = ap = 0.0
    for q in queries:
        ranked, rel = rankings[q], relevance[q]
        curve += ndcg_curve([rel.get(item, 0) for item in ranked[:max_k]], list(rel.values()), max_k)
        recall += recall_at(ranked, rel, 50)
        ap += average_precision_at(ranked, rel, 50)
    n = max(1, len(queries))
    return {
        "queries": len(queries),
        "ndcg@10": float(curve[9] / n) if max_k >= 10 else 0.0,
        "recall@50": recall / n,
        "map@50": ap / n,
        "coverage@10": coverage_at(rankings.values(), catalogue_size, 10),
        "ndcg_curve": [float(v / n) for v in curve],
    }


def calibration(probability: np.ndarray, relevant: np.ndarray, bins: int = 15) -> dict[str, Any]:
    """Expected calibration error and the reliability curve of predicted probabilities against outcomes.

    Bins hold equal numbers of pairs (by predicted probability): interest is rare, so equal-width bins
    would put almost every pair in the first one. ECE is the pair-weighted mean gap between a bin's mean
    prediction and its observed rate."""
    p = np.asarray(probability, dtype=np.float64)
    y = np.asarray(relevant, dtype=np.float64)
    if len(p) == 0:
        return {"ece": float("nan"), "pairs": 0, "curve": []}
    order = np.argsort(p, kind="stable")
    curve = []
    ece = 0.0
    for part in np.array_split(order, min(bins, len(p))):
        mean_p, rate = float(p[part].mean()), float(y[part].mean())
        ece += len(part) / len(p) * abs(mean_p - rate)
        curve.append({"predicted": mean_p, "observed": rate, "pairs": len(part)})
    return {"ece": ece, "pairs": len(p), "base_rate": float(y.mean()), "curve": curve}
