"""The protocol's metrics against values worked out by hand."""

import math

import numpy as np
import pytest
from ml.metrics import (
    average_precision_at,
    calibration,
    coverage_at,
    evaluate_rankings,
    mean_ndcg,
    ndcg,
    ndcg_at,
    ndcg_curve,
    query_groups,
    recall_at,
)


def test_ndcg_uses_grade_gains_and_the_ideal_from_all_relevant_candidates() -> None:
    # Relevant: a (grade 2) at rank 2, b (grade 1) at rank 4, c (grade 3) not in the list.
    relevance = {"a": 2, "b": 1, "c": 3}
    ranked = ["x", "a", "y", "b"]
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    ideal = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at(ranked, relevance, 10) == pytest.approx(dcg / ideal)
    # At k = 1 the ideal is the best single grade.
    assert ndcg_at(["c"], relevance, 1) == pytest.approx(1.0)
    assert ndcg_at(["a"], relevance, 1) == pytest.approx(2 / 3)


def test_map_is_normalised_by_min_relevant_and_k() -> None:
    relevance = {"a": 1, "b": 4, "c": 1}
    # Hits at ranks 1 and 3: (1/1 + 2/3) / min(3, 50).
    assert average_precision_at(["a", "x", "b"], relevance, 50) == pytest.approx((1 + 2 / 3) / 3)
    # With k = 2 only the first hit counts, divided by min(3, 2) = 2.
    assert average_precision_at(["a", "x", "b"], relevance, 2) == pytest.approx(0.5)


def test_recall_counts_grade_one_and_up() -> None:
    relevance = {"a": 1, "b": 0, "c": 2}
    assert recall_at(["b", "a"], relevance, 50) == pytest.approx(0.5)


def test_coverage_is_the_share_of_the_catalogue_in_anyone_top_k() -> None:
    rankings = [["a", "b", "c"], ["a", "d"]]
    assert coverage_at(rankings, 10, 2) == pytest.approx(3 / 10)
    assert coverage_at(rankings, 4, 10) == pytest.approx(1.0)


def test_queries_without_relevant_candidates_are_left_out_of_the_means() -> None:
    rankings = {"q1": ["a", "b"], "q2": ["a", "b"]}
    relevance = {"q1": {"a": 1}, "q2": {"z": 0}}
    result = evaluate_rankings(rankings, relevance, catalogue_size=2)
    assert result["queries"] == 1
    assert result["ndcg@10"] == pytest.approx(1.0)
    assert result["coverage@10"] == pytest.approx(1.0)
    curve = result["ndcg_curve"]
    assert isinstance(curve, list)
    assert len(curve) == 50


def test_the_curve_is_ndcg_at_every_k() -> None:
    ranked, gains = [0, 2, 0, 1, 3, 0], [2, 1, 3, 0, 0, 1]
    curve = ndcg_curve(ranked, gains, 8)
    assert curve == pytest.approx([ndcg(ranked, gains, k) for k in range(1, 9)])
    assert ndcg([0, 0], [0, 0], 5) == 0.0
    assert list(ndcg_curve([], [0], 3)) == [0.0, 0.0, 0.0]


def test_mean_ndcg_ranks_each_query_by_its_own_scores() -> None:
    score = [0.9, 0.1, 0.5, 0.2, 0.8]
    grade = [0, 1, 1, 2, 0]
    query = [7, 7, 3, 3, 7]
    groups = query_groups(query)
    # Query 3 ranks its grade-1 pair above its grade-2 one; query 7 its positive last of three.
    expected = (ndcg([1, 2], [1, 2], 10) + ndcg([0, 0, 1], [0, 1, 0], 10)) / 2
    assert mean_ndcg(score, grade, groups) == pytest.approx(expected)


def test_calibration_error_is_the_pair_weighted_gap_of_equal_count_bins() -> None:
    predicted = np.array([0.1] * 10 + [0.5] * 10)
    observed = np.array([1] + [0] * 9 + [1] * 5 + [0] * 5)
    exact = calibration(predicted, observed, bins=2)
    assert exact["ece"] == pytest.approx(0.0)
    assert [b["observed"] for b in exact["curve"]] == pytest.approx([0.1, 0.5])
    # Predicting 0.1 too high in every bin is an error of 0.1.
    assert calibration(predicted + 0.1, observed, bins=2)["ece"] == pytest.approx(0.1)
    assert sum(b["pairs"] for b in exact["curve"]) == 20
