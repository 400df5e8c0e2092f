"""`partnermatch bench serving`: what the hot reads cost on a real server, beside the cheapest route, on
both databases, with a load generator that is not the bottleneck.

Prepares a generated dataset (10,000 companies x 5,000 leads by default) with a trained model and its
stored recommendations (`partnermatch.demo.prepare` on the larger dataset) and the demo accounts, on
SQLite in a var dir and, when a PostgreSQL server is reachable, in a database there (created once and
reused, as the var dir is). For each database it starts the server with granian on loopback, signs in
as the demo member through the portal's login form, creates a staff API token, and loads each route
with wrk (Debian's `wrk`, a C program in another process) at each concurrency:

- `GET /health` without credentials: what the server manages for next to no work;
- the same with the staff bearer token: what authenticating a request adds;
- `GET /api/v1/companies/{id}` and `GET /api/v1/companies/{id}/recommendations?limit=20` with the
  member's session cookie: the company read and the stored recommendations as JSON;
- `GET /recommendations` with the same cookie: the portal's page of the same list.

Meanwhile a writer in this process changes another company's profile once a second with the staff
token (its answers are counted: a write that failed is printed), so that the reads on SQLite are
measured beside a writer holding the one write lock now and then.

Besides requests/s and wrk's p50 and p99, each run records the server's CPU time per request (its
processes, from /proc) and wrk's own CPU time (near a whole core, wrk would be the limit). Then every
route is profiled in this process (cProfile, through an in-memory ASGI client) and its CPU time is
split by where it goes: authentication, database (the driver's thread included), templates and
translation, serialisation, framework and middleware, the handlers' own code. Not a test."""

import asyncio
import cProfile
import dataclasses
import logging
import pstats
import re
import resource
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from partnermatch.accounts.demo import DemoCredential
from partnermatch.accounts.service import AccountService
from partnermatch.app import create_app
from partnermatch.bench.imports import admin, sqlalchemy_url
from partnermatch.bench.portal import ACCEPT_LANGUAGE, company_of, demo_member, sign_in
from partnermatch.bench.serving import client_for, free_port, load_average, server, server_cpu
from partnermatch.db import session_scope
from partnermatch.demo import prepare
from partnermatch.enums import UserRole
from partnermatch.portal.controllers import RECOMMENDATIONS_SHOWN
from partnermatch.settings import Settings
from partnermatch.synthetic.generator import GeneratorConfig

CONCURRENCY = (1, 16, 64)
# The goals: stored recommendations ≥ 25 % of plain /health's requests/s on both databases, the
# page ≥ 60 % of the JSON endpoint's, and p99 ≤ 50 ms at 16 clients on SQLite beside the writer.
JSON_SHARE_GOAL = 0.25
PAGE_SHARE_GOAL = 0.60
P99_GOAL_MS = 50.0
P99_GOAL_CONCURRENCY = 16
WRITER_INTERVAL_SECONDS = 1.0
# A fuller model than the demo's, as `partnermatch train` fits it; the served rows are what is measured.
MAX_ITER = 200
POSTGRES_DATABASE = "partnermatch_bench_serving"
LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
REQUESTS_PER_SECOND = re.compile(r"Requests/sec:\s+([\d.]+)")
TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)")
NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    headers: dict[str, str]


@dataclass(frozen=True)
class WrkFigures:
    requests: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    failures: int
    """Answers other than 2xx or 3xx, and socket errors (connect, read, write, timeout)."""


@dataclass(frozen=True)
class Run(WrkFigures):
    backend: str
    route: str
    concurrency: int
    server_cpu_ms: float | None
    client_busy: float


@dataclass
class Writes:
    done: int = 0
    failed: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


@dataclass
class Backend:
    name: str
    runs: list[Run]
    writes: Writes
    profile: dict[str, dict[str, float]]
    load_before: str
    load_after: str
    writer: bool


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def bench_settings(var_dir: Path, database_url: str | None = None) -> Settings:
    """Settings on ``var_dir`` with its own SQLite file (or ``database_url``), whatever the environment says."""
    return Settings(
        var_dir=var_dir, database_url=database_url or f"sqlite+aiosqlite:///{var_dir / 'partnermatch.db'}"
    )


async def postgres_reachable(url: str) -> str | None:
    """None when the server answers, else why not."""
    try:
        await admin(url, "SELECT 1")
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


