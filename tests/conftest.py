"""One suite, two databases: every test that takes `db_session` or `client` runs on SQLite and PostgreSQL.

The schema is built by the real migrations once per backend; each test runs inside a
transaction that is rolled back, and requests commit only to a savepoint inside it.

PostgreSQL comes from PARTNERMATCH_TEST_POSTGRES_URL (default: the local trust-auth
server). Without it the PostgreSQL half is skipped and the summary says so, except with
CI=true, where an unreachable PostgreSQL fails the run.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from partnermatch.app import create_app
from partnermatch.db import alchemy_config, create_engine, migrate
from partnermatch.settings import Settings

POSTGRES_ADMIN_URL = os.environ.get(
    "PARTNERMATCH_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = [b for b in os.environ.get("PARTNERMATCH_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
_postgres_skipped: list[str] = []


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    if database is not None:
        dsn = dsn.rsplit("/", 1)[0] + f"/{database}"
    return dsn


async def _admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_ADMIN_URL), timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def create_database(backend: str, scratch: Path) -> str:
    """A new, empty database of the backend; PostgreSQL's is named uniquely so parallel runs don't meet."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{scratch / f'{uuid.uuid4().hex[:8]}.db'}"
    name = f"partnermatch_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except Exception as error:
        reason = f"PostgreSQL at {POSTGRES_ADMIN_URL} unreachable: {error!r}"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true requires PostgreSQL)", pytrace=False)
        _postgres_skipped.append(reason)
        pytest.skip(reason)
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        name = url.rsplit("/", 1)[1]
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = create_database(backend, tmp_path_factory.mktemp("db"))
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path_factory.mktemp("var"))


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    await migrate(settings)
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        yield connection
        await transaction.rollback()


@pytest.fixture
def session_maker(connection: Any) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
async def db_session(session_maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with session_maker() as session:
        yield session


@pytest.fixture(scope="session")
async def app_and_client(
    settings: Settings, engine: AsyncEngine
) -> AsyncIterator[tuple[Litestar, httpx.AsyncClient, str]]:
    # httpx's ASGI transport runs the app on the test's own event loop, which asyncpg connections need.
    config = alchemy_config(settings, engine=engine)
    app = create_app(settings, db_config=config)
    # What the plugin's lifespan would do; its anyio task group cannot span pytest-asyncio's fixture tasks.
    config.update_app_state(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield app, client, config.session_maker_app_state_key


@pytest.fixture
async def client(
    app_and_client: tuple[Litestar, httpx.AsyncClient, str],
    session_maker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[httpx.AsyncClient]:
    # Requests of this test share its rolled-back connection.
    app, test_client, key = app_and_client
    previous = app.state[key]
    app.state[key] = session_maker
    yield test_client
    app.state[key] = previous


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _postgres_skipped:
        terminalreporter.write_sep("=", "PostgreSQL was skipped", yellow=True)
        terminalreporter.write_line(_postgres_skipped[0])
        terminalreporter.write_line("Only the SQLite half ran; set CI=true to make this a failure.")


@pytest.fixture
def shared_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "shared"
