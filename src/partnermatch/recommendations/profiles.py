"""From database rows to what the model scores: keys, profile frames, and the state they are scored in.

The model knows every company and lead of its training snapshot by its key (external id, else id).
A row created after training, or changed since, is scored from its current profile: :func:`place` adds
those profiles to the model's state (known ones keep the history the model knows), and every scoring
path -- on demand, lead candidates, mission shortlists, the stored batch and its refresh jobs -- goes
through it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar
from uuid import UUID

import numpy as np
import numpy.typing as npt

from partnermatch.companies.models import Company
from partnermatch.leads.models import Lead
from partnermatch.ranking.data import EXPORT_LEVELS, LEAD_KINDS, Companies, Leads, deadline_end
from partnermatch.ranking.features import State, company_index, lead_index
from partnermatch.ranking.model import RankingModel

I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]
Profile = TypeVar("Profile", Company, Lead)

LEARNED = "learned"
# The same model, on a company or lead created after training: its features come from the profile alone.
COLD_START = "cold_start"


def scoring_time() -> float:
    """The instant that time features (lead age, days to the deadline) are computed as of: now. Every
    scoring path asks here, once per request or job, so that all of its pairs share one instant."""
    return time.time()


def method(company_new: bool, lead_new: bool) -> str:
    """How a pair was scored: ``cold_start`` when the model did not know the company or the lead."""
    return COLD_START if company_new or lead_new else LEARNED


def external_key(external_id: str | None, row_id: UUID) -> str:
    """The id a row has in an exported dataset, hence in the model's feature state."""
    return external_id or str(row_id)


def company_frame(rows: Sequence[Company]) -> Companies:
    """Database companies in the columns the feature code reads (as a dataset folder would give them)."""
    export = {v: i for i, v in enumerate(EXPORT_LEVELS)}
    return Companies(
        [external_key(c.external_id, c.id) for c in rows],
        [c.name for c in rows],
        [list(c.sectors) for c in rows],
        np.array([float(c.employees) for c in rows], dtype=np.float64),
        np.array([float(c.founded) for c in rows], dtype=np.float64),
        np.array([export.get(c.export_experience, 0) for c in rows], dtype=np.int64),
        [list(c.languages) for c in rows],
        [list(c.target_cities) for c in rows],
        [c.description for c in rows],
        np.array([c.registered_at.timestamp() for c in rows], dtype=np.float64),
    )


def lead_frame(rows: Sequence[Lead]) -> Leads:
    kinds = {v: i for i, v in enumerate(LEAD_KINDS)}
    return Leads(
        [external_key(r.external_id, r.id) for r in rows],
        [r.title for r in rows],
        np.array([kinds.get(r.kind, 0) for r in rows], dtype=np.int64),
        [r.city_id for r in rows],
        [list(r.sectors) for r in rows],
        [r.description for r in rows],
        [list(r.languages) for r in rows],
        np.array([math.nan if r.budget_eur is None else float(r.budget_eur) for r in rows], dtype=np.float64),
        np.array([r.published_at.timestamp() for r in rows], dtype=np.float64),
        np.array(
            [deadline_end(r.deadline.isoformat() if r.deadline else None) for r in rows], dtype=np.float64
        ),
    )


class Keyed(Protocol):
    """A company or lead row as far as scoring needs it to find the row in the model."""

    @property
    def id(self) -> UUID: ...
    @property
    def external_id(self) -> str | None: ...
    @property
    def updated_at(self) -> datetime: ...


@dataclass(frozen=True)
class Subject:
    """A company or lead to score: its key in the model, and its current profile when the model must encode
    it (unknown to the model, or changed since training)."""

    id: UUID
    key: str
    profile: Company | Lead | None = None


def needs_profile(known: Mapping[str, int], row: Keyed, trained_at: datetime) -> bool:
    """Unknown to the model (``known``: its company or lead index), or changed since it was trained."""
    return external_key(row.external_id, row.id) not in known or row.updated_at > trained_at


async def subjects(
    known: Mapping[str, int],
    rows: Sequence[Keyed],
    trained_at: datetime,
    profiles: Callable[[list[UUID]], Awaitable[Sequence[Profile]]],
) -> list[Subject]:
    """``rows`` as subjects; ``profiles`` loads the whole rows of those that need one."""
    stale = [row.id for row in rows if needs_profile(known, row, trained_at)]
    loaded = {p.id: p for p in await profiles(stale)} if stale else {}
    return [Subject(row.id, external_key(row.external_id, row.id), loaded.get(row.id)) for row in rows]


def loaded_subjects(known: Mapping[str, int], rows: Sequence[Profile], trained_at: datetime) -> list[Subject]:
    """Rows that are loaded whole already as subjects."""
    return [
        Subject(
            row.id,
            external_key(row.external_id, row.id),
            row if needs_profile(known, row, trained_at) else None,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Placed:
    """Subjects placed in the state they are scored in: their rows there, and which the model did not know
    (their results are ``cold_start``)."""

    state: State
    company_rows: I64
    company_new: Bool
    lead_rows: I64
    lead_new: Bool


def place(model: RankingModel, companies: Sequence[Subject], leads: Sequence[Subject]) -> Placed:
    """The model's state with the subjects' profiles added (``RankingModel.with_profiles``): a subject that
    carries a profile is scored from it, in a row appended after the fitted ones; the others keep their
    fitted rows. A subject the model does not know must carry its profile."""
    fitted = model.state_
    company_rows, encode_c = _rows(company_index(fitted), companies)
    lead_rows, encode_l = _rows(lead_index(fitted), leads)
    company_new, lead_new = company_rows < 0, lead_rows < 0
    state = model.with_profiles(
        company_frame([_profile(companies[i], Company) for i in encode_c]) if encode_c else None,
        lead_frame([_profile(leads[j], Lead) for j in encode_l]) if encode_l else None,
    )
    # Appended rows follow the fitted ones in the order given (see ProfiledState).
    company_rows[encode_c] = len(fitted.companies.ids) + np.arange(len(encode_c))
    lead_rows[encode_l] = len(fitted.leads.ids) + np.arange(len(encode_l))
    return Placed(state, company_rows, company_new, lead_rows, lead_new)


def _rows(index: Mapping[str, int], subjects: Sequence[Subject]) -> tuple[I64, list[int]]:
    rows = np.array([index.get(s.key, -1) for s in subjects], dtype=np.int64)
    encode = [i for i, s in enumerate(subjects) if s.profile is not None or rows[i] < 0]
    return rows, encode


def _profile(subject: Subject, kind: type[Profile]) -> Profile:
    if not isinstance(subject.profile, kind):
        raise ValueError(f"{subject.key} is unknown to the model and came without its profile")
    return subject.profile
