"""Trade-mission shortlists: the best-scored companies, under the mission's rules, not all alike.

A greedy selection in the spirit of maximal marginal relevance: each step takes the candidate with the
best score minus a penalty for resembling those already chosen, among the candidates that keep every
rule satisfiable (capacity, at most a share of places per NACE division, at least a share of SMEs).
Greedy is not optimal, but it is explainable step by step, which a shortlist staff must defend needs.
"""

import math
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from partnermatch.ranking.reasons import Reason, shortlist_reasons

SME_EMPLOYEE_LIMIT = 250  # EU definition: fewer than 250 employees


@dataclass(frozen=True)
class Candidate:
    company_id: str
    score: float
    division: str
    employees: int
    # Unit-length profile vector (for example sector and text topics); None: no diversity penalty.
    profile: NDArray[np.float64] | None = None
    reasons: tuple[Reason, ...] = ()

    @property
    def is_sme(self) -> bool:
        return self.employees < SME_EMPLOYEE_LIMIT


@dataclass(frozen=True)
class ShortlistRules:
    capacity: int
    max_division_share: float = 0.4
    min_sme_share: float = 0.5
    diversity: float = 0.3  # weight of the resemblance penalty, 0 = rank by score alone

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError("capacity must be at least 1")
        if not 0 < self.max_division_share <= 1 or not 0 <= self.min_sme_share <= 1:
            raise ValueError("shares must lie in (0, 1] and [0, 1]")
        if not 0 <= self.diversity < 1:
            raise ValueError("diversity must lie in [0, 1)")

    @property
    def places_per_division(self) -> int:
        return max(1, math.floor(self.max_division_share * self.capacity))

    @property
    def sme_places(self) -> int:
        return math.ceil(self.min_sme_share * self.capacity)


@dataclass(frozen=True)
class Pick:
    candidate: Candidate
    rank: int
    reasons: tuple[Reason, ...]


@dataclass
class Shortlist:
    picks: list[Pick] = field(default_factory=list)
    # Rules that could not be met with the candidates there were, said plainly for staff.
    shortfalls: list[str] = field(default_factory=list)


def select_shortlist(
    candidates: Sequence[Candidate], rules: ShortlistRules, excluded: Collection[str] = ()
) -> Shortlist:
    """`excluded`: companies already invited or that declined; they never appear."""
    pool = [c for c in candidates if c.company_id not in excluded]
    pool.sort(key=lambda c: (-c.score, c.company_id))
    slots = min(rules.capacity, len(pool))
    smes_available = sum(c.is_sme for c in pool)
    sme_target = min(rules.sme_places, smes_available)
    result = Shortlist()
    if smes_available < rules.sme_places:
        result.shortfalls.append(
            f"only {smes_available} SMEs among the candidates for {rules.sme_places} SME places"
        )
    per_division: Counter[str] = Counter()
    smes = 0
    chosen: list[Candidate] = []
    while len(chosen) < slots:
        places_left = slots - len(chosen)
        smes_needed = max(0, sme_target - smes)
        best: tuple[float, Candidate] | None = None
        for candidate in pool:
            if per_division[candidate.division] >= rules.places_per_division:
                continue
            if not candidate.is_sme and smes_needed >= places_left:
                continue
            value = (1 - rules.diversity) * candidate.score - rules.diversity * _resemblance(
                candidate, chosen
            )
            if best is None or value > best[0]:
                best = (value, candidate)
        if best is None:
            result.shortfalls.append(
                f"{slots - len(chosen)} places left empty: every remaining candidate would exceed "
                f"{rules.places_per_division} places per sector division or leave too few SME places"
            )
            break
        pick = best[1]
        pool.remove(pick)
        per_division[pick.division] += 1
        smes += pick.is_sme
        chosen.append(pick)
        result.picks.append(Pick(pick, len(chosen), _reasons(pick, per_division, rules)))
    return result


def _resemblance(candidate: Candidate, chosen: Sequence[Candidate]) -> float:
    if candidate.profile is None:
        return 0.0
    similarities = [float(candidate.profile @ c.profile) for c in chosen if c.profile is not None]
    return max(similarities, default=0.0)


def _reasons(pick: Candidate, per_division: Counter[str], rules: ShortlistRules) -> tuple[Reason, ...]:
    placed = shortlist_reasons(
        pick.is_sme, pick.employees, pick.division, per_division[pick.division], rules.places_per_division
    )
    return (*pick.reasons, *placed)
