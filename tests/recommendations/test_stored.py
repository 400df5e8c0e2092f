"""Stored recommendations: the batch after training, refreshes on company and lead changes, serving."""

import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import numpy as np
import pytest
from httpx import AsyncClient as Client
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from partnermatch.companies.models import Company
from partnermatch.enums import InteractionKind, LeadStatus
from partnermatch.interactions.models import Interaction
from partnermatch.jobs import JobContext
from partnermatch.leads.models import Lead
from partnermatch.ranking.artifact import load
from partnermatch.ranking.features import FEATURE_NAMES, lead_blocks, lead_index, open_leads, stack
from partnermatch.ranking.reasons import EXPLAINABLE, NO_STRONG_REASON, explain_many, render
from partnermatch.recommendations import batch, refresh
from partnermatch.recommendations.batch import approved_subjects, store
from partnermatch.recommendations.models import ModelVersion, StoredRecommendation
from partnermatch.recommendations.profiles import Subject, external_key, loaded_subjects, place
from partnermatch.recommendations.registry import load_model
from partnermatch.recommendations.repository import SETTLED_KINDS
from partnermatch.recommendations.service import LeadCandidateService
from partnermatch.settings import Settings
from tests.recommendations.conftest import Trial
from tests.recommendations.test_recommendations import busiest_company, busiest_open_lead, recommend

S = StoredRecommendation


async def stored_rows(db_session: AsyncSession, **where: Any) -> list[StoredRecommendation]:
    """Rows as stored now, detached: ids are reused after a delete, so objects must not be shared."""
    query = select(S).order_by(S.company_id, S.ranking_score.desc(), S.lead_id)
    for name, value in where.items():
        query = query.where(getattr(S, name) == value)
    rows = list((await db_session.scalars(query.execution_options(populate_existing=True))).all())
    for row in rows:
        db_session.expunge(row)
    return rows


async def test_the_batch_stores_every_approved_companys_top_leads_as_on_demand_would_score_them(
    client: Client, db_session: AsyncSession, active_model: ModelVersion, held_clock: list[float]
) -> None:
    company_id = await busiest_company(db_session)
    on_demand = await recommend(client, company_id, limit=20)
    assert on_demand["source"] == "on_demand"
    timings = await store(db_session, active_model, 20)
    approved = await db_session.scalar(
        select(func.count()).select_from(Company).where(Company.status == "approved")
    )
    assert timings.companies == approved
    rows = await stored_rows(db_session)
    assert len(rows) == timings.rows > 0
    per_company: dict[UUID, list[StoredRecommendation]] = {}
    for r in rows:
        per_company.setdefault(r.company_id, []).append(r)
    assert max(len(v) for v in per_company.values()) == 20
    assert all(0.0 <= r.score <= 1.0 and r.reasons and r.model_version_id == active_model.id for r in rows)
    assert {r.method for r in rows} <= {"learned", "cold_start"}
    # Calibration is monotone: a list ordered by the model's score is ordered by probability too.
    for listed in per_company.values():
        scores = [r.score for r in listed]
        assert scores == sorted(scores, reverse=True)
    settled = set(
        (
            await db_session.execute(
                select(Interaction.company_id, Interaction.lead_id).where(Interaction.kind.in_(SETTLED_KINDS))
            )
        )
        .tuples()
        .all()
    )
    assert not settled & {(r.company_id, r.lead_id) for r in rows}
    open_ids = set(await db_session.scalars(select(Lead.id).where(Lead.status == LeadStatus.OPEN.value)))
    assert {r.lead_id for r in rows} <= open_ids

    body = await recommend(client, company_id, limit=10)
    assert body["source"] == "stored"
    mine = per_company[company_id]
    assert [i["lead_id"] for i in body["items"]] == [str(r.lead_id) for r in mine[:10]]
    assert [i["score"] for i in body["items"]] == [r.score for r in mine[:10]]
    assert [i["rank"] for i in body["items"]] == list(range(1, 11))
    # The same model scoring the same pairs on demand gave the same probabilities.
    scored = {UUID(i["lead_id"]): i["score"] for i in on_demand["items"]}
    shared = [r for r in mine if r.lead_id in scored]
    assert len(shared) >= 10
    assert all(abs(scored[r.lead_id] - r.score) < 1e-9 for r in shared)


