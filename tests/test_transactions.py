"""The request is the transaction: a commit that fails is answered as not saved, never as saved."""

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.companies.models import Company
from tests.companies.test_api import company_payload


async def test_a_change_whose_commit_fails_is_answered_as_not_saved_and_nothing_is_kept(
    client: AsyncClient, db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed = AsyncSession.commit

    async def refuse(self: AsyncSession) -> Any:
        if self is db_session:
            return await committed(self)
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    with monkeypatch.context() as patched:
        patched.setattr(AsyncSession, "commit", refuse)
        response = await client.post("/api/v1/companies", json=company_payload(name="Never Saved GmbH"))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "set-cookie" not in response.headers
    body = response.json()
    assert body["title"] == "Not saved"
    assert body["status"] == 503
    assert "nothing was changed" in body["detail"]
    count = select(func.count()).select_from(Company).where(Company.name == "Never Saved GmbH")
    assert await db_session.scalar(count) == 0
    # The same request with a working database is saved.
    saved = await client.post("/api/v1/companies", json=company_payload(name="Saved GmbH"))
    assert saved.status_code == 201, saved.text
    assert (
        await db_session.scalar(select(func.count()).select_from(Company).where(Company.name == "Saved GmbH"))
        == 1
    )
