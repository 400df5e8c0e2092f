"""`partnermatch bench auth`: what authentication and authorization cost, measured on a real server.

Starts the API with granian on loopback against a fresh database holding one synthetic company,
then runs the same bounded load, in interleaved rounds, against:

- the baseline, a public read of that company: `GET /api/v1/bench/companies/{id}`;
- `GET /api/v1/companies/{id}` with a member's session cookie, and with a staff bearer token;
- for reference, the public `GET /api/v1/cities/{id}` (one row, one query).

Why the baseline is like for like: it is the same service call, the same SQL and the same response
as the member's read, minus authentication. Its handler calls `CompanyService.get_company` with a
fixed principal that is a member of the synthetic company, so the query is the member's query
(company by id, scoped to the member's company), the sector and city links load with the same two
selectin queries, and `read_as` builds the same `CompanyRead`. Every middleware runs for it too;
it just carries no credentials, as any public request. The difference between the baseline and the
authenticated reads is thus what authentication and authorization add: the session or token
lookup, the idle-session and last-used bookkeeping, the audit actor and the access guard. The city
read is cheaper than the company read for reasons that are not authentication (one query instead of
three), which is why it is no longer the baseline.

The baseline route exists only in `bench_app`, the factory this benchmark serves; `create_app`
(what `partnermatch serve` runs) never has it. It answers only for the synthetic company created
for the run (the fixed principal's scope), so even that throwaway server exposes nothing else.

Prints requests/s, p50 and p99, the server's CPU time per request, and the machine's load average
before and after; not a test. The load client runs on the same machine and needs CPU too, which
pulls all requests/s towards one another; and when other work competes for the CPUs, requests/s
and latencies move with it. The server's CPU time per request (its processes, read from /proc) is
affected by neither, so its ratio to the baseline is the steadier estimate of what authentication
costs a CPU-bound server."""

import os
import tempfile
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from litestar import Litestar, get
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from rich.table import Table

from partnermatch.access import Access, Principal, access
from partnermatch.accounts.service import AccountService
from partnermatch.app import create_app
from partnermatch.bench.imports import admin, sqlalchemy_url
from partnermatch.bench.serving import (
    Figures,
    Scenario,
    client_for,
    cookie_header,
    free_port,
    load_average,
    measure,
    server,
)
from partnermatch.companies.controllers import provide_company_service
from partnermatch.companies.schemas import CompanyCreate, CompanyRead
from partnermatch.companies.service import CompanyService
from partnermatch.db import migrate, session_scope
from partnermatch.enums import CompanyStatus, ExportExperience, UserRole
from partnermatch.mapping import read_as
from partnermatch.settings import Settings

PASSWORD = "bench-password-not-common-42"
PUBLIC_CITY = "tokyo"
BASELINE_PATH = "/api/v1/bench/companies"
# Names the synthetic company to the server process the benchmark starts (bench_app).
COMPANY_ENV = "BENCH_AUTH_COMPANY_ID"


def _baseline_route(synthetic_company: uuid.UUID) -> HTTPRouteHandler:
    viewer = Principal(
        user_id=uuid.UUID(int=0), role=UserRole.MEMBER, company_id=synthetic_company, email_verified=True
    )

    @get(
        BASELINE_PATH + "/{company_id:uuid}",
        opt=access(Access.PUBLIC),
        include_in_schema=False,
        dependencies={"companies": Provide(provide_company_service)},
    )
    async def public_company_read(
        companies: NamedDependency[CompanyService], company_id: FromPath[uuid.UUID]
    ) -> CompanyRead:
        return read_as(await companies.get_company(company_id, viewer), CompanyRead)

    return public_company_read


def bench_app() -> Litestar:
    """The granian factory of the benchmark's own server: the real app plus the baseline route."""
    app = create_app()
    app.register(_baseline_route(uuid.UUID(os.environ[COMPANY_ENV])))
    return app