async def test_filters_that_leave_fewer_rows_than_asked_of_a_cut_list_are_scored_on_demand(
    client: Client, db_session: AsyncSession, active_model: ModelVersion
) -> None:
    company_id = await busiest_company(db_session)
    fresh = await recommend(client, company_id, limit=5)
    assert fresh["source"] == "on_demand"
    await store(db_session, active_model, 5, [company_id])
    rows = await stored_rows(db_session, company_id=company_id)
    assert len(rows) == 5
    assert all(r.truncated for r in rows)
    assert (await recommend(client, company_id, limit=5))["source"] == "stored"
    asked_more = await recommend(client, company_id, limit=8)
    assert asked_more["source"] == "on_demand"
    assert len(asked_more["items"]) == 8
    stored_kinds = {(await db_session.get_one(Lead, r.lead_id)).kind for r in rows}
    other_kind = next(k for k in ("buyer", "distributor", "investor", "tender") if k not in stored_kinds)
    filtered = await recommend(client, company_id, limit=3, kind=other_kind)
    assert filtered["source"] == "on_demand"
    assert {i["kind"] for i in filtered["items"]} <= {other_kind}


async def test_closed_and_declined_leads_are_never_served_from_stored_rows(
    client: Client, db_session: AsyncSession, active_model: ModelVersion
) -> None:
    company_id = await busiest_company(db_session)
    await store(db_session, active_model, 30, [company_id])
    before = [i["lead_id"] for i in (await recommend(client, company_id, limit=10))["items"]]
    closed, declined = UUID(before[0]), UUID(before[1])
    # Closed behind the service's back: serving filters in SQL and does not rely on the refresh.
    (await db_session.get_one(Lead, closed)).status = LeadStatus.CLOSED.value
    await db_session.flush()
    response = await client.post(
        f"/api/v1/companies/{company_id}/feedback",
        json={"lead_id": str(declined), "kind": InteractionKind.DECLINED.value},
    )
    assert response.status_code == 201
    after = await recommend(client, company_id, limit=10)
    assert after["source"] == "stored"
    served = [i["lead_id"] for i in after["items"]]
    assert str(closed) not in served
    assert str(declined) not in served
    assert served[:8] == before[2:]


async def test_a_created_company_gets_rows_and_a_changed_one_is_recomputed(
    client: Client, db_session: AsyncSession, active_model: ModelVersion
) -> None:
    await store(db_session, active_model, 10)
    created = await client.post(
        "/api/v1/companies",
        json={
            "name": "Wasserstoff Technik GmbH",
            "sectors": ["27.11"],
            "employees": 40,
            "founded": 2012,
            "export_experience": "some",
            "target_cities": ["warsaw"],
            "description": "Electrolysers and hydrogen storage for industrial customers.",
        },
    )
    assert created.status_code == 201, created.text
    company_id = UUID(created.json()["id"])
    assert await stored_rows(db_session, company_id=company_id) == []  # pending: no recommendations
    approved = await client.post(f"/api/v1/companies/{company_id}/status", json={"status": "approved"})
    assert approved.status_code == 201, approved.text
    first = await stored_rows(db_session, company_id=company_id)
    assert first
    assert {r.method for r in first} == {"cold_start"}
    body = await recommend(client, company_id, limit=min(10, len(first)))
    assert body["source"] == "stored"
    assert [i["lead_id"] for i in body["items"]] == [str(r.lead_id) for r in first[: len(body["items"])]]

    changed = await client.patch(
        f"/api/v1/companies/{company_id}",
        json={"sectors": ["86.10"], "description": "Hospital software, patient records and telemedicine."},
    )
    assert changed.status_code == 200, changed.text
    second = await stored_rows(db_session, company_id=company_id)
    assert second
    assert min(r.computed_at for r in second) > max(r.computed_at for r in first)
    assert [r.lead_id for r in second] != [r.lead_id for r in first]
    renamed = await client.patch(f"/api/v1/companies/{company_id}", json={"name": "WT Holding GmbH"})
    assert renamed.status_code == 200
    # A name is no ranking feature: the rows stay as they were.
    assert [(r.id, r.computed_at) for r in await stored_rows(db_session, company_id=company_id)] == [
        (r.id, r.computed_at) for r in second
    ]
    archived = await client.delete(f"/api/v1/companies/{company_id}")
    assert archived.status_code == 200
    assert await stored_rows(db_session, company_id=company_id) == []


