"""Every reason a person reads: why a lead suits a company (the features that lifted its score, with their
evidence), why a company suits a trade mission, and how the shortlist placed it.

A reason is data (:class:`Reason`: what it says and its evidence as codes and numbers), stored so, and put
into words only when it is read (:func:`sentence`): in English for the API, in the reader's language in
the portal, whose catalogs translate the English templates below (marked for extraction with ``N_``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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


def N_(message: str) -> str:
    """Marks an English template for the catalogs (babel extracts ``N_``); translated when it is read."""
    return message


def NP_(context: str, message: str) -> str:
    """As :func:`N_`, for a word whose translation depends on the sentence it is used in."""
    return message


def NN_(singular: str, plural: str) -> tuple[str, str]:
    """As :func:`N_`, for a sentence with a count: its singular and plural templates."""
    return singular, plural


@dataclass(frozen=True)
class Reason:
    """One reason: ``key`` names the sentence (:data:`TEMPLATES`), ``params`` its evidence, as codes and
    numbers (a sector code, a city id, a lead kind, a count) that each language words itself."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def stored(self) -> dict[str, Any]:
        return {"key": self.key, "params": dict(self.params)}

    @classmethod
    def from_stored(cls, value: Mapping[str, Any]) -> Reason:
        return cls(str(value["key"]), dict(value.get("params", {})))


TEMPLATES: dict[str, str] = {
    "same_sector": N_("Same sector: {code} {sector}"),
    "sector_affinity": N_("Companies in your sector often pursue leads like this"),
    "shared_terms": N_("Shared terms: {terms}"),
    "similar_pursued": N_("Similar to leads that companies like yours pursued"),
    "targets_city": N_("You target {city}"),
    "shared_language": N_("You share a working language"),
    "exporters_some": N_("{kinds} here favour exporters — you export to some extent"),
    "exporters_extensive": N_("{kinds} here favour exporters — you export extensively"),
    "size_suits": N_("Your size suits {kinds}"),
    "age_suits": N_("Your company's age suits {kinds}"),
    "deadline_today": N_("Deadline today"),
    "deadline_tomorrow": N_("Deadline tomorrow"),
    "deadline_days": N_("Deadline in {days} days"),
    "no_strong_signal": N_("No single strong signal: ranked by the model's overall fit"),
    "sector_focus": N_("Sector focus: {code} {sector}"),
    "targets_mission_city": N_("Targets {city}"),
    "sme": N_("SME ({employees} employees)"),
    "large_company": N_("Large company ({employees} employees)"),
    "division_place": N_("Division {division}: place {place} of at most {places}"),
}
# Sentences with a count: (singular, plural) templates.
COUNTED: dict[str, tuple[str, str]] = {
    "interested": NN_("{count} company is already interested", "{count} companies are already interested"),
    "earlier_missions": NN_("Took part in {count} earlier mission", "Took part in {count} earlier missions"),
}
# How a lead kind is named in a sentence: as its subject ("Buyers here favour ...") and after "suits".
KIND_SUBJECT = {
    "buyer": NP_("kinds favour exporters", "Buyers"),
    "distributor": NP_("kinds favour exporters", "Distributors"),
    "investor": NP_("kinds favour exporters", "Investors"),
    "research_partner": NP_("kinds favour exporters", "Research partners"),
    "tender": NP_("kinds favour exporters", "Tenders"),
    "joint_venture": NP_("kinds favour exporters", "Joint-venture partners"),
}
KIND_AFTER_SUITS = {
    "buyer": NP_("suits kinds", "buyers"),
    "distributor": NP_("suits kinds", "distributors"),
    "investor": NP_("suits kinds", "investors"),
    "research_partner": NP_("suits kinds", "research partners"),
    "tender": NP_("suits kinds", "tenders"),
    "joint_venture": NP_("suits kinds", "joint-venture partners"),
}
# Reasons name only features that lifted the score; a low-ranked pair may have none, and still gets one.
NO_STRONG_REASON = Reason("no_strong_signal")


class Scorer(Protocol):
    """What reasons need of the fitted model (``ranking.model.RankingModel``, which renders its reasons here)."""

    medians_: npt.NDArray[np.float32]
    city_names_: dict[str, str]

    def score_pairs(self, X: npt.NDArray[np.float32], blend: npt.ArrayLike, variant: str = ...) -> Any: ...


class Words(Protocol):
    """A language to put reasons into words: its catalog and its names of sectors and cities."""

    def gettext(self, message: str) -> str: ...
    def ngettext(self, singular: str, plural: str, n: int) -> str: ...
    def pgettext(self, context: str, message: str) -> str: ...
    def sector(self, code: str) -> str: ...
    def city(self, city_id: str, name: str) -> str: ...


class English:
    """The templates as they are; NACE Rev. 2's English titles; the cities' stored names."""

    def gettext(self, message: str) -> str:
        return message

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return singular if n == 1 else plural

    def pgettext(self, context: str, message: str) -> str:
        return message

    def sector(self, code: str) -> str:
        return sector_names().get(code, "")

    def city(self, city_id: str, name: str) -> str:
        return name


ENGLISH = English()


