import math
from collections import Counter
from typing import Any

from httpx import AsyncClient as Client
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.enums import ParticipantStatus
from partnermatch.missions.models import Mission, MissionParticipant
from partnermatch.recommendations.models import ModelVersion


async def test_the_shortlist_respects_capacity_division_and_sme_rules(
    client: Client, member_client: Client, db_session: AsyncSession, active_model: ModelVersion
) -> None:
    mission = await db_session.scalar(select(Mission).order_by(Mission.announced_at.desc()).limit(1))
    assert mission is not None
    mission.capacity = 200  # room enough that the rules, not the participants, decide
    await db_session.flush()
    url = f"/api/v1/missions/{mission.id}/candidates"
    response = await client.get(url, params={"max_division_share": 0.3, "min_sme_share": 0.6})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    participants = dict(
        (
            await db_session.execute(
                select(MissionParticipant.company_id, MissionParticipant.status).where(
                    MissionParticipant.mission_id == mission.id
                )
            )
        )
        .tuples()
        .all()
    )
    taken = sum(
        s in (ParticipantStatus.INVITED, ParticipantStatus.PARTICIPATED) for s in participants.values()
    )
    assert body["places"] == 200 - taken
    items = body["items"]
    assert items
    assert len(items) <= body["places"]
    assert [i["rank"] for i in items] == list(range(1, len(items) + 1))
    per_division = Counter(i["division"] for i in items)
    assert max(per_division.values()) <= max(1, math.floor(0.3 * body["places"]))
    smes = sum(i["is_sme"] for i in items)
    assert smes >= math.ceil(0.6 * body["places"]) or body["shortfalls"]
    settled = {str(c) for c, s in participants.items() if s != ParticipantStatus.APPLIED.value}
    assert not settled & {i["company_id"] for i in items}
    assert all(i["reasons"] and 0.0 <= i["score"] <= 1.0 for i in items)
    assert (await member_client.get(url)).status_code == 403


async def test_invited_and_declined_companies_are_not_proposed_again(
    client: Client, db_session: AsyncSession, active_model: ModelVersion
) -> None:
    mission = await db_session.scalar(select(Mission).order_by(Mission.announced_at.desc()).limit(1))
    assert mission is not None
    mission.capacity = 50
    await db_session.flush()
    url = f"/api/v1/missions/{mission.id}/candidates"
    applied = {
        str(c)
        for c in await db_session.scalars(
            select(MissionParticipant.company_id).where(MissionParticipant.mission_id == mission.id)
        )
    }
    # Applicants stay candidates (staff decide on them); pick two companies with no standing yet.
    first = [
        i["company_id"] for i in (await client.get(url)).json()["items"] if i["company_id"] not in applied
    ]
    assert len(first) >= 2
    for company_id, status in ((first[0], "invited"), (first[1], "declined")):
        response = await client.post(
            f"/api/v1/missions/{mission.id}/participants", json={"company_id": company_id, "status": status}
        )
        assert response.status_code == 201, response.text
    again = (await client.get(url)).json()
    assert not {first[0], first[1]} & {i["company_id"] for i in again["items"]}