async def test_a_new_or_edited_lead_is_merged_into_the_lists_it_makes_and_a_closed_one_leaves(
    client: Client, db_session: AsyncSession, active_model: ModelVersion
) -> None:
    company_id = await busiest_company(db_session)
    await store(db_session, active_model, 10)
    best = (await stored_rows(db_session, company_id=company_id))[0]
    model_lead = await db_session.get_one(Lead, best.lead_id)
    # A twin of the company's best lead: the model should rank it at the top of the company's list too.
    twin = {
        "title": model_lead.title,
        "kind": model_lead.kind,
        "organization": "Twin Org",
        "city": model_lead.city_id,
        "sectors": model_lead.sectors,
        "description": model_lead.description,
        "languages": list(model_lead.languages),
    }
    started = datetime.now(UTC)
    created = await client.post("/api/v1/leads", json=twin)
    assert created.status_code == 201, created.text
    lead_id = UUID(created.json()["id"])
    rows = await stored_rows(db_session, lead_id=lead_id)
    assert company_id in {r.company_id for r in rows}
    assert all(r.method == "cold_start" and r.computed_at >= started and r.reasons for r in rows)
    # Lists stay at their length: the lowest row made room, and the list is now known to be cut.
    counts = dict(
        (await db_session.execute(select(S.company_id, func.count()).group_by(S.company_id))).tuples().all()
    )
    assert max(counts.values()) == 10
    mine = await stored_rows(db_session, company_id=company_id)
    assert len(mine) == 10
    assert all(r.truncated for r in mine)
    body = await recommend(client, company_id, limit=10)
    assert body["source"] == "stored"
    assert str(lead_id) in {i["lead_id"] for i in body["items"]}

    before = {r.company_id: r.ranking_score for r in rows}
    edited = await client.patch(
        f"/api/v1/leads/{lead_id}",
        json={
            "title": "Gravel supply",
            "description": "Bulk gravel and sand for road works.",
            "sectors": ["08.12"],
        },
    )
    assert edited.status_code == 200, edited.text
    after = {r.company_id: r.ranking_score for r in await stored_rows(db_session, lead_id=lead_id)}
    assert after != before
    assert company_id not in after or after[company_id] < before[company_id]

    closed = await client.post(f"/api/v1/leads/{lead_id}/status", json={"status": "closed"})
    assert closed.status_code == 201, closed.text
    assert await stored_rows(db_session, lead_id=lead_id) == []
    served = await recommend(client, company_id, limit=5)
    assert str(lead_id) not in {i["lead_id"] for i in served["items"]}


def every_contribution(model: Any, X: np.ndarray) -> list[dict[str, float]]:
    """The definition the batched reasons must keep: how much each explainable feature lifts a pair's score
    over the same pair with that feature at its median (a typical non-match), every variant scored."""
    names = [n for n in EXPLAINABLE if n in FEATURE_NAMES]
    width = len(names) + 1
    variants = np.repeat(X, width, axis=0)
    for i, name in enumerate(names):
        variants[i + 1 :: width, FEATURE_NAMES.index(name)] = model.medians_[FEATURE_NAMES.index(name)]
    score = model.score_pairs(variants, np.zeros(len(variants))).reshape(len(X), width)
    return [{name: float(s[0] - s[i + 1]) for i, name in enumerate(names)} for s in score]


