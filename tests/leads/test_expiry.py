"""The lead expiry job: open leads whose deadline has passed in Berlin are closed as staff close them.

A deadline on day D holds through the end of D in Berlin: on 14 March 2026 (CET, UTC+1) the last
second is 22:59:59 UTC, and the job that runs at 23:00 UTC (still the 14th in UTC) closes the lead."""

from datetime import UTC, date, datetime
from uuid import UUID

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from partnermatch.app import subscribe_to_events
from partnermatch.audit import recorder
from partnermatch.audit.models import AuditEvent
from partnermatch.enums import LeadKind, LeadStatus
from partnermatch.jobs import JobContext
from partnermatch.leads import service
from partnermatch.leads.models import Lead
from partnermatch.leads.service import expire_leads
from partnermatch.recommendations.models import ModelVersion, StoredRecommendation
from partnermatch.settings import Settings
from tests.conftest import TransactionCounter, create_company

LAST_SECOND_OF_14_MARCH = datetime(2026, 3, 14, 22, 59, 59, tzinfo=UTC)
BERLIN_MIDNIGHT_14_TO_15 = datetime(2026, 3, 14, 23, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def wired() -> None:
    """What create_app wires: the subscribers of domain events, and the audit recorder (both idempotent)."""
    recorder.install()
    subscribe_to_events()


@pytest.fixture
def context(session_maker: async_sessionmaker[AsyncSession], settings: Settings) -> JobContext:
    return JobContext(session_maker, settings)


async def add_lead(
    db_session: AsyncSession, deadline: date | None, status: LeadStatus = LeadStatus.OPEN
) -> UUID:
    lead = Lead(
        title=f"Lead until {deadline}",
        kind=LeadKind.BUYER.value,
        organization="Miasto Stołeczne Warszawa",
        city_id="warsaw",
        published_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
        deadline=deadline,
        status=status.value,
    )
    db_session.add(lead)
    await db_session.flush()
    return lead.id


async def statuses(db_session: AsyncSession, ids: list[UUID]) -> dict[UUID, str]:
    rows = await db_session.execute(select(Lead.id, Lead.status).where(Lead.id.in_(ids)))
    return dict(rows.tuples().all())


async def status_changes(db_session: AsyncSession, ids: list[UUID]) -> list[AuditEvent]:
    rows = await db_session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.entity == "leads",
            AuditEvent.entity_id.in_([str(i) for i in ids]),
            AuditEvent.operation == "update",
        )
        .order_by(AuditEvent.at, AuditEvent.id)
    )
    return list(rows.all())


async def store_rows(db_session: AsyncSession, company_id: UUID, lead_ids: list[UUID]) -> None:
    version = ModelVersion(
        version="expiry-test",
        artifact_path="unused.joblib",
        sha256="0" * 64,
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
        sklearn_version="0",
        # Inactive: no merge job follows the change; a closed lead's rows of every version go anyway.
        is_active=False,
    )
    db_session.add(version)
    await db_session.flush()
    for rank, lead_id in enumerate(lead_ids):
        db_session.add(
            StoredRecommendation(
                model_version_id=version.id,
                company_id=company_id,
                lead_id=lead_id,
                ranking_score=1.0 - rank / 10,
                score=0.5,
                method="model",
                reasons=[],
                truncated=False,
                computed_at=datetime(2026, 3, 1, tzinfo=UTC),
            )
        )
    await db_session.flush()


async def stored_leads(db_session: AsyncSession, company_id: UUID) -> set[UUID]:
    rows = await db_session.scalars(
        select(StoredRecommendation.lead_id).where(StoredRecommendation.company_id == company_id)
    )
    return set(rows.all())


async def test_leads_close_after_the_last_berlin_day_of_their_deadline(
    db_session: AsyncSession, context: JobContext
) -> None:
    passed = await add_lead(db_session, date(2026, 3, 13))
    due_today = await add_lead(db_session, date(2026, 3, 14))
    tomorrow = await add_lead(db_session, date(2026, 3, 15))
    no_deadline = await add_lead(db_session, None)
    closed_before = await add_lead(db_session, date(2026, 3, 1), LeadStatus.CLOSED)
    everyone = [passed, due_today, tomorrow, no_deadline, closed_before]
    company_id = await create_company(db_session)
    await store_rows(db_session, company_id, [passed, due_today, tomorrow])

    assert await expire_leads(context, now=LAST_SECOND_OF_14_MARCH) == 1
    assert await statuses(db_session, everyone) == {
        passed: "closed",
        due_today: "open",  # its deadline is today in Berlin: open through 23:59:59
        tomorrow: "open",
        no_deadline: "open",
        closed_before: "closed",
    }
    # LeadStatusChanged went out and its subscriber removed the closed lead's stored recommendations.
    assert await stored_leads(db_session, company_id) == {due_today, tomorrow}
    (change,) = await status_changes(db_session, everyone)
    assert change.entity_id == str(passed)
    assert change.changes["status"] == ["open", "closed"]
    assert change.actor_user_id == recorder.SYSTEM_USER_ID
    assert change.actor_token_id is None
    assert change.request == "job leads.expire"

    # Midnight in Berlin, though still 14 March in UTC: the lead due on the 14th closes now.
    assert await expire_leads(context, now=BERLIN_MIDNIGHT_14_TO_15) == 1
    assert (await statuses(db_session, everyone))[due_today] == "closed"
    assert await stored_leads(db_session, company_id) == {tomorrow}
    changes = await status_changes(db_session, everyone)
    assert [c.entity_id for c in changes] == [str(passed), str(due_today)]
    assert all(c.actor_user_id == recorder.SYSTEM_USER_ID for c in changes)

    # Idempotent: nothing is left to close, nothing more is recorded.
    assert await expire_leads(context, now=BERLIN_MIDNIGHT_14_TO_15) == 0
    assert len(await status_changes(db_session, everyone)) == 2
    assert (await statuses(db_session, everyone))[tomorrow] == "open"


async def test_many_leads_close_in_batches_of_their_own_transactions(
    db_session: AsyncSession, context: JobContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "EXPIRY_BATCH", 2)
    expired = [await add_lead(db_session, date(2026, 2, day)) for day in range(1, 6)]
    open_ = await add_lead(db_session, date(2026, 3, 20))
    transactions = TransactionCounter(context, monkeypatch)

    assert await expire_leads(context, now=BERLIN_MIDNIGHT_14_TO_15) == 5
    assert set((await statuses(db_session, [*expired, open_])).items()) == {
        *((lead_id, "closed") for lead_id in expired),
        (open_, "open"),
    }
    # 2 + 2 + 1: the last batch, smaller than the batch size, ends the run.
    assert transactions.count == 3
    assert len(await status_changes(db_session, expired)) == 5
