"""Login limits across workers (Redis) and behind reverse proxies (trusted X-Forwarded-For).

Two app instances stand for two granian workers: with PARTNERMATCH_REDIS_URL they count together.
Redis comes from the `redis_url` fixture (tests/conftest.py)."""

import asyncio
import ipaddress
import random
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.stores.redis import RedisStore
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from partnermatch.accounts.auth import LOGIN_FAILURES_STORE, LOGIN_RATE_LIMIT_STORE, REDIS_NAMESPACE
from partnermatch.accounts.throttle import LoginThrottle
from partnermatch.app import create_app
from partnermatch.db import alchemy_config
from partnermatch.settings import Settings
from tests.accounts.test_auth import PASSWORD, member_with_password

MakeApp = Callable[..., Litestar]
Worker = Callable[[Litestar, str], httpx.AsyncClient]


@pytest.fixture
async def make_app(
    settings: Settings, engine: AsyncEngine, session_maker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[MakeApp]:
    """Apps with their own settings and stores, on the test's rolled-back connection."""
    apps: list[Litestar] = []

    def make(**overrides: Any) -> Litestar:
        app_settings = settings.model_copy(update=overrides)
        config = alchemy_config(app_settings, engine=engine)
        app = create_app(app_settings, db_config=config)
        config.update_app_state(app)
        app.state[config.session_maker_app_state_key] = session_maker
        apps.append(app)
        return app

    yield make
    for app in apps:
        for hook in app.on_shutdown:  # what the lifespan would do: close the Redis clients
            await app._call_lifespan_hook(hook)


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    clients: list[httpx.AsyncClient] = []

    def make(app: Litestar, address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        client = httpx.AsyncClient(transport=transport, base_url="https://testserver")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def some_address() -> str:
    # Unique per run, so that counts left in Redis by earlier runs (they expire) do not interfere.
    return str(ipaddress.IPv4Address(random.randrange(0x0B000000, 0x0BFFFFFF)))


async def attempt(client: httpx.AsyncClient, email: str, password: str, **headers: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login", json={"email": email, "password": password}, headers=headers
    )


async def test_per_address_limit_holds_across_workers(
    redis_url: str, make_app: MakeApp, worker: Worker
) -> None:
    limit = 4
    apps = [make_app(redis_url=redis_url, login_attempts_per_ip_per_minute=limit) for _ in range(2)]
    address = some_address()
    clients = [worker(app, address) for app in apps]
    for n in range(limit):
        response = await attempt(clients[n % 2], f"{uuid.uuid4().hex}@example.org", "wrong password!!")
        assert response.status_code == 401, response.text
    # Each worker has seen only half the limit; together they have seen all of it.
    for client in clients:
        blocked = await attempt(client, f"{uuid.uuid4().hex}@example.org", "wrong password!!")
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 0
    # Another address is counted on its own.
    other = worker(apps[0], some_address())
    assert (await attempt(other, f"{uuid.uuid4().hex}@example.org", "wrong password!!")).status_code == 401


async def test_per_account_limit_holds_across_workers(
    redis_url: str, make_app: MakeApp, worker: Worker, db_session: AsyncSession, settings: Settings
) -> None:
    account = await member_with_password(db_session, settings)
    apps = [make_app(redis_url=redis_url, login_attempts_per_ip_per_minute=1000) for _ in range(2)]
    for n in range(settings.login_failures_per_account):
        client = worker(apps[n % 2], some_address())
        assert (await attempt(client, account.user.email, "wrong password!!")).status_code == 401
    for app in apps:
        blocked = await attempt(worker(app, some_address()), account.user.email, PASSWORD)
        assert blocked.status_code == 429, blocked.text
        assert 0 < int(blocked.headers["retry-after"]) <= 15 * 60


async def test_the_stores_live_in_redis_only_when_configured(redis_url: str, make_app: MakeApp) -> None:
    shared = make_app(redis_url=redis_url)
    for name in (LOGIN_RATE_LIMIT_STORE, LOGIN_FAILURES_STORE):
        store = shared.stores.get(name)
        assert isinstance(store, RedisStore)
        assert store.namespace is not None
        assert store.namespace.startswith(REDIS_NAMESPACE)
    embedded = make_app(redis_url="")
    assert not isinstance(embedded.stores.get(LOGIN_FAILURES_STORE), RedisStore)


async def test_concurrent_failures_on_several_workers_all_count(redis_url: str) -> None:
    # Two clients, as two workers would have; every failure must be counted, none overwritten.
    clients = [Redis.from_url(redis_url) for _ in range(2)]
    try:
        namespace = f"{REDIS_NAMESPACE}_test_{uuid.uuid4().hex}"
        stores = [RedisStore(c, namespace=namespace) for c in clients]
        throttles = [LoginThrottle(store, limit=30) for store in stores]
        email = f"{uuid.uuid4().hex}@example.org"
        await asyncio.gather(*(throttles[n % 2].failed(email) for n in range(29)))
        assert await throttles[0].retry_after(email) is None
        await throttles[1].failed(email)
        wait = await throttles[0].retry_after(email)
        assert wait is not None
        assert 0 < wait <= 15 * 60
        await throttles[1].succeeded(email)
        assert await throttles[0].retry_after(email) is None
        await stores[0].delete_all()
    finally:
        for client in clients:
            await client.aclose()


async def test_x_forwarded_for_counts_only_from_trusted_proxies(make_app: MakeApp, worker: Worker) -> None:
    limit = 3
    app = make_app(trusted_proxies="10.77.0.0/16, 10.78.0.9", login_attempts_per_ip_per_minute=limit)
    proxy = worker(app, "10.77.3.4")

    async def from_client(address: str, forwarded: str | None = None) -> int:
        headers = {"x-forwarded-for": forwarded or address}
        response = await attempt(proxy, f"{uuid.uuid4().hex}@example.org", "wrong password!!", **headers)
        return response.status_code

    for _ in range(limit):
        assert await from_client("203.0.113.5") == 401
    assert await from_client("203.0.113.5") == 429
    # Behind the proxy every client has a limit of its own.
    assert await from_client("203.0.113.6") == 401
    # What the client wrote itself, left of the address our proxies saw, does not count: a fresh
    # fake address in front does not get 203.0.113.5 a fresh limit.
    assert await from_client("", "198.51.100.1, 203.0.113.5") == 429
    # Chains of our own proxies are skipped (10.78.0.9 is trusted; 10.77.x.x too).
    assert await from_client("", "203.0.113.5, 10.78.0.9, 10.77.0.1") == 429
    assert await from_client("", "203.0.113.7, 10.78.0.9") == 401


async def test_x_forwarded_for_of_anyone_else_is_ignored(make_app: MakeApp, worker: Worker) -> None:
    limit = 3
    app = make_app(trusted_proxies="10.77.0.0/16", login_attempts_per_ip_per_minute=limit)
    stranger = worker(app, "192.0.2.44")
    for n in range(limit):
        headers = {"x-forwarded-for": f"203.0.113.{n}"}
        assert (await attempt(stranger, "a@example.org", "wrong password!!", **headers)).status_code == 401
    # Claiming yet another address does not help: the count is the peer's.
    headers = {"x-forwarded-for": "203.0.113.200"}
    assert (await attempt(stranger, "a@example.org", "wrong password!!", **headers)).status_code == 429


async def test_without_trusted_proxies_x_forwarded_for_is_ignored(make_app: MakeApp, worker: Worker) -> None:
    app = make_app(login_attempts_per_ip_per_minute=2)
    client = worker(app, "10.77.3.4")
    statuses = [
        (
            await attempt(
                client, "a@example.org", "wrong password!!", **{"x-forwarded-for": f"203.0.113.{n}"}
            )
        ).status_code
        for n in range(3)
    ]
    assert statuses == [401, 401, 429]


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    assert len(Settings(trusted_proxies="10.0.0.0/8, 192.0.2.1,::1").trusted_proxy_networks) == 3
    assert Settings(trusted_proxies="").trusted_proxy_networks == ()
    with pytest.raises(ValueError, match=r"'proxy\.example' is not an IP address or network"):
        Settings(trusted_proxies="10.0.0.1, proxy.example")


def test_the_redis_url_must_name_redis() -> None:
    assert Settings(redis_url="redis://cache:6379/0").redis_url == "redis://cache:6379/0"
    with pytest.raises(ValueError, match="must start with redis://"):
        Settings(redis_url="cache:6379")
