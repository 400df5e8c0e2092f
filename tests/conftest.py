"""One suite, two databases: every test that takes `db_session` or `client` runs on SQLite and PostgreSQL.

The schema is built by the real migrations once per backend; each test runs inside a
transaction that is rolled back, and requests commit only to a savepoint inside it.

PostgreSQL comes from PARTNERMATCH_TEST_POSTGRES_URL (default: the local trust-auth
server). Without it the PostgreSQL half is skipped and the summary says so, except with
CI=true, where an unreachable PostgreSQL fails the run.
"""

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from partnermatch.accounts.models import User
from partnermatch.accounts.service import AccountService
from partnermatch.app import create_app
from partnermatch.companies.schemas import CompanyCreate
from partnermatch.companies.service import CompanyService
from partnermatch.db import alchemy_config, create_engine, migrate
from partnermatch.enums import CompanyStatus, ExportExperience, UserRole
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


REDIS_URL = os.environ.get("PARTNERMATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
async def redis_url() -> str:
    """Redis from PARTNERMATCH_TEST_REDIS_URL (default: the local server, database 15). Unreachable, the
    tests that need it are skipped with the reason, except with CI=true, where they fail."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as error:
        reason = f"Redis at {REDIS_URL} unreachable: {error!r}"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true requires Redis)", pytrace=False)
        pytest.skip(reason)
    finally:
        await client.aclose()
    return REDIS_URL


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
async def app(
    app_and_client: tuple[Litestar, httpx.AsyncClient, str],
    session_maker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Litestar]:
    # Requests of this test share its rolled-back connection.
    app, _client, key = app_and_client
    previous = app.state[key]
    app.state[key] = session_maker
    yield app
    app.state[key] = previous


_client_addresses = (f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}" for n in itertools.count(1))
MakeClient = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def make_client(app: Litestar) -> AsyncIterator[MakeClient]:
    """Clients of the test's app. Each has an address of its own, so per-address login limits of one
    test do not spill into the next; https, so that Secure cookies are sent back."""
    clients: list[httpx.AsyncClient] = []

    def make(token: str | None = None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(next(_client_addresses), 40000))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.AsyncClient(transport=transport, base_url="https://testserver", headers=headers)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@dataclass(frozen=True)
class Account:
    user: User
    token: str
    password: str | None = None


def account_service(db_session: AsyncSession, settings: Settings) -> AccountService:
    return AccountService(db_session, settings=settings)


async def create_account(
    db_session: AsyncSession,
    settings: Settings,
    role: UserRole,
    *,
    company_id: uuid.UUID | None = None,
    password: str | None = None,
    verified: bool = True,
) -> Account:
    accounts = account_service(db_session, settings)
    email = f"{role.value}-{uuid.uuid4().hex[:10]}@example.org"
    user = await accounts.create_user(email, password, role=role, company_id=company_id, verified=verified)
    _token, secret = await accounts.create_api_token(user.id, "tests")
    await db_session.flush()
    return Account(user=user, token=secret, password=password)


async def create_company(db_session: AsyncSession, name: str = "Member GmbH") -> uuid.UUID:
    data = CompanyCreate(
        name=name, sectors=["62.01"], employees=12, founded=2015, export_experience=ExportExperience.SOME
    )
    company = await CompanyService(session=db_session).register(data, status=CompanyStatus.APPROVED)
    await db_session.flush()
    return company.id


@pytest.fixture
async def staff(db_session: AsyncSession, settings: Settings) -> Account:
    return await create_account(db_session, settings, UserRole.STAFF)


@pytest.fixture
async def admin(db_session: AsyncSession, settings: Settings) -> Account:
    return await create_account(db_session, settings, UserRole.ADMIN)


@pytest.fixture
async def member(db_session: AsyncSession, settings: Settings) -> Account:
    company_id = await create_company(db_session)
    return await create_account(db_session, settings, UserRole.MEMBER, company_id=company_id)


@pytest.fixture
def client(make_client: MakeClient, staff: Account) -> httpx.AsyncClient:
    """Authenticated as staff with an API token: the admin API as staff use it."""
    return make_client(staff.token)


@pytest.fixture
def member_client(make_client: MakeClient, member: Account) -> httpx.AsyncClient:
    return make_client(member.token)


@pytest.fixture
def anonymous_client(make_client: MakeClient) -> httpx.AsyncClient:
    return make_client()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _postgres_skipped:
        terminalreporter.write_sep("=", "PostgreSQL was skipped", yellow=True)
        terminalreporter.write_line(_postgres_skipped[0])
        terminalreporter.write_line("Only the SQLite half ran; set CI=true to make this a failure.")


@pytest.fixture
def shared_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "shared"


def process_environment(settings: dict[str, str]) -> dict[str, str]:
    """The environment of a `partnermatch` process a test starts: this one's, without its own
    PARTNERMATCH_* variables, and ``settings`` (names without the prefix) as PARTNERMATCH_*."""
    kept = {key: value for key, value in os.environ.items() if not key.startswith("PARTNERMATCH_")}
    return kept | {f"PARTNERMATCH_{key}": value for key, value in settings.items()}


class TransactionCounter:
    """Counts the transactions a JobContext's factory begins (``context.sessions.begin``)."""

    def __init__(self, context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        begin = context.sessions.begin

        def counting_begin() -> object:
            self.count += 1
            return begin()

        monkeypatch.setattr(context.sessions, "begin", counting_begin)