def sentence(reason: Reason, words: Words = ENGLISH) -> str:
    """The reason in words; a deadline counts the days that ``params["days"]`` holds."""
    params = dict(reason.params)
    key = reason.key
    if key == "deadline":
        days = int(params.get("days", 0))
        key = "deadline_today" if days <= 0 else "deadline_tomorrow" if days == 1 else "deadline_days"
    if "code" in params:
        params["sector"] = words.sector(str(params["code"]))
    if "city" in params:
        params["city"] = words.city(str(params["city"]), str(params.get("city_name", params["city"])))
    if "kind" in params:
        kinds = KIND_AFTER_SUITS if key in ("size_suits", "age_suits") else KIND_SUBJECT
        context = "suits kinds" if kinds is KIND_AFTER_SUITS else "kinds favour exporters"
        params["kinds"] = words.pgettext(context, kinds[str(params["kind"])])
    if "terms" in params:
        params["terms"] = ", ".join(params["terms"])
    if key in COUNTED:
        singular, plural = COUNTED[key]
        template = words.ngettext(singular, plural, int(params["count"]))
    else:
        template = words.gettext(TEMPLATES[key])
    return template.format(**params).strip()


def with_deadline(reasons: Sequence[Reason], deadline: date | None, today: date) -> tuple[Reason, ...]:
    """Stored reasons as of today: a deadline counts from the day it is read, not the day it was stored."""
    if deadline is None:
        return tuple(reasons)
    days = max(0, (deadline - today).days)
    return tuple(Reason("deadline", {"days": days}) if r.key == "deadline" else r for r in reasons)


def days_left(deadline_end: float, now: float) -> int:
    """Calendar days from ``now``'s Berlin date to the deadline's, given the end of the deadline day."""
    return max(0, math.ceil((deadline_end - now) / DAY) - 1)


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
) -> list[Reason]:
    """Reasons for the features with the largest positive contributions, best first. Features are as of
    the state's time; a deadline counts from ``now`` (default: that time), the day it is read."""
    cities = _names(state.vocabulary)[-1]
    kind = LEAD_KINDS[int(state.leads.kind[lead])]
    out: list[Reason] = []
    for feature in sorted(contributions, key=lambda f: -contributions[f]):
        if contributions[feature] <= 0 or feature not in EXPLAINABLE or len(out) >= limit:
            continue
        value = values.get(feature, 0.0)
        rule = SAYABLE.get(feature)
        if rule is not None and not rule(np.float64(value)):  # comparing a NaN scalar does not warn
            continue
        reason: Reason | None = None
        if feature == "nace_depth":
            code = _shared_code(state, company, lead)
            if code:
                reason = Reason("same_sector", {"code": code})
        elif feature == "affinity_max":
            reason = Reason("sector_affinity")
        elif feature == "tfidf_word":
            terms = shared_terms(state, company, lead)
            if terms:
                reason = Reason("shared_terms", {"terms": terms})
        elif feature in ("translated_cosine", "history_cosine"):
            reason = Reason("similar_pursued")
        elif feature == "city_target":
            city = cities.get(int(state.leads.city[lead]), "")
            reason = Reason("targets_city", {"city": city, "city_name": city_names.get(city, city)})
        elif feature == "language_overlap":
            reason = Reason("shared_language")
        elif feature == "export":
            level = EXPORT_LEVELS[int(state.companies.export[company])]
            if level != "none":
                reason = Reason(f"exporters_{level}", {"kind": kind})
        elif feature == "log_employees":
            reason = Reason("size_suits", {"kind": kind})
        elif feature == "company_age":
            reason = Reason("age_suits", {"kind": kind})
        elif feature == "days_to_deadline":
            deadline_end = float(state.leads.deadline_end[lead])
            reason = Reason("deadline", {"days": days_left(deadline_end, state.at if now is None else now)})
        elif feature == "lead_positives":
            reason = Reason("interested", {"count": round(float(np.expm1(value)))})
        if reason is not None and reason not in out:
            out.append(reason)
    return out


def explain_many(
    model: Scorer,
    state: State,
    X: np.ndarray,
    company_rows: np.ndarray,
    lead_rows: np.ndarray,
    limit: int = 3,
    now: float | None = None,
) -> list[list[Reason]]:
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
) -> tuple[Reason, ...]:
    """Why a company suits a trade mission, from facts staff can check in its profile."""
    wanted = {code[:2] for code in mission_sectors}
    reasons = []
    shared = [code for code in company_sectors if code[:2] in wanted]
    if shared:
        reasons.append(Reason("sector_focus", {"code": shared[0]}))
    if mission_city in company_targets:
        reasons.append(Reason("targets_mission_city", {"city": mission_city, "city_name": city_name}))
    if past_missions:
        reasons.append(Reason("earlier_missions", {"count": past_missions}))
    return tuple(reasons)


def shortlist_reasons(
    is_sme: bool, employees: int, division: str, place: int, places: int
) -> tuple[Reason, ...]:
    """How the shortlist's rules placed a company: its size class and its division's share of places."""
    size = Reason("sme" if is_sme else "large_company", {"employees": employees})
    return (size, Reason("division_place", {"division": division, "place": place, "places": places}))