def test_batched_reasons_are_those_of_every_contribution(trial: Trial) -> None:
    """``explain_many`` skips the variants that cannot change a sentence; the sentences must not change."""
    model = load(trial.trained.path)
    state = model.state_
    companies = [Subject(uuid4(), key) for key in state.companies.ids[:40]]
    leads = [Subject(uuid4(), state.leads.ids[j]) for j in open_leads(state)]
    placed = place(model, companies, leads)
    blocks = lead_blocks(placed.state, placed.company_rows, placed.lead_rows)
    score = model.learned_block(blocks, model.candidates(blocks))
    best = np.argsort(-score, axis=1)[:, :15]
    ri, ci = np.repeat(np.arange(len(best)), best.shape[1]), best.ravel()
    X = stack(blocks, ri, ci)
    company_rows, lead_rows = placed.company_rows[ri], placed.lead_rows[ci]
    expected = [
        render(
            placed.state,
            int(company_rows[j]),
            int(lead_rows[j]),
            dict(zip(FEATURE_NAMES, X[j].tolist(), strict=True)),
            lift,
            model.city_names_,
            3,
        )
        or [NO_STRONG_REASON]
        for j, lift in enumerate(every_contribution(model, X))
    ]
    assert sum(reasons != [NO_STRONG_REASON] for reasons in expected) > len(expected) // 2
    assert explain_many(model, placed.state, X, company_rows, lead_rows) == expected