async def ensure_postgres_database(url: str) -> None:
    try:
        await admin(url, f"CREATE DATABASE {POSTGRES_DATABASE}")
    except Exception as error:
        if "already exists" not in str(error):
            raise


async def bench_serving(
    *,
    var_dir: Path,
    data: GeneratorConfig,
    postgres_url: str | None,
    seconds: float,
    concurrencies: Sequence[int],
    profile_requests: int,
    console: Console,
    writer: bool = True,
) -> list[Backend]:
    def report(line: str) -> None:
        console.print(line, highlight=False)

    if not have_wrk():
        raise RuntimeError("wrk is not installed: `apt-get install wrk` (Debian's package)")
    backends: list[tuple[str, Settings]] = [("SQLite", bench_settings(var_dir))]
    if postgres_url:
        unreachable = await postgres_reachable(postgres_url)
        if unreachable is None:
            await ensure_postgres_database(postgres_url)
            url = sqlalchemy_url(postgres_url, POSTGRES_DATABASE)
            backends.append(("PostgreSQL", bench_settings(var_dir, url)))
        else:
            report(f"PostgreSQL at {postgres_url} is not reachable ({unreachable}): SQLite only")
    results = []
    for name, settings in backends:
        started = time.perf_counter()
        report(f"{name}: preparing {data.companies:,} companies x {data.leads:,} leads (seed {data.seed})")
        credentials = await prepare(settings, console, data, MAX_ITER)
        report(f"{name}: prepared in {time.perf_counter() - started:.0f} s")
        results.append(
            await _measure(
                name, settings, credentials, seconds, concurrencies, profile_requests, report, writer=writer
            )
        )
    return results


async def api_token(settings: Settings, credentials: list[DemoCredential], role: UserRole) -> str:
    """A new API token of the demo account of ``role``."""
    staff = next(c for c in credentials if c.role == role.value)
    async with session_scope(settings) as session:
        accounts = AccountService(session, settings=settings)
        user = await accounts.users.by_email(staff.email)
        if user is None:
            raise RuntimeError(f"the demo account {staff.email} is missing")
        _, secret = await accounts.create_api_token(user.id, "bench serving")
    return secret


async def _routes(
    client: httpx.AsyncClient, settings: Settings, credentials: list[DemoCredential]
) -> tuple[list[Route], str]:
    cookie = await sign_in(client, demo_member(credentials))
    company_id = await company_of(client, cookie)
    token = await api_token(settings, credentials, UserRole.STAFF)
    member = {"Cookie": cookie, "Accept-Language": ACCEPT_LANGUAGE}
    routes = [
        Route("/health", "/health", {"Accept": "application/json"}),
        Route(
            "/health, token", "/health", {"Accept": "application/json", "Authorization": f"Bearer {token}"}
        ),
        Route("company read", f"/api/v1/companies/{company_id}", {**member, "Accept": "application/json"}),
        Route(
            "recommendations JSON",
            f"/api/v1/companies/{company_id}/recommendations?limit={RECOMMENDATIONS_SHOWN}",
            {**member, "Accept": "application/json"},
        ),
        Route("recommendations page", "/recommendations", {**member, "Accept": "text/html"}),
    ]
    for route in routes:
        answer = await client.get(route.path, headers=route.headers)
        if answer.status_code != 200:
            raise RuntimeError(f"{route.name}: {answer.status_code} {answer.text[:200]}")
    # More leads than are stored: scored on demand, so this answers once the server has loaded the model
    # (in the background after its start: loading, and the collection before the freeze, would
    # otherwise fall into the first figures).
    warm = await client.get(
        f"/api/v1/companies/{company_id}/recommendations?limit=100", headers=member, timeout=300
    )
    if warm.status_code != 200:
        raise RuntimeError(f"warming the model up: {warm.status_code} {warm.text[:200]}")
    return routes, token


