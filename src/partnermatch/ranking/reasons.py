"""Per-pair reasons: the features that contributed most, rendered with their evidence."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from partnermatch.ranking.data import EXPORT_LEVELS, LEAD_KINDS
from partnermatch.ranking.features import FEATURE_NAMES, State, Vocabulary, code_path, sector_names

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


def _codes(state: State, row: int, side: str) -> list[str]:
    codes = state.companies.codes if side == "company" else state.leads.codes
    names = _names(state.vocabulary)
    found = [names[3][i] for i in codes.levels[3][row].indices]
    found += [names[2][i] for i in codes.levels[2][row].indices]
    found += [names[1][i] for i in codes.levels[1][row].indices]
    return found


def shared_terms(state: State, company: int, lead: int, limit: int = 3) -> list[str]:
    a, b = state.companies.words[company], state.leads.words[lead]
    common = np.intersect1d(a.indices, b.indices)
    if len(common) == 0:
        return []
    weight = np.asarray(a[:, common].toarray()).ravel() * np.asarray(b[:, common].toarray()).ravel()
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
) -> list[str]:
    """Sentences for the features with the largest positive contributions, best first."""
    names = sector_names()
    cities = _names(state.vocabulary)[-1]
    kind = LEAD_KINDS[int(state.leads.kind[lead])]
    out: list[str] = []
    for feature in sorted(contributions, key=lambda f: -contributions[f]):
        if contributions[feature] <= 0 or feature not in EXPLAINABLE or len(out) >= limit:
            continue
        value = values.get(feature, 0.0)
        text: str | None = None
        if feature == "nace_depth" and value >= 2:
            code = _shared_code(state, company, lead)
            if code:
                text = f"Same sector: {code} {names.get(code, '')}".strip()
        elif feature == "affinity_max" and value > 0.3:
            text = "Companies in your sector often pursue leads like this"
        elif feature == "tfidf_word" and value > 0:
            terms = shared_terms(state, company, lead)
            if terms:
                text = "Shared terms: " + ", ".join(terms)
        elif feature in ("translated_cosine", "history_cosine") and value > 0.3:
            text = "Similar to leads that companies like yours pursued"
        elif feature == "city_target" and value > 0:
            city = cities.get(int(state.leads.city[lead]), "")
            text = f"You target {city_names.get(city, city)}"
        elif feature == "language_overlap" and value > 0:
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
        elif feature == "days_to_deadline" and np.isfinite(value) and value >= 0:
            text = f"Deadline in {int(value)} days"
        elif feature == "lead_positives" and value > 0:
            text = f"{round(np.expm1(value))} companies are already interested"
        if text and text not in out:
            out.append(text)
    return out


def feature_index(name: str) -> int:
    return FEATURE_NAMES.index(name)
