"""Features are computed as of a time: nothing at or after it may change them."""

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from partnermatch.ranking.data import (
    CONTACTED,
    DEAL,
    GRADE,
    Dataset,
    Interactions,
    berlin_date,
    default_cutoff,
)
from partnermatch.ranking.features import (
    FEATURE_NAMES,
    State,
    TextModel,
    Vocabulary,
    build_state,
    candidate_mask,
    code_path,
    lead_blocks,
    open_leads,
)


def _with_extra(ds: Dataset, company: int, lead: int, kind: int, at: float) -> Dataset:
    it = ds.interactions
    extra = Interactions(
        np.append(it.company, company),
        np.append(it.lead, lead),
        np.append(it.kind, kind),
        np.append(it.at, at),
        np.append(it.position, np.nan),
    )
    return replace(ds, interactions=extra)


def test_default_cutoff_is_the_positive_at_index_floor_08n(dataset: Dataset) -> None:
    it = dataset.interactions
    positive_times = sorted(float(t) for t, g in zip(it.at, it.grade, strict=True) if g >= 1)
    n = len(positive_times)
    assert default_cutoff(it) == positive_times[int(0.8 * n)]
    assert positive_times[0] <= default_cutoff(it) <= positive_times[-1]


def test_default_cutoff_on_a_hand_made_log() -> None:
    # Positives at 10, 20, 30, 40, 50 (N = 5): index floor(4.0) = 4 -> 50; the view at 60 does not count.
    times = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    kinds = np.array([2, 4, 5, 6, 2, 1])
    it = Interactions(
        np.zeros(6, dtype=np.int64), np.zeros(6, dtype=np.int64), kinds, times, np.full(6, np.nan)
    )
    assert default_cutoff(it) == 50.0
    assert list(GRADE[kinds]) == [1, 2, 3, 4, 1, 0]


def test_an_interaction_after_the_as_of_time_changes_no_feature(
    dataset: Dataset, text_models: tuple[Vocabulary, TextModel]
) -> None:
    at = default_cutoff(dataset.interactions)
    vocab, text = text_models
    before = build_state(dataset, at, vocab, text)
    companies = np.arange(len(dataset.companies))
    leads = open_leads(before)
    blocks = lead_blocks(before, companies, leads)
    # A deal with a sector-mismatched lead, one second after the as-of time, and one exactly at it.
    changed = _with_extra(dataset, 0, int(leads[0]), DEAL, at + 1.0)
    changed = _with_extra(changed, 1, int(leads[1]), CONTACTED, at)
    after = build_state(changed, at, vocab, text)
    blocks_after = lead_blocks(after, companies, leads)
    for name in FEATURE_NAMES:
        np.testing.assert_array_equal(blocks[name], blocks_after[name], err_msg=name)
    # The same deal just before the as-of time does change behavioural features.
    earlier = build_state(_with_extra(dataset, 0, int(leads[0]), DEAL, at - 1.0), at, vocab, text)
    assert earlier.company_positives[0] == before.company_positives[0] + 1
    assert not np.array_equal(
        lead_blocks(earlier, companies, leads)["lead_positives"], blocks["lead_positives"]
    )


def test_nace_depth_is_the_best_match_over_both_sides_codes(dataset: Dataset, state: State) -> None:
    leads = open_leads(state)
    blocks = lead_blocks(state, np.arange(50), leads)
    for c in range(50):
        for j in range(0, len(leads), 7):
            paths_c = [code_path(code) for code in dataset.companies.sectors[c]]
            paths_l = [code_path(code) for code in dataset.leads.sectors[leads[j]]]
            best = 0
            for a in paths_c:
                for b in paths_l:
                    shared = 0
                    for x, y in zip(a, b, strict=False):
                        if x != y:
                            break
                        shared += 1
                    best = max(best, shared)
            assert blocks["nace_depth"][c, j] == best


def test_code_path_walks_up_the_hierarchy() -> None:
    assert code_path("62.01") == ["J", "62", "62.0", "62.01"]
    assert code_path("62") == ["J", "62"]
    assert code_path("C") == ["C"]