async def _measure(
    name: str,
    settings: Settings,
    credentials: list[DemoCredential],
    seconds: float,
    concurrencies: Sequence[int],
    profile_requests: int,
    report: Callable[[str], None],
    *,
    writer: bool,
) -> Backend:
    env = {
        "PARTNERMATCH_DATABASE_URL": settings.resolved_database_url,
        "PARTNERMATCH_VAR_DIR": str(settings.var_dir),
    }
    port = free_port()
    runs: list[Run] = []
    writes = Writes()
    with server("partnermatch.app:create_app", env, port, 1) as (base, server_pid):
        async with client_for(base, 4) as client:
            routes, token = await _routes(client, settings, credentials)
            target = await _other_company(client, token, routes)
            report(
                f"{name}: server on {base}; "
                + (
                    f"the writer changes company {target} every {WRITER_INTERVAL_SECONDS:.0f} s"
                    if writer
                    else "no writer"
                )
            )
            before = load_average("before")
            stop = asyncio.Event()
            writing = asyncio.create_task(_writer(client, token, target, writes, stop)) if writer else None
            try:
                for concurrency in concurrencies:
                    for route in routes:
                        run = await _wrk(name, base, route, concurrency, seconds, server_pid)
                        runs.append(run)
                        report(
                            f"{name} {route.name} c{concurrency}: {run.per_second:,.0f} req/s, "
                            f"p99 {run.p99_ms:.1f} ms, {run.failures} failed"
                        )
            finally:
                stop.set()
                if writing is not None:
                    await writing
            after = load_average("after")
    report(f"{name}: profiling each route in this process ({profile_requests} requests each)")
    profile = await _profile(settings, routes, profile_requests)
    return Backend(name, runs, writes, profile, before, after, writer)


async def _other_company(client: httpx.AsyncClient, token: str, routes: list[Route]) -> str:
    """An approved company other than the member's, for the writer."""
    own = routes[2].path.rsplit("/", 1)[1]
    answer = await client.get(
        "/api/v1/companies",
        params={"status": "approved", "limit": 2},
        headers={"Authorization": f"Bearer {token}"},
    )
    answer.raise_for_status()
    for item in answer.json()["items"]:
        if item["id"] != own:
            return str(item["id"])
    raise RuntimeError("no second approved company for the writer")


async def _writer(
    client: httpx.AsyncClient, token: str, company_id: str, writes: Writes, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        description = f"Changed by the serving benchmark, write {writes.done + len(writes.failed) + 1}."
        try:
            answer = await client.patch(
                f"/api/v1/companies/{company_id}",
                json={"description": description},
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.HTTPError as error:
            writes.failed.append(f"{type(error).__name__}: {error}")
        else:
            if answer.status_code == 200:
                writes.done += 1
                writes.latencies.append(time.perf_counter() - started)
            else:
                writes.failed.append(f"{answer.status_code} {answer.text[:200]}")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), WRITER_INTERVAL_SECONDS)


async def _wrk(
    backend: str, base: str, route: Route, concurrency: int, seconds: float, server_pid: int
) -> Run:
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
    for header, value in route.headers.items():
        command += ["-H", f"{header}: {value}"]
    command.append(base + route.path)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = server_cpu(server_pid)
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    # Work after the responses (session touches, recorded impressions) belongs to these requests too.
    await asyncio.sleep(0.2)
    cpu_after = server_cpu(server_pid)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = out.decode()
    if process.returncode != 0 or not REQUESTS_PER_SECOND.search(text):
        raise RuntimeError(f"wrk failed ({process.returncode}): {text}{err.decode()}")
    figures = parse_wrk(text, seconds)
    client_cpu = (children_after.ru_utime - children_before.ru_utime) + (
        children_after.ru_stime - children_before.ru_stime
    )
    server = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    return Run(
        **dataclasses.asdict(figures),
        backend=backend,
        route=route.name,
        concurrency=concurrency,
        server_cpu_ms=None if server is None or not figures.requests else server / figures.requests * 1000,
        client_busy=client_cpu / figures.seconds if figures.seconds else 0.0,
    )


def parse_wrk(text: str, seconds: float) -> WrkFigures:
    """What `wrk --latency` printed; ``seconds``: the duration asked for, if wrk's own is missing."""
    total = TOTAL.search(text)
    rate = REQUESTS_PER_SECOND.search(text)
    latency = {p: float(v) * UNIT_SECONDS[unit] * 1000 for p, v, unit in LATENCY.findall(text)}
    non_2xx = NON_2XX.search(text)
    socket_errors = SOCKET_ERRORS.search(text)
    failures = (int(non_2xx.group(1)) if non_2xx else 0) + (
        sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    )
    return WrkFigures(
        int(total.group(1)) if total else 0,
        float(total.group(2)) * UNIT_SECONDS[total.group(3)] if total else seconds,
        float(rate.group(1)) if rate else 0.0,
        latency.get("50", 0.0),
        latency.get("99", 0.0),
        failures,
    )