@dataclass
class Fixture:
    company_id: uuid.UUID
    member_email: str
    staff_token: str


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
        accounts = AccountService(session, settings=settings)
        email = f"member-{uuid.uuid4().hex[:8]}@bench.invalid"
        await accounts.create_user(email, PASSWORD, role=UserRole.MEMBER, company_id=company.id)
        staff = await accounts.create_user(
            f"staff-{uuid.uuid4().hex[:8]}@bench.invalid", None, role=UserRole.STAFF
        )
        _token, secret = await accounts.create_api_token(staff.id, "bench")
        return Fixture(company_id=company.id, member_email=email, staff_token=secret)


def _server(
    settings: Settings, fixture: Fixture, port: int, workers: int
) -> AbstractContextManager[tuple[str, int]]:
    env = {
        "PARTNERMATCH_DATABASE_URL": settings.resolved_database_url,
        "PARTNERMATCH_VAR_DIR": str(settings.var_dir),
        COMPANY_ENV: str(fixture.company_id),
    }
    # What `partnermatch serve` runs (cli.serve_app), with bench_app as the factory.
    return server(f"{__name__}:bench_app", env, port, workers)


async def _measure(
    base: str, server_pid: int, fixture: Fixture, requests: int, concurrency: int, seconds: float, rounds: int
) -> list[Figures]:
    async with client_for(base, concurrency) as client:
        login = await client.post(
            "/api/v1/auth/login", json={"email": fixture.member_email, "password": PASSWORD}
        )
        login.raise_for_status()
        cookie = cookie_header(login)
        client.cookies.clear()
        company = f"/api/v1/companies/{fixture.company_id}"
        scenarios = [
            Scenario("baseline: public company", f"{BASELINE_PATH}/{fixture.company_id}"),
            Scenario("reference: public city", f"/api/v1/cities/{PUBLIC_CITY}"),
            Scenario("session: company", company, {"Cookie": cookie}),
            Scenario("bearer: company", company, {"Authorization": f"Bearer {fixture.staff_token}"}),
        ]
        return await measure(
            client,
            server_pid,
            scenarios,
            requests=requests,
            concurrency=concurrency,
            seconds=seconds,
            rounds=rounds,
        )


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
            await admin(postgres_url, f'CREATE DATABASE "{database}"')
            url = sqlalchemy_url(postgres_url, database)
        else:
            url = f"sqlite+aiosqlite:///{Path(scratch) / 'bench.db'}"
        try:
            settings = Settings(database_url=url, var_dir=Path(scratch) / "var")
            report(f"preparing {url.split('://', 1)[0]} database")
            fixture = await _prepare(settings)
            port = free_port()
            with _server(settings, fixture, port, workers) as (base, server_pid):
                report(f"server on {base}; {rounds} rounds of up to {requests:,} requests per scenario")
                report(load_average("before"))
                results = await _measure(base, server_pid, fixture, requests, concurrency, seconds, rounds)
                report(load_average("after"))
                return results
        finally:
            if postgres_url is not None:
                await admin(postgres_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def figures_table(results: list[Figures], title: str) -> Table:
    table = Table(title=title)
    columns = (
        "scenario",
        "requests",
        "errors",
        "req/s",
        "÷ baseline",
        "p50 ms",
        "p99 ms",
        "CPU ms/req",
        "÷ baseline",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "scenario" else "right")
    baseline = results[0]
    for f in results:
        cpu = f.cpu_per_request
        table.add_row(
            f.name,
            f"{f.requests:,}",
            str(f.errors),
            f"{f.per_second:,.0f}",
            f"{f.per_second / (baseline.per_second or 1.0):.0%}",
            f"{f.percentile(0.5):.1f}",
            f"{f.percentile(0.99):.1f}",
            "-" if cpu is None else f"{cpu * 1000:.2f}",
            # The throughput the CPU cost alone would allow, relative to the baseline's.
            "-"
            if cpu is None or baseline.cpu_per_request is None
            else f"{baseline.cpu_per_request / cpu:.0%}",
        )
    table.caption = (
        "baseline: the same company read, public (see the module docstring). p50 and p99 over all "
        "rounds; CPU: the server's processes per request. Goal: authenticated ≥ 70% of the baseline's req/s"
    )
    return table
