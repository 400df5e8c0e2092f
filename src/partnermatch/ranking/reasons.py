"""Every reason sentence a person reads: why a lead suits a company (the features that lifted its score,
with their evidence), why a company suits a trade mission, and how the shortlist placed it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from partnermatch.ranking.data import EXPORT_LEVELS, LEAD_KINDS
from partnermatch.ranking.features import DAY, FEATURE_NAMES, State, Vocabulary, code_path, sector_names

# Features a person can check; the others (popularity, activity) still score but make poor reasons.
EXPLAINABLE = (
    "nace_depth",
    "affinity_max",
    "tfidf_word",
    "translated_cosine",
    "history_cosine",
    "city_target",
    "language_overlap",
    "export",
    "log_employees",
    "company_age",
    "days_to_deadline",
    "lead_positives",
)
# The values ``render`` can put into words, per feature (vectorised: ``explain_many`` asks for whole columns).
# A feature not listed is always sayable.
SAYABLE: dict[str, Any] = {
    "nace_depth": lambda v: v >= 2,
    "affinity_max": lambda v: v > 0.3,
    "tfidf_word": lambda v: v > 0,
    "translated_cosine": lambda v: v > 0.3,
    "history_cosine": lambda v: v > 0.3,
    "city_target": lambda v: v > 0,
    "language_overlap": lambda v: v > 0,
    "export": lambda v: v > 0,
    "days_to_deadline": lambda v: np.isfinite(v) & (v >= 0),
    "lead_positives": lambda v: v > 0,
}
DEADLINE_PREFIX = "Deadline "
# Reasons name only features that lifted the score; a low-ranked pair may have none, and still gets one.
NO_STRONG_REASON = "No single strong signal: ranked by the model's overall fit"


class Scorer(Protocol):
    """What reasons need of the fitted model (``ranking.model.RankingModel``, which renders its reasons here)."""

    medians_: npt.NDArray[np.float32]
    city_names_: dict[str, str]

    def score_pairs(self, X: npt.NDArray[np.float32], blend: npt.ArrayLike, variant: str = ...) -> Any: ...


def deadline_reason(days_left: int) -> str:
    """The deadline sentence for a deadline ``days_left`` calendar days (Berlin) from today."""
    if days_left == 0:
        return "Deadline today"
    if days_left == 1:
        return "Deadline tomorrow"
    return f"Deadline in {days_left} days"


def days_left(deadline_end: float, now: float) -> int:
    """Calendar days from ``now``'s Berlin date to the deadline's, given the end of the deadline day."""
    return max(0, math.ceil((deadline_end - now) / DAY) - 1)


def current_reasons(reasons: Sequence[str], deadline: date | None, today: date) -> tuple[str, ...]:
    """Stored reasons as of today: their deadline sentence was written on the batch's day."""
    return tuple(
        deadline_reason((deadline - today).days)
        if deadline is not None and reason.startswith(DEADLINE_PREFIX)
        else reason
        for reason in reasons
    )


KIND_PLURAL = {
    "buyer": "Buyers",
    "distributor": "Distributors",
    "investor": "Investors",
    "research_partner": "Research partners",
    "tender": "Tenders",
    "joint_venture": "Joint-venture partners",
}


def _shared_code(state: State, company: int, lead: int) -> str | None:
    company_codes = {p for code in _codes(state, company, "company") for p in code_path(code)}
    best: str | None = None
    for code in _codes(state, lead, "lead"):
        for part in reversed(code_path(code)):
            if part in company_codes and (best is None or len(part) > len(best)):
                best = part
    return best


def _names(vocabulary: Vocabulary) -> list[dict[int, str]]:
    """Index -> code per level, and index -> city as the last entry; built once per fitted vocabulary (every
    reason of every request reads them)."""
    found: list[dict[int, str]] | None = vocabulary.__dict__.get("_names")
    if found is None:
        found = [{i: code for code, i in level.items()} for level in vocabulary.levels]
        found.append({i: city for city, i in vocabulary.cities.items()})
        vocabulary.__dict__["_names"] = found
    return found


