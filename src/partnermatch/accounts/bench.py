"""`partnermatch bench auth`: what authentication and authorization cost, measured on a real server.

Starts `partnermatch serve` on loopback against a fresh database, then runs the same bounded load
against a public endpoint reading one row (GET /api/v1/cities/{id}) and against an authenticated
one reading a row of similar size (GET /api/v1/companies/{id}), with a session cookie and with a
bearer token, one after the other. Prints requests/s and latency percentiles; not a test."""

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.table import Table

from partnermatch.accounts.service import AccountService
from partnermatch.companies.schemas import CompanyCreate
from partnermatch.companies.service import CompanyService
from partnermatch.datasets.bench import _admin, _sqlalchemy_url
from partnermatch.db import migrate, session_scope
from partnermatch.enums import CompanyStatus, ExportExperience, UserRole
from partnermatch.mail import mailer_for
from partnermatch.settings import Settings

PASSWORD = "bench-password-not-common-42"
PUBLIC_CITY = "tokyo"


@dataclass
class Figures:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0


@dataclass
class Fixture:
    company_id: uuid.UUID
    member_email: str
    staff_token: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _prepare(settings: Settings) -> Fixture:
    await migrate(settings)
    async with session_scope(settings) as session:
        company = await CompanyService(session=session).register(
            CompanyCreate(
                name="Benchmark Sensorik GmbH",
                sectors=["26.51", "62.01"],
                employees=40,
                founded=2012,
                export_experience=ExportExperience.SOME,
                languages=["de", "en"],
                target_cities=[PUBLIC_CITY],
                description="Sensors for food logistics.",
            ),
            status=CompanyStatus.APPROVED,
        )
        accounts = AccountService(session, settings=settings, mailer=mailer_for(settings))
        email = f"member-{uuid.uuid4().hex[:8]}@bench.invalid"
        await accounts.create_user(email, PASSWORD, role=UserRole.MEMBER, company_id=company.id)
        staff = await accounts.create_user(
            f"staff-{uuid.uuid4().hex[:8]}@bench.invalid", None, role=UserRole.STAFF
        )
        _token, secret = await accounts.create_api_token(staff.id, "bench")
        return Fixture(company_id=company.id, member_email=email, staff_token=secret)


@contextmanager
def _server(settings: Settings, port: int, workers: int) -> Iterator[str]:
    env = {
        **os.environ,
        "PARTNERMATCH_DATABASE_URL": settings.resolved_database_url,
        "PARTNERMATCH_VAR_DIR": str(settings.var_dir),
        "PARTNERMATCH_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "partnermatch", "serve", "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(
                    f"the server exited: {server.stderr.read().decode() if server.stderr else ''}"
                )
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


async def _load(
    client: httpx.AsyncClient,
    name: str,
    url: str,
    headers: dict[str, str],
    requests: int,
    concurrency: int,
    seconds: float,
) -> Figures:
    for _ in range(min(100, requests)):  # warm up connections, caches and the token's last_used_at
        (await client.get(url, headers=headers)).raise_for_status()
    latencies: list[float] = []
    errors = 0
    remaining = requests
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal remaining, errors
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            started = time.perf_counter()
            response = await client.get(url, headers=headers)
            latencies.append(time.perf_counter() - started)
            errors += response.status_code != 200

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Figures(name, len(latencies), time.perf_counter() - started, latencies, errors)


async def _measure(
    base: str, fixture: Fixture, requests: int, concurrency: int, seconds: float, rounds: int
) -> list[Figures]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        login = await client.post(
            "/api/v1/auth/login", json={"email": fixture.member_email, "password": PASSWORD}
        )
        login.raise_for_status()
        cookie = "; ".join(f"{k}={v}" for k, v in login.cookies.items())
        client.cookies.clear()
        company = f"/api/v1/companies/{fixture.company_id}"
        scenarios: list[tuple[str, str, dict[str, str]]] = [
            ("public: GET city", f"/api/v1/cities/{PUBLIC_CITY}", {}),
            ("session cookie: GET company", company, {"Cookie": cookie}),
            (
                "bearer token: GET company",
                company,
                {"Authorization": f"Bearer {fixture.staff_token}"},
            ),
        ]
        # Interleaved rounds, so that drift of the machine (other load, CPU boost) hits all alike.
        results: dict[str, list[Figures]] = {name: [] for name, _url, _headers in scenarios}
        for _ in range(rounds):
            for name, url, headers in scenarios:
                results[name].append(await _load(client, name, url, headers, requests, concurrency, seconds))
        return [
            Figures(
                name,
                sum(f.requests for f in runs),
                sum(f.seconds for f in runs),
                [latency for f in runs for latency in f.latencies],
                sum(f.errors for f in runs),
            )
            for name, runs in results.items()
        ]


async def bench_auth(
    *,
    requests: int,
    concurrency: int,
    seconds: float,
    rounds: int,
    workers: int,
    postgres_url: str | None,
    report: Callable[[str], None],
) -> list[Figures]:
    with tempfile.TemporaryDirectory(prefix="partnermatch-bench-auth-") as scratch:
        database = f"partnermatch_bench_{uuid.uuid4().hex[:12]}"
        if postgres_url is not None:
            await _admin(postgres_url, f'CREATE DATABASE "{database}"')
            url = _sqlalchemy_url(postgres_url, database)
        else:
            url = f"sqlite+aiosqlite:///{Path(scratch) / 'bench.db'}"
        try:
            settings = Settings(database_url=url, var_dir=Path(scratch) / "var")
            report(f"preparing {url.split('://', 1)[0]} database")
            fixture = await _prepare(settings)
            port = _free_port()
            with _server(settings, port, workers) as base:
                report(f"server on {base}; {rounds} rounds of up to {requests:,} requests per scenario")
                return await _measure(base, fixture, requests, concurrency, seconds, rounds)
        finally:
            if postgres_url is not None:
                await _admin(postgres_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def figures_table(results: list[Figures], title: str) -> Table:
    table = Table(title=title)
    for column in ("scenario", "requests", "errors", "req/s", "vs public", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    public = results[0].per_second or 1.0
    for f in results:
        table.add_row(
            f.name,
            f"{f.requests:,}",
            str(f.errors),
            f"{f.per_second:,.0f}",
            f"{f.per_second / public:.0%}",
            f"{f.percentile(0.5):.1f}",
            f"{f.percentile(0.99):.1f}",
        )
    table.caption = "p50 and p99 over all rounds; the goal: authenticated ≥ 70% of public req/s"
    return table