async def test_a_change_commits_and_answers_even_when_its_recomputation_fails(
    client: Client,
    db_session: AsyncSession,
    active_model: ModelVersion,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    company_id = await busiest_company(db_session)
    await store(db_session, active_model, 10)
    assert await stored_rows(db_session, company_id=company_id)

    async def broken(prepared: batch.Prepared, version: ModelVersion, top: int) -> list[Any]:
        raise RuntimeError("scoring failed")

    monkeypatch.setattr(refresh, "rank_prepared", broken)
    with caplog.at_level(logging.WARNING, logger="partnermatch.background"):
        changed = await client.patch(
            f"/api/v1/companies/{company_id}", json={"description": "Wind turbine blades and their repair."}
        )
    assert changed.status_code == 200, changed.text
    assert "scoring failed" in caplog.text
    # The old profile's rows left with the change; until a job stores new ones, the company is scored on
    # demand from its new profile.
    assert await stored_rows(db_session, company_id=company_id) == []
    body = await recommend(client, company_id, limit=5)
    assert body["source"] == "on_demand"
    assert body["items"]


async def test_a_recomputation_overtaken_by_a_later_change_writes_nothing(
    db_session: AsyncSession,
    session_maker: async_sessionmaker[AsyncSession],
    settings: Settings,
    active_model: ModelVersion,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    company_id = await busiest_company(db_session)
    context = JobContext(session_maker, settings)
    ranked = batch.rank_prepared

    async def meanwhile_changed(prepared: batch.Prepared, version: ModelVersion, top: int) -> list[Any]:
        rows = await ranked(prepared, version, top)
        company = await db_session.get_one(Company, company_id)
        company.description = f"{company.description} Now also wind turbines."
        await db_session.flush()
        return rows

    monkeypatch.setattr(refresh, "rank_prepared", meanwhile_changed)
    await refresh.recompute_company(context, company_id=company_id)
    assert await stored_rows(db_session, company_id=company_id) == []
    # Without a change in between, the same job stores the list.
    monkeypatch.setattr(refresh, "rank_prepared", ranked)
    await refresh.recompute_company(context, company_id=company_id)
    assert await stored_rows(db_session, company_id=company_id)


async def test_on_demand_scores_a_company_changed_since_training_from_its_new_profile_and_old_history(
    client: Client, db_session: AsyncSession, active_model: ModelVersion, held_clock: list[float]
) -> None:
    company_id = await busiest_company(db_session)
    before = (await recommend(client, company_id, limit=20))["items"]
    company = await db_session.get_one(Company, company_id)
    company.description = "Bulk gravel, sand and crushed stone for road works and railway beds."
    await db_session.flush()
    assert company.updated_at > active_model.created_at
    answer = await recommend(client, company_id, limit=20)
    assert answer["source"] == "on_demand"
    after = answer["items"]
    assert [i["lead_id"] for i in after] != [i["lead_id"] for i in before]
    assert {i["method"] for i in after} == {"learned"}  # its history still counts: no cold start
    # The batch path encodes a changed profile again and keeps the history: the same scores.
    await store(db_session, active_model, 20, [company_id])
    stored = {str(r.lead_id): r.score for r in await stored_rows(db_session, company_id=company_id)}
    shared = [i for i in after if i["lead_id"] in stored]
    assert shared
    assert all(abs(stored[i["lead_id"]] - i["score"]) < 1e-9 for i in shared)


async def test_a_sector_change_alone_marks_the_company_and_the_lead_as_changed(
    client: Client, db_session: AsyncSession, active_model: ModelVersion
) -> None:
    """Sectors live in rows of their own; the change still moves ``updated_at``, which scoring compares
    with the training time to decide that the profile must be encoded again."""
    company_id = await busiest_company(db_session)
    company = await db_session.get_one(Company, company_id)
    lead = await db_session.get_one(Lead, await busiest_open_lead(db_session))
    seen = company.updated_at, lead.updated_at
    changed = await client.patch(f"/api/v1/companies/{company_id}", json={"sectors": ["08.12"]})
    assert changed.status_code == 200, changed.text
    edited = await client.patch(f"/api/v1/leads/{lead.id}", json={"sectors": ["08.12"]})
    assert edited.status_code == 200, edited.text
    await db_session.refresh(company)
    await db_session.refresh(lead)
    assert company.updated_at > seen[0]
    assert lead.updated_at > seen[1]
    assert company.updated_at > active_model.created_at


async def test_lead_candidates_score_a_lead_changed_since_training_from_its_new_profile_and_old_history(
    db_session: AsyncSession, active_model: ModelVersion, held_clock: list[float]
) -> None:
    lead = await db_session.get_one(Lead, await busiest_open_lead(db_session))
    candidates = LeadCandidateService(db_session)
    before = (await candidates.candidates(lead.id, 20)).items
    lead.title = "Gravel and sand supply"
    lead.description = "Bulk gravel, sand and crushed stone for road works and railway beds."
    await db_session.flush()
    assert lead.updated_at > active_model.created_at
    after = (await candidates.candidates(lead.id, 20)).items
    assert [c.company.id for c in after] != [c.company.id for c in before]
    assert {c.method for c in after} == {"learned"}  # its popularity and engagers still count
    # The merge job's scoring of the same changed lead (encoded again, history kept) gives the same scores.
    model = load_model(active_model)
    companies = await approved_subjects(db_session, model, active_model)
    (subject,) = loaded_subjects(lead_index(model.state_), [lead], active_model.created_at)
    raw, _ = refresh.score_lead(model, place(model, companies, [subject]), held_clock[0])
    expected = {c.id: float(p) for c, p in zip(companies, model.probability(raw), strict=True)}
    assert all(abs(expected[c.company.id] - c.score) < 1e-9 for c in after)


async def test_on_demand_scores_a_lead_changed_since_training_from_its_current_profile(
    client: Client, db_session: AsyncSession, active_model: ModelVersion, held_clock: list[float]
) -> None:
    """In another company's on-demand list, a lead edited after training is encoded from its current
    profile (with the history the model knows), not scored as the model remembers it."""
    company_id = await busiest_company(db_session)
    first = await recommend(client, company_id, limit=100)
    assert first["source"] == "on_demand"
    lead_id = UUID(first["items"][-1]["lead_id"])
    company = await db_session.get_one(Company, company_id)
    model = load_model(active_model)
    company_key = external_key(company.external_id, company.id)
    lead = await db_session.get_one(Lead, lead_id)
    lead_key = external_key(lead.external_id, lead.id)
    remembered = model.rank(company_key, [lead_key], limit=1, now=held_clock[0])[0].score
    # The lead now reads like the company's own profile.
    edited = await client.patch(
        f"/api/v1/leads/{lead_id}",
        json={"title": company.name, "description": company.description, "sectors": list(company.sectors)},
    )
    assert edited.status_code == 200, edited.text
    await db_session.refresh(lead)
    assert lead.updated_at > active_model.created_at
    answer = await recommend(client, company_id, limit=100)
    assert answer["source"] == "on_demand"
    items = {i["lead_id"]: i for i in answer["items"]}
    assert str(lead_id) in items
    assert items[str(lead_id)]["method"] == "learned"  # a known lead: its history still counts
    (subject,) = loaded_subjects(lead_index(model.state_), [lead], active_model.created_at)
    assert subject.profile is lead
    placed = place(model, [Subject(company.id, company_key)], [subject])
    current = model.rank(company_key, [lead_key], limit=1, state=placed.state, now=held_clock[0])[0].score
    assert abs(items[str(lead_id)]["score"] - current) < 1e-9
    assert abs(current - remembered) > 1e-6
