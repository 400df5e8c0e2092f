"""The auth benchmark's baseline route: like the member read, for the synthetic company only."""

import os

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from partnermatch.app import create_app
from partnermatch.bench.auth import BASELINE_PATH, _baseline_route
from partnermatch.bench.serving import server_cpu
from partnermatch.db import alchemy_config
from partnermatch.settings import Settings
from tests.conftest import Account, create_company


async def test_the_baseline_answers_like_the_member_read_for_the_synthetic_company_only(
    settings: Settings,
    engine: AsyncEngine,
    session_maker: async_sessionmaker[AsyncSession],
    member: Account,
    db_session: AsyncSession,
) -> None:
    synthetic = member.user.company_id
    assert synthetic is not None
    other = await create_company(db_session, "Another GmbH")
    # An app of its own, as bench_app builds it: the session-wide test app keeps its routes.
    config = alchemy_config(settings, engine=engine)
    app = create_app(settings, db_config=config)
    app.register(_baseline_route(synthetic))
    config.update_app_state(app)
    app.state[config.session_maker_app_state_key] = session_maker
    transport = httpx.ASGITransport(app=app, client=("10.250.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        baseline = await client.get(f"{BASELINE_PATH}/{synthetic}")
        assert baseline.status_code == 200, baseline.text
        authenticated = await client.get(
            f"/api/v1/companies/{synthetic}", headers={"Authorization": f"Bearer {member.token}"}
        )
        assert authenticated.status_code == 200
        assert baseline.json() == authenticated.json()
        # Any other company is as unknown to it as to the member.
        assert (await client.get(f"{BASELINE_PATH}/{other}")).status_code == 404


def test_the_served_app_has_no_baseline_route(settings: Settings) -> None:
    paths = {route.path for route in create_app(settings).routes}
    assert not any(path.startswith(BASELINE_PATH) for path in paths)


def test_server_cpu_counts_this_process() -> None:
    before = server_cpu(os.getpid())
    assert before is not None
    sum(i * i for i in range(3_000_000))
    after = server_cpu(os.getpid())
    assert after is not None
    assert after > before
