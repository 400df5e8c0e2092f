import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partnermatch.ranking.reasons import sentence
from partnermatch.ranking.shortlist import Candidate, ShortlistRules, select_shortlist


def candidate(name: str, score: float, division: str = "62", employees: int = 10) -> Candidate:
    return Candidate(company_id=name, score=score, division=division, employees=employees)


def test_loose_rules_and_no_diversity_take_the_top_scores() -> None:
    pool = [candidate(f"c{i}", score=i / 10, division=f"{10 + i}") for i in range(10)]
    shortlist = select_shortlist(
        pool, ShortlistRules(capacity=3, max_division_share=1, min_sme_share=0, diversity=0)
    )
    assert [p.candidate.company_id for p in shortlist.picks] == ["c9", "c8", "c7"]
    assert [p.rank for p in shortlist.picks] == [1, 2, 3]


def test_division_share_caps_one_sector() -> None:
    pool = [candidate(f"it{i}", 0.9 - i / 100, "62") for i in range(8)] + [candidate("food", 0.1, "10")]
    shortlist = select_shortlist(pool, ShortlistRules(capacity=4, max_division_share=0.5, diversity=0))
    divisions = [p.candidate.division for p in shortlist.picks]
    assert divisions.count("62") == 2
    assert "food" in [p.candidate.company_id for p in shortlist.picks]
    assert any("place 2 of at most 2" in sentence(r) for p in shortlist.picks for r in p.reasons)


def test_sme_share_is_reserved_even_when_large_firms_score_higher() -> None:
    pool = [candidate(f"big{i}", 0.9, f"{20 + i}", employees=5000) for i in range(5)]
    pool += [candidate(f"sme{i}", 0.2, f"{40 + i}", employees=40) for i in range(5)]
    shortlist = select_shortlist(pool, ShortlistRules(capacity=4, min_sme_share=0.5, diversity=0))
    assert sum(p.candidate.is_sme for p in shortlist.picks) == 2
    assert len(shortlist.picks) == 4


def test_excluded_companies_never_appear_and_shortfalls_are_reported() -> None:
    pool = [candidate("invited", 0.99), candidate("a", 0.5, employees=900), candidate("b", 0.4, "10", 900)]
    shortlist = select_shortlist(pool, ShortlistRules(capacity=2, min_sme_share=0.5), excluded={"invited"})
    assert "invited" not in [p.candidate.company_id for p in shortlist.picks]
    assert shortlist.shortfalls == ["only 0 SMEs among the candidates for 1 SME places"]


def test_diversity_prefers_a_different_profile_over_a_near_copy() -> None:
    same, other = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    pool = [
        Candidate("first", 0.9, "62", 10, same),
        Candidate("copy", 0.85, "63", 10, same),
        Candidate("different", 0.8, "71", 10, other),
    ]
    shortlist = select_shortlist(pool, ShortlistRules(capacity=2, max_division_share=1, diversity=0.5))
    assert [p.candidate.company_id for p in shortlist.picks] == ["first", "different"]


def test_rules_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="capacity"):
        ShortlistRules(capacity=0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1), st.sampled_from(["10", "26", "62", "71"]), st.integers(1, 2000)),
        max_size=40,
    ),
    st.integers(1, 15),
    st.floats(0.1, 1),
    st.floats(0, 1),
)
def test_every_shortlist_keeps_the_rules(
    rows: list[tuple[float, str, int]], capacity: int, division_share: float, sme_share: float
) -> None:
    pool = [candidate(f"c{i}", s, d, e) for i, (s, d, e) in enumerate(rows)]
    rules = ShortlistRules(capacity=capacity, max_division_share=division_share, min_sme_share=sme_share)
    shortlist = select_shortlist(pool, rules)
    picked = [p.candidate for p in shortlist.picks]
    assert len(picked) <= capacity
    assert len({c.company_id for c in picked}) == len(picked)
    for division in {c.division for c in picked}:
        assert sum(c.division == division for c in picked) <= rules.places_per_division
    smes_available = sum(c.is_sme for c in pool)
    if len(picked) == min(capacity, len(pool)):
        assert sum(c.is_sme for c in picked) >= min(rules.sme_places, smes_available, len(picked))
    else:
        assert shortlist.shortfalls
