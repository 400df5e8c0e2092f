"""Reads do not queue for SQLite's write lock: a request with a safe method (GET, HEAD, OPTIONS) runs in
a deferred transaction and writes nothing in it; everything else takes the lock up front.

The SQLite tests use a database file and app of their own: the suite's per-test connection holds the
write lock of its file for the whole test. A second connection to the file, sqlite3's own with no
busy timeout, takes the write lock (`BEGIN IMMEDIATE`) to play the other writer, or tries to take it
to see whether the app holds it."""

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar, get, post
from litestar.di import NamedDependency
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from partnermatch import jobs
from partnermatch.access import Access, access
from partnermatch.accounts.models import ApiToken
from partnermatch.accounts.service import AccountService, digest
from partnermatch.app import create_app
from partnermatch.db import alchemy_config, create_engine, migrate, reads_only, session_scope
from partnermatch.enums import UserRole
from partnermatch.settings import Settings
from tests.accounts.test_access_matrix import concrete, routes
from tests.accounts.test_auth import login, member_with_password
from tests.companies.test_api import approved_company, company_payload
from tests.conftest import BACKENDS, Account, MakeClient

# Long enough to tell "answers" from "waits for the busy timeout of 10 s", far from either.
ANSWERS_WITHIN = 5.0
PROBE = "/test/probe"

sqlite_only = pytest.mark.skipif("sqlite" not in BACKENDS, reason="SQLite is not among the test backends")


@contextmanager
def other_writer(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the write lock with a change not yet committed; rolled back at the
    end unless the block commits it."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        connection.execute("BEGIN IMMEDIATE")
        # A real change (the header's user version): committed, it makes older snapshots stale.
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        connection.execute(f"PRAGMA user_version = {version + 1}")
        yield connection
    finally:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        connection.close()


def write_lock_is_taken(path: Path) -> bool:
    connection = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        if "locked" not in str(error):
            raise
        return True
    else:
        connection.execute("ROLLBACK")
        return False
    finally:
        connection.close()


@dataclass
class OwnSQLite:
    path: Path
    settings: Settings
    app: Litestar
    client: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]
    staff_token: str
    company_id: uuid.UUID
    # What the probe routes and their jobs saw: (where, whether the write lock was taken).
    probes: list[tuple[str, bool]] = field(default_factory=list)


# Where the probe job looks, and what it saw: set by probe_routes (a job takes JSON arguments only).
_probed: dict[str, Any] = {}


@jobs.job("test.probe_lock")
async def probe_lock(context: jobs.JobContext, *, method: str) -> None:
    async with context.sessions() as session:
        await session.execute(select(1))
        _probed["probes"].append((f"{method} job", write_lock_is_taken(_probed["path"])))


def probe_routes(path: Path, probes: list[tuple[str, bool]]) -> list[Any]:
    """A GET and a POST that read in the request's transaction and look at the write lock there and in
    a job after the response."""
    _probed.update(path=path, probes=probes)

    async def look(method: str, db_session: AsyncSession) -> dict[str, bool]:
        await db_session.execute(select(1))
        taken = write_lock_is_taken(path)
        probes.append((f"{method} request", taken))

        jobs.after_commit(db_session, jobs.Job.of(probe_lock, method=method))
        return {"lock_taken": taken}

    @get(PROBE, opt=access(Access.PUBLIC), include_in_schema=False)
    async def probe_get(db_session: NamedDependency[AsyncSession]) -> dict[str, bool]:
        return await look("GET", db_session)

    @post(PROBE, opt=access(Access.PUBLIC), include_in_schema=False)
    async def probe_post(db_session: NamedDependency[AsyncSession]) -> dict[str, bool]:
        return await look("POST", db_session)

    return [probe_get, probe_post]


@pytest.fixture(scope="module")
async def own(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OwnSQLite]:
    if "sqlite" not in BACKENDS:
        pytest.skip("SQLite is not among the test backends")
    scratch = tmp_path_factory.mktemp("own-sqlite")
    path = scratch / "own.db"
    settings = Settings(database_url=f"sqlite+aiosqlite:///{path}", var_dir=scratch / "var")
    await migrate(settings)
    async with session_scope(settings) as session:
        company = await approved_company(session, "Eigene Datei GmbH")
        accounts = AccountService(session, settings=settings)
        staff = await accounts.create_user(
            f"staff-{uuid.uuid4().hex[:8]}@example.org", None, role=UserRole.STAFF
        )
        _token, secret = await accounts.create_api_token(staff.id, "tests")
        company_id = company.id
    engine: AsyncEngine = create_engine(settings)
    config = alchemy_config(settings, engine=engine)
    app = create_app(settings, db_config=config)
    config.update_app_state(app)
    probes: list[tuple[str, bool]] = []
    for route in probe_routes(path, probes):
        app.register(route)
    transport = httpx.ASGITransport(app=app, client=("10.99.0.1", 40000))
    async with httpx.AsyncClient(
        transport=transport, base_url="https://testserver", headers={"Authorization": f"Bearer {secret}"}
    ) as client:
        yield OwnSQLite(
            path,
            settings,
            app,
            client,
            async_sessionmaker(engine, expire_on_commit=False),
            secret,
            company_id,
            probes,
        )
    await engine.dispose()


async def token_last_used(own: OwnSQLite) -> datetime | None:
    # Deferred, as a GET reads: it must not wait for the other writer.
    with reads_only():
        async with own.sessions() as session:
            return await session.scalar(
                select(ApiToken.last_used_at).where(ApiToken.token_hash == digest(own.staff_token))
            )