# Where a request's CPU time goes, by the file of the function that spends it (cProfile's own time).
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("load client", ("/httpx/", "/httpcore/", "/h11/", "/bench/")),
    ("authentication", ("/partnermatch/accounts/",)),
    (
        "database",
        ("/sqlalchemy/", "/aiosqlite/", "/asyncpg/", "/advanced_alchemy/", "sqlite3", "asyncpg", "greenlet"),
    ),
    (
        "templates and translation",
        ("/jinja2/", "/markupsafe/", "/babel/", "/partnermatch/portal/", ".html", "markupsafe"),
    ),
    ("serialisation", ("msgspec", "/litestar/serialization/", "/litestar/response/", "/json/")),
    (
        "framework and middleware",
        (
            "/litestar/",
            "/anyio/",
            "/partnermatch/app.py",
            "/partnermatch/db.py",
            "/partnermatch/errors.py",
            "/partnermatch/jobs.py",
            "/partnermatch/background/",
        ),
    ),
    ("handlers and services", ("/partnermatch/",)),
)
OTHER = "event loop, builtins, rest"
DRIVER_THREAD = "database driver thread"


def category(filename: str) -> str:
    for name, markers in CATEGORIES:
        if any(marker in filename for marker in markers):
            return name
    return OTHER


def split_by_category(stats: dict[Any, Any]) -> dict[str, float]:
    """cProfile's own time per category. A built-in (``len``, ``str.join``, a C extension's method) has
    no file of its own: its time goes to the categories of its callers, in the shares they spent in it
    (a template's string joins count as templates, not as "the rest")."""
    own: dict[str, float] = {}
    for (filename, _line, function), (_calls, _primitive, tottime, _cumtime, callers) in stats.items():
        if filename != "~":
            key = category(filename)
            own[key] = own.get(key, 0.0) + tottime
            continue
        edges = {caller: edge[2] for caller, edge in callers.items()}
        spent = sum(edges.values())
        if not spent:
            own[category(function)] = own.get(category(function), 0.0) + tottime
            continue
        for (caller_file, _caller_line, caller_function), edge_time in edges.items():
            key = category(caller_file if caller_file != "~" else caller_function)
            own[key] = own.get(key, 0.0) + tottime * edge_time / spent
    return own


@contextmanager
def _cpu_clocks() -> Iterator[dict[str, float]]:
    figures: dict[str, float] = {}
    process, thread = time.process_time(), time.thread_time()
    yield figures
    figures["process"] = time.process_time() - process
    figures["thread"] = time.thread_time() - thread


async def _profile(settings: Settings, routes: list[Route], requests: int) -> dict[str, dict[str, float]]:
    """Milliseconds of CPU per request of each route, by category: shares of this thread's time from
    cProfile (whose overhead inflates every function alike), scaled to the thread's CPU time measured
    without the profiler; the load client's share left out; the time of the other threads (aiosqlite
    runs SQLite in one) counted as the database driver's."""
    # The in-memory client logs every request at INFO; a few thousand lines would bury the figures.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app = create_app(settings)
    profiles: dict[str, dict[str, float]] = {}
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="https://bench.local") as client,
    ):
        for route in routes:
            for _ in range(min(50, requests)):
                (await client.get(route.path, headers=route.headers)).raise_for_status()
            with _cpu_clocks() as clocks:
                for _ in range(requests):
                    await client.get(route.path, headers=route.headers)
            # CPU time of this thread, not wall time: waiting for the driver's thread is not work here.
            profiler = cProfile.Profile(time.thread_time)
            profiler.enable()
            for _ in range(requests):
                await client.get(route.path, headers=route.headers)
            profiler.disable()
            own = split_by_category(pstats.Stats(profiler).stats)  # type: ignore[attr-defined]
            profiled = sum(own.values()) or 1.0
            thread_ms = clocks["thread"] / requests * 1000
            client_share = own.pop("load client", 0.0) / profiled
            split = {key: value / profiled * thread_ms for key, value in own.items()}
            split[DRIVER_THREAD] = max(0.0, clocks["process"] - clocks["thread"]) / requests * 1000
            split["(load client, left out)"] = client_share * thread_ms
            profiles[route.name] = split
    return profiles


