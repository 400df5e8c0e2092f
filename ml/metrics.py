"""The protocol's metrics (shared/dataset-format.md, "Evaluation protocol")."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np


def dcg(gains: Sequence[float], k: int) -> float:
    return float(sum(g / math.log2(i + 2) for i, g in enumerate(list(gains)[:k])))


def ndcg_at(ranked: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    """Gain = grade, discount 1/log2(rank + 1); the ideal DCG uses all relevant candidates."""
    ideal = dcg(sorted((g for g in relevance.values() if g > 0), reverse=True), k)
    if ideal == 0:
        return 0.0
    return dcg([relevance.get(item, 0) for item in ranked[:k]], k) / ideal


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
        curve += [ndcg_at(ranked, rel, k) for k in range(1, max_k + 1)]
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