def test_open_leads_follow_the_berlin_deadline_day(dataset: Dataset, state: State) -> None:
    at = state.at
    chosen = set(open_leads(state).tolist())
    day = berlin_date(at)
    for j in range(len(dataset.leads)):
        published = dataset.leads.published[j] < at
        end = dataset.leads.deadline_end[j]
        # deadline_end is the start of the next Berlin day, so "open" means the cutoff's date <= deadline.
        still_open = not np.isfinite(end) or day <= berlin_date(end - 1)
        assert (j in chosen) == (published and still_open)


def test_candidates_include_the_top_of_every_source(dataset: Dataset, state: State) -> None:
    leads = open_leads(state)
    blocks = lead_blocks(state, np.arange(20), leads)
    per_source = 5
    mask = candidate_mask(blocks, per_source)
    assert (mask.sum(axis=1) >= per_source).all()
    assert (mask.sum(axis=1) <= 5 * per_source).all()
    text = blocks["tfidf_word"] + blocks["tfidf_char"] + blocks["topic_cosine"] + blocks["translated_cosine"]
    assert mask[np.arange(20), np.argmax(text, axis=1)].all()
    assert not mask.all()


@pytest.mark.parametrize("kind", ["view", "impression"])
def test_exposure_alone_is_not_a_positive(kind: str) -> None:
    from partnermatch.ranking.data import EVENT_KINDS

    assert GRADE[EVENT_KINDS.index(kind)] == 0


def test_a_request_and_a_batch_chunk_get_the_same_features(dataset: Dataset, state: State) -> None:
    # A few companies are scored against the view of every lead and gathered, a chunk against its own lead
    # set: the two paths must agree, or on-demand scores would drift from the stored batch ones.
    leads = open_leads(state)
    some = leads[::3]
    chunk = lead_blocks(state, np.arange(40), some)
    for company in (0, 17, 39):
        request = lead_blocks(state, np.array([company]), some)
        for name in FEATURE_NAMES:
            np.testing.assert_allclose(
                request[name][0], chunk[name][company], rtol=1e-5, atol=1e-6, err_msg=name
            )


def test_a_state_of_new_companies_scores_them_like_the_appended_state(dataset: Dataset, state: State) -> None:
    from dataclasses import fields

    from partnermatch.ranking.features import (
        COMPANY_FIELDS,
        blank_company_history,
        encode_companies,
        new_company_state,
    )

    newcomers = encode_companies(state.vocabulary, state.text, dataset.companies.take([4, 9]))
    alone = new_company_state(state, newcomers)
    assert len(alone.companies.ids) == 2
    assert all(
        getattr(alone, f.name) is getattr(state, f.name)
        for f in fields(State)
        if f.name not in COMPANY_FIELDS
    )
    blank = blank_company_history(state, 2)
    appended = replace(
        state,
        companies=replace(
            state.companies,
            ids=[*state.companies.ids, *newcomers.ids],
            words=sp.vstack([state.companies.words, newcomers.words]).tocsr(),
            chars=sp.vstack([state.companies.chars, newcomers.chars]).tocsr(),
            topics=np.vstack([state.companies.topics, newcomers.topics]),
            targets=sp.vstack([state.companies.targets, newcomers.targets]).tocsr(),
            languages=sp.vstack([state.companies.languages, newcomers.languages]).tocsr(),
            codes=type(state.companies.codes)(
                [
                    sp.vstack([a, b]).tocsr()
                    for a, b in zip(state.companies.codes.levels, newcomers.codes.levels, strict=True)
                ],
                np.vstack([state.companies.codes.divisions, newcomers.codes.divisions]),
            ),
            log_employees=np.concatenate([state.companies.log_employees, newcomers.log_employees]),
            founded=np.concatenate([state.companies.founded, newcomers.founded]),
            export=np.concatenate([state.companies.export, newcomers.export]),
            registered=np.concatenate([state.companies.registered, newcomers.registered]),
        ),
        **{name: np.concatenate([getattr(state, name), value]) for name, value in blank.items()},
    )
    leads = open_leads(state)
    n = len(state.companies.ids)
    small = lead_blocks(alone, np.array([0, 1]), leads)
    large = lead_blocks(appended, np.array([n, n + 1]), leads)
    for name in FEATURE_NAMES:
        np.testing.assert_allclose(small[name], large[name], rtol=1e-6, atol=1e-7, err_msg=name)
    # The new rows have no history: their history feature is missing, not zero.
    assert np.isnan(small["history_cosine"]).all()