def _row(matrix: Any, row: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of one row of a CSR matrix. Slicing the row out as a matrix cost ~0.1 ms
    per call, a third of a request's reasons; the row's stretch of the CSR arrays is the same data."""
    if getattr(matrix, "format", None) != "csr":
        one = matrix.tocsr()[row]
        return one.indices, one.data
    start, end = matrix.indptr[row], matrix.indptr[row + 1]
    return matrix.indices[start:end], matrix.data[start:end]


def _codes(state: State, row: int, side: str) -> list[str]:
    codes = state.companies.codes if side == "company" else state.leads.codes
    names = _names(state.vocabulary)
    found = [names[3][i] for i in _row(codes.levels[3], row)[0]]
    found += [names[2][i] for i in _row(codes.levels[2], row)[0]]
    found += [names[1][i] for i in _row(codes.levels[1], row)[0]]
    return found


def shared_terms(state: State, company: int, lead: int, limit: int = 3) -> list[str]:
    a_index, a_value = _row(state.companies.words, company)
    b_index, b_value = _row(state.leads.words, lead)
    common, in_a, in_b = np.intersect1d(a_index, b_index, assume_unique=True, return_indices=True)
    if len(common) == 0:
        return []
    weight = a_value[in_a] * b_value[in_b]
    # A shared city name ("los angeles") is the city-targeting reason's job, not evidence of a shared offer.
    city_words = {word for city in state.vocabulary.cities for word in city.split("-")}
    terms = [str(state.text.vocabulary_[i]) for i in common[np.argsort(-weight)]]
    return [t for t in terms if not set(t.split()) & city_words][:limit]


def render(
    state: State,
    company: int,
    lead: int,
    values: Mapping[str, float],
    contributions: Mapping[str, float],
    city_names: Mapping[str, str],
    limit: int = 3,
    now: float | None = None,
) -> list[str]:
    """Sentences for the features with the largest positive contributions, best first. Features are as of
    the state's time; the deadline sentence counts from ``now`` (default: that time), the day it is read."""
    names = sector_names()
    cities = _names(state.vocabulary)[-1]
    kind = LEAD_KINDS[int(state.leads.kind[lead])]
    out: list[str] = []
    for feature in sorted(contributions, key=lambda f: -contributions[f]):
        if contributions[feature] <= 0 or feature not in EXPLAINABLE or len(out) >= limit:
            continue
        value = values.get(feature, 0.0)
        rule = SAYABLE.get(feature)
        if rule is not None and not rule(np.float64(value)):  # comparing a NaN scalar does not warn
            continue
        text: str | None = None
        if feature == "nace_depth":
            code = _shared_code(state, company, lead)
            if code:
                text = f"Same sector: {code} {names.get(code, '')}".strip()
        elif feature == "affinity_max":
            text = "Companies in your sector often pursue leads like this"
        elif feature == "tfidf_word":
            terms = shared_terms(state, company, lead)
            if terms:
                text = "Shared terms: " + ", ".join(terms)
        elif feature in ("translated_cosine", "history_cosine"):
            text = "Similar to leads that companies like yours pursued"
        elif feature == "city_target":
            city = cities.get(int(state.leads.city[lead]), "")
            text = f"You target {city_names.get(city, city)}"
        elif feature == "language_overlap":
            text = "You share a working language"
        elif feature == "export":
            level = EXPORT_LEVELS[int(state.companies.export[company])]
            if level != "none":
                text = f"{KIND_PLURAL[kind]} here favour exporters — you export {level}ly".replace(
                    "somely", "to some extent"
                )
        elif feature == "log_employees":
            text = f"Your size suits {KIND_PLURAL[kind].lower()}"
        elif feature == "company_age":
            text = f"Your company's age suits {KIND_PLURAL[kind].lower()}"
        elif feature == "days_to_deadline":
            deadline_end = float(state.leads.deadline_end[lead])
            text = deadline_reason(days_left(deadline_end, state.at if now is None else now))
        elif feature == "lead_positives":
            text = f"{round(np.expm1(value))} companies are already interested"
        if text and text not in out:
            out.append(text)
    return out


def explain_many(
    model: Scorer,
    state: State,
    X: np.ndarray,
    company_rows: np.ndarray,
    lead_rows: np.ndarray,
    limit: int = 3,
    now: float | None = None,
) -> list[list[str]]:
    """Reasons of many pairs in one model call, at least one per pair (:data:`NO_STRONG_REASON`).

    A feature's contribution is how much it lifts the pair's score over the same pair with that feature at
    its median (a typical non-match). Scoring that variant for every explainable feature would cost 12
    model calls' worth of rows per pair (most of the batch's cost); only the variants that can change the
    sentences are scored here: a feature whose value is the median contributes nothing, and one whose value
    ``render`` would not put into words (no shared sector, no targeted city, ...) is skipped by it whatever its
    contribution. The result is the same (tests compare both)."""
    if not len(X):
        return []
    names = [n for n in EXPLAINABLE if n in FEATURE_NAMES]
    columns = np.array([FEATURE_NAMES.index(n) for n in names], dtype=np.int64)
    medians = np.asarray(model.medians_, dtype=np.float32)[columns]
    values = X[:, columns]
    same = (values == medians) | (np.isnan(values) & np.isnan(medians))
    rows, features = np.nonzero(~same & _sayable(names, values))
    variants = np.concatenate([X, X[rows]])
    variants[len(X) + np.arange(len(rows)), columns[features]] = medians[features]
    score = model.score_pairs(variants, np.zeros(len(variants)))
    lift = score[: len(X)][rows] - score[len(X) :]
    lifts: list[dict[str, float]] = [{} for _ in range(len(X))]
    for r, f, v in zip(rows.tolist(), features.tolist(), lift.tolist(), strict=True):
        lifts[r][names[f]] = v
    out = []
    for j, contributions in enumerate(lifts):
        feature_values = dict(zip(FEATURE_NAMES, X[j].tolist(), strict=True))
        why = render(
            state,
            int(company_rows[j]),
            int(lead_rows[j]),
            feature_values,
            contributions,
            model.city_names_,
            limit,
            now,
        )
        out.append(why or [NO_STRONG_REASON])
    return out


def _sayable(names: Sequence[str], values: np.ndarray) -> np.ndarray:
    """Where ``render`` can put a feature's value into words (:data:`SAYABLE`), column by column."""
    with np.errstate(invalid="ignore"):
        columns = [
            SAYABLE[name](values[:, k]) if name in SAYABLE else np.ones(len(values), dtype=bool)
            for k, name in enumerate(names)
        ]
    return np.column_stack(columns) if columns else np.zeros(values.shape, dtype=bool)


def mission_reasons(
    company_sectors: Sequence[str],
    company_targets: Sequence[str],
    past_missions: int,
    mission_sectors: Sequence[str],
    mission_city: str,
    city_name: str,
) -> tuple[str, ...]:
    """Why a company suits a trade mission, from facts staff can check in its profile."""
    names = sector_names()
    wanted = {code[:2] for code in mission_sectors}
    reasons = []
    shared = [code for code in company_sectors if code[:2] in wanted]
    if shared:
        reasons.append(f"Sector focus: {shared[0]} {names.get(shared[0], '')}".rstrip())
    if mission_city in company_targets:
        reasons.append(f"Targets {city_name}")
    if past_missions:
        reasons.append(f"Took part in {past_missions} earlier mission(s)")
    return tuple(reasons)


def shortlist_reasons(
    is_sme: bool, employees: int, division: str, place: int, places: int
) -> tuple[str, ...]:
    """How the shortlist's rules placed a company: its size class and its division's share of places."""
    size = f"SME ({employees} employees)" if is_sme else f"Large company ({employees} employees)"
    return (size, f"Division {division}: place {place} of at most {places}")
