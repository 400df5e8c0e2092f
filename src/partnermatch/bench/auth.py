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
from litestar import Litestar, get
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from rich.table import Table

from partnermatch.access import Access, Principal, access
from partnermatch.accounts.service import AccountService
from partnermatch.app import create_app
from partnermatch.bench.imports import admin, sqlalchemy_url
from partnermatch.companies.controllers import provide_company_service
from partnermatch.companies.schemas import CompanyCreate, CompanyRead
from partnermatch.companies.service import CompanyService
from partnermatch.db import migrate, session_scope
from partnermatch.enums import CompanyStatus, ExportExperience, UserRole
from partnermatch.mail import mailer_for
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
class Figures:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    errors: int
    # CPU time of the server's processes while they served these requests (None without /proc).
    server_cpu: float | None = None

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_request(self) -> float | None:
        if self.server_cpu is None or not self.requests:
            return None
        return self.server_cpu / self.requests

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0


@dataclass
class Fixture:
    company_id: uuid.UUID
    member_email: str
    staff_token: str


def _load_average(when: str) -> str:
    # Other work on the machine moves the absolute figures; the ratio to the baseline moves less.
    one, five, fifteen = os.getloadavg()
    return f"load average {when}: {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def _server_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by a process and its descendants (granian's workers).

    Unlike requests/s, this hardly moves when other work competes for the CPUs, so on a shared
    machine it is the steadier measure of what a request costs the server."""
    proc = Path("/proc")
    if not (proc / str(pid) / "stat").exists():
        return None
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # The command name (in parentheses) may hold spaces; the fields after it are fixed.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # a process that ended meanwhile
        child = int(stat.parent.name)
        parents[child] = int(fields[1])
        times[child] = int(fields[11]) + int(fields[12])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(times.get(p, 0) for p in tree) / os.sysconf("SC_CLK_TCK")


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
def _server(settings: Settings, fixture: Fixture, port: int, workers: int) -> Iterator[tuple[str, int]]:
    env = {
        **os.environ,
        "PARTNERMATCH_DATABASE_URL": settings.resolved_database_url,
        "PARTNERMATCH_VAR_DIR": str(settings.var_dir),
        "PARTNERMATCH_LOG_LEVEL": "WARNING",
        COMPANY_ENV: str(fixture.company_id),
    }
    # What `partnermatch serve` runs (cli.serve_app), with bench_app as the factory.
    command = [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        f"{__name__}:bench_app",
    ]
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
        yield base, server.pid
    finally:
        server.terminate()
        server.wait(timeout=20)


async def _load(
    client: httpx.AsyncClient,
    server_pid: int,
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

    cpu_before = _server_cpu(server_pid)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu_after = _server_cpu(server_pid)
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    return Figures(name, len(latencies), elapsed, latencies, errors, cpu)


async def _measure(
    base: str, server_pid: int, fixture: Fixture, requests: int, concurrency: int, seconds: float, rounds: int
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
            ("baseline: public company", f"{BASELINE_PATH}/{fixture.company_id}", {}),
            ("reference: public city", f"/api/v1/cities/{PUBLIC_CITY}", {}),
            ("session: company", company, {"Cookie": cookie}),
            (
                "bearer: company",
                company,
                {"Authorization": f"Bearer {fixture.staff_token}"},
            ),
        ]
        # Interleaved rounds, so that drift of the machine (other load, CPU boost) hits all alike.
        results: dict[str, list[Figures]] = {name: [] for name, _url, _headers in scenarios}
        for _ in range(rounds):
            for name, url, headers in scenarios:
                results[name].append(
                    await _load(client, server_pid, name, url, headers, requests, concurrency, seconds)
                )
        return [
            Figures(
                name,
                sum(f.requests for f in runs),
                sum(f.seconds for f in runs),
                [latency for f in runs for latency in f.latencies],
                sum(f.errors for f in runs),
                None if any(f.server_cpu is None for f in runs) else sum(f.server_cpu or 0.0 for f in runs),
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
            await admin(postgres_url, f'CREATE DATABASE "{database}"')
            url = sqlalchemy_url(postgres_url, database)
        else:
            url = f"sqlite+aiosqlite:///{Path(scratch) / 'bench.db'}"
        try:
            settings = Settings(database_url=url, var_dir=Path(scratch) / "var")
            report(f"preparing {url.split('://', 1)[0]} database")
            fixture = await _prepare(settings)
            port = _free_port()
            with _server(settings, fixture, port, workers) as (base, server_pid):
                report(f"server on {base}; {rounds} rounds of up to {requests:,} requests per scenario")
                report(_load_average("before"))
                results = await _measure(base, server_pid, fixture, requests, concurrency, seconds, rounds)
                report(_load_average("after"))
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