def runs_table(backend: Backend) -> Table:
    table = Table(title=f"bench serving, {backend.name}, 1 worker, wrk in another process")
    for column in (
        "route",
        "clients",
        "requests",
        "req/s",
        "% of /health",
        "p50 ms",
        "p99 ms",
        "failed",
        "server CPU ms/req",
        "wrk busy",
    ):
        table.add_column(column, justify="left" if column == "route" else "right")
    health = {r.concurrency: r.per_second for r in backend.runs if r.route == "/health"}
    for run in backend.runs:
        share = run.per_second / health[run.concurrency] if health.get(run.concurrency) else None
        table.add_row(
            run.route,
            str(run.concurrency),
            f"{run.requests:,}",
            f"{run.per_second:,.0f}",
            "-" if share is None else f"{share:.0%}",
            f"{run.p50_ms:.1f}",
            f"{run.p99_ms:.1f}",
            str(run.failures),
            "-" if run.server_cpu_ms is None else f"{run.server_cpu_ms:.2f}",
            f"{run.client_busy:.0%}",
        )
    table.caption = (
        "server CPU: the granian process tree per request (work after the response included); "
        "wrk busy: the load generator's share of one CPU"
    )
    return table


def profile_table(backend: Backend) -> Table:
    table = Table(title=f"where a request's CPU goes, {backend.name} (in-process profile, ms per request)")
    keys = [name for name, _ in CATEGORIES if name != "load client"] + [OTHER, DRIVER_THREAD]
    table.add_column("route")
    for key in keys:
        table.add_column(key, justify="right")
    table.add_column("total", justify="right")
    for route, split in backend.profile.items():
        table.add_row(
            route, *(f"{split.get(k, 0.0):.2f}" for k in keys), f"{sum(split.get(k, 0.0) for k in keys):.2f}"
        )
    table.caption = (
        "granian's own work (HTTP parsing, in Rust) is not in this profile; it is in the server CPU above"
    )
    return table


def goals(backends: Sequence[Backend]) -> list[str]:
    lines = []
    for backend in backends:
        by = {(r.route, r.concurrency): r for r in backend.runs}
        for concurrency in sorted({r.concurrency for r in backend.runs}):
            health = by.get(("/health", concurrency))
            api = by.get(("recommendations JSON", concurrency))
            page = by.get(("recommendations page", concurrency))
            if health and api and health.per_second:
                share = api.per_second / health.per_second
                verdict = "met" if share >= JSON_SHARE_GOAL else "MISSED"
                lines.append(
                    f"{backend.name} c{concurrency}: recommendations JSON {share:.0%} of /health's req/s "
                    f"(goal ≥ {JSON_SHARE_GOAL:.0%}) — {verdict}"
                )
            if api and page and api.per_second:
                share = page.per_second / api.per_second
                verdict = "met" if share >= PAGE_SHARE_GOAL else "MISSED"
                lines.append(
                    f"{backend.name} c{concurrency}: page {share:.0%} of the JSON endpoint's req/s "
                    f"(goal ≥ {PAGE_SHARE_GOAL:.0%}) — {verdict}"
                )
        if backend.name == "SQLite":
            reads = [
                r for r in backend.runs if r.concurrency == P99_GOAL_CONCURRENCY and r.route != "/health"
            ]
            for run in reads:
                verdict = "met" if run.p99_ms <= P99_GOAL_MS else "MISSED"
                lines.append(
                    f"SQLite c{P99_GOAL_CONCURRENCY}{' beside the writer' if backend.writer else ', no writer'}: "
                    f"{run.route} p99 {run.p99_ms:.1f} ms "
                    f"(goal ≤ {P99_GOAL_MS:.0f} ms) — {verdict}"
                )
        if backend.writer:
            w = backend.writes
            slowest = max(w.latencies, default=0.0) * 1000
            lines.append(
                f"{backend.name} writer: {w.done} profile changes answered 200 (slowest {slowest:.0f} ms), "
                f"{len(w.failed)} failed" + (f": {w.failed[:3]}" if w.failed else "")
            )
        lines += [backend.load_before, backend.load_after]
        busy = max((r.client_busy for r in backend.runs), default=0.0)
        lines.append(
            f"{backend.name} load generator: wrk used at most {busy:.0%} of one CPU"
            + (" — it may be the limit of the fastest route" if busy > 0.8 else ": it is not the limit")
        )
    return lines


def default_data(companies: int, leads: int, seed: int) -> GeneratorConfig:
    return dataclasses.replace(GeneratorConfig(), companies=companies, leads=leads, seed=seed)