async def set_token_last_used(own: OwnSQLite, moment: datetime) -> None:
    async with own.sessions.begin() as session:
        await session.execute(
            update(ApiToken).where(ApiToken.token_hash == digest(own.staff_token)).values(last_used_at=moment)
        )


@sqlite_only
async def test_a_get_answers_while_another_connection_holds_the_write_lock(own: OwnSQLite) -> None:
    url = f"/api/v1/companies/{own.company_id}"
    assert (await own.client.get(url)).status_code == 200  # records the token's use, if due
    with other_writer(own.path):
        response = await asyncio.wait_for(own.client.get(url), ANSWERS_WITHIN)
        assert response.status_code == 200, response.text
        assert response.json()["name"] == "Eigene Datei GmbH"
        listed = await asyncio.wait_for(own.client.get("/api/v1/companies"), ANSWERS_WITHIN)
        assert listed.status_code == 200, listed.text


@sqlite_only
async def test_a_post_waits_for_the_write_lock_and_then_succeeds(own: OwnSQLite) -> None:
    with other_writer(own.path) as writer:
        request = asyncio.create_task(
            own.client.post("/api/v1/companies", json=company_payload(name="Wartet GmbH"))
        )
        await asyncio.sleep(0.5)
        assert not request.done()  # waiting for the lock, not failed
        # The other writer commits a change: a transaction that had read before it could not write now.
        writer.execute("COMMIT")
        response = await asyncio.wait_for(request, ANSWERS_WITHIN)
    assert response.status_code == 201, response.text
    assert (await own.client.get(f"/api/v1/companies/{response.json()['id']}")).status_code == 200


@sqlite_only
async def test_a_safe_request_reads_without_the_lock_and_its_jobs_and_unsafe_requests_take_it(
    own: OwnSQLite,
) -> None:
    own.probes.clear()
    got = await own.client.get(PROBE)
    assert got.status_code == 200, got.text
    assert got.json() == {"lock_taken": False}
    posted = await own.client.post(PROBE)
    assert posted.status_code == 201, posted.text
    assert posted.json() == {"lock_taken": True}
    assert own.probes == [
        ("GET request", False),  # deferred: reading takes no lock
        ("GET job", True),  # a job writes, so even a GET's job takes it up front
        ("POST request", True),
        ("POST job", True),
    ]


@sqlite_only
async def test_commands_take_the_write_lock_up_front(own: OwnSQLite) -> None:
    async with session_scope(own.settings) as session:
        await session.execute(select(1))
        assert write_lock_is_taken(own.path)


@sqlite_only
async def test_a_get_answers_before_its_due_token_touch_which_waits_for_the_lock(own: OwnSQLite) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    await set_token_last_used(own, long_ago)
    answered = asyncio.Event()
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            answered.set()

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": f"/api/v1/companies/{own.company_id}",
        "raw_path": f"/api/v1/companies/{own.company_id}".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {own.staff_token}".encode())],
        "client": ("10.99.0.2", 40000),
        "server": ("testserver", 443),
        "state": {},
    }
    with other_writer(own.path):
        call = asyncio.create_task(own.app(scope, receive, send))  # type: ignore[arg-type]
        await asyncio.wait_for(answered.wait(), ANSWERS_WITHIN)
        assert statuses == [200]
        assert not call.done()  # the touch, after the response, waits for the write lock
        assert await token_last_used(own) == long_ago
    await asyncio.wait_for(call, ANSWERS_WITHIN)
    touched = await token_last_used(own)
    assert touched is not None
    assert touched > long_ago + timedelta(minutes=30)


# --- both backends --------------------------------------------------------------------------------


async def test_no_get_route_writes_anything_in_its_request(
    app: Litestar,
    make_client: MakeClient,
    engine: AsyncEngine,
    db_session: AsyncSession,
    member: Account,
    staff: Account,
    admin: Account,
    settings: Settings,
) -> None:
    """Every GET route, anonymous, as member (token and session cookie), staff and admin: no INSERT,
    UPDATE or DELETE, so no audit event either (the recorder writes only along with a change)."""
    cookie_account = await member_with_password(db_session, settings)
    as_cookie = make_client()
    assert (await login(as_cookie, cookie_account.user.email)).status_code == 200
    clients = [
        make_client(),
        make_client(member.token),
        as_cookie,
        make_client(staff.token),
        make_client(admin.token),
    ]
    for client in clients:
        # The first use of each token is recorded now, by a job after the response; not again below.
        assert (await client.get("/api/v1/cities")).status_code == 200
    for account in (member, staff, admin):
        last_used = await db_session.scalar(
            select(ApiToken.last_used_at).where(ApiToken.token_hash == digest(account.token))
        )
        assert last_used is not None

    written: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            written.append(statement)

    gets = [path for path, method, _level in routes(app) if method == "GET"]
    assert len(gets) > 20
    statuses: set[int] = set()
    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        for path in gets:
            url = concrete(path, member.user.company_id or uuid.uuid4())
            for client in clients:
                statuses.add((await client.get(url)).status_code)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert 200 in statuses
    assert written == []


async def test_an_unsafe_request_records_the_use_of_its_token(
    client: httpx.AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    async def last_used() -> datetime | None:
        return await db_session.scalar(
            select(ApiToken.last_used_at).where(ApiToken.token_hash == digest(staff.token))
        )

    assert await last_used() is None
    before = datetime.now(UTC)
    response = await client.post("/api/v1/companies", json=company_payload(name="Schreibt GmbH"))
    assert response.status_code == 201, response.text
    first = await last_used()
    assert first is not None
    assert first >= before
    # Within the resolution, a second request does not write it again.
    again = await client.post("/api/v1/companies", json=company_payload(name="Schreibt Auch GmbH"))
    assert again.status_code == 201, again.text
    assert await last_used() == first
