"""What the fault tests share: real servers the tests own on loopback (granian serving the app, a
`redis-server` of their own, `partnermatch worker` processes), a fresh committed database, traffic with
every answer recorded, and the short and long modes (``PARTNERMATCH_TEST_LONG=1``)."""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from redis.asyncio import Redis

from partnermatch.accounts.service import AccountService
from partnermatch.bench.serving import free_port
from partnermatch.db import migrate, session_scope
from partnermatch.enums import UserRole
from partnermatch.settings import Settings
from tests.companies.test_api import approved_company
from tests.conftest import BACKENDS, IN_CI, process_environment

T = TypeVar("T")
LONG = os.environ.get("PARTNERMATCH_TEST_LONG", "") == "1"
# The tests with workers and Redis run on PostgreSQL (production's database) when it is among the
# backends, else on SQLite; in long mode on each. That keeps the short mode well under a minute.
FAULT_BACKENDS = BACKENDS if LONG else ["postgresql" if "postgresql" in BACKENDS else BACKENDS[0]]
PASSWORD = "fault-test-password-not-common-42"


def mode() -> str:
    return "long" if LONG else "short"


def poll_until(probe: Callable[[], T | None], seconds: float, what: str, every: float = 0.1) -> T:
    """``probe()`` again and again until it returns something other than None (or False); that value.
    Fails the test after ``seconds``, naming ``what`` did not happen."""
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds:.0f} s")
        time.sleep(every)


async def apoll_until(probe: Callable[[], Awaitable[T | None]], seconds: float, what: str) -> T:
    deadline = time.monotonic() + seconds
    while True:
        found = await probe()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds:.0f} s")
        await asyncio.sleep(0.1)


# ------------------------------------------------------------------------------------------ servers


class RedisServer:
    """A `redis-server` of the test's own on a free port, keeping nothing on disk: stopping it never
    touches the shared Redis on 6379, and a restart comes back empty, as a crashed cache would."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            reason = "redis-server is not installed (apt-get install redis-server)"
            if IN_CI:
                pytest.fail(f"{reason} (CI=true requires it)", pytrace=False)
            pytest.skip(reason)
        command = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        log = (self.directory / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(command, cwd=self.directory, stdout=log, stderr=subprocess.STDOUT)
        poll_until(self._answers, 10, f"redis-server on port {self.port} answering PING")

    def _answers(self) -> bool:
        async def ping() -> bool:
            client = Redis.from_url(self.url(0), socket_connect_timeout=0.5, socket_timeout=0.5)
            try:
                return bool(await client.ping())
            except Exception:
                return False
            finally:
                await client.aclose()

        return asyncio.run(ping())

    def kill(self) -> None:
        """SIGKILL, as a crash: whatever it held is gone (nothing is on disk)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The PARTNERMATCH_* environment of a server or worker process on ``settings``' database."""
    values = {
        "DATABASE_URL": settings.resolved_database_url,
        "VAR_DIR": str(settings.var_dir),
        "SECRET_KEY": "fault-tests-" + "x" * 40,
        "LOG_LEVEL": "WARNING",
        "SCHEDULE_POLL_SECONDS": "0",  # no scheduled run adds work the test does not count
        "LOGIN_ATTEMPTS_PER_IP_PER_MINUTE": "100000",
        **extra,
    }
    return process_environment(values)


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@contextmanager
def serving(env: dict[str, str], log: Path, *, workers: int = 1) -> Iterator[Server]:
    """granian serving the app on a free loopback port, as `partnermatch serve` runs it, until the block
    ends; its output goes to ``log`` (a pipe nobody reads would stall a server that logs a lot)."""
    port = free_port()
    command = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers), "partnermatch.app:create_app"]
    process = subprocess.Popen(command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, log)

    def started() -> bool:
        if process.poll() is not None:
            pytest.fail(f"the server exited:\n{server.output()}")
        try:
            return httpx.get(f"{server.base}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        poll_until(started, 60, "the server answering /health", every=0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> int:
        """SIGTERM, then the exit code (SIGKILL if it does not stop within 30 s)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)


def start_workers(env: dict[str, str], directory: Path, *names: str) -> list[Worker]:
    """`partnermatch worker --id NAME` for each name, started together; once each has said it runs."""
    workers = []
    for name in names:
        log = directory / f"{name}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "partnermatch", "worker", "--id", name],
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        workers.append(Worker(name, process, log))
    for worker in workers:
        poll_until(
            lambda worker=worker: f"worker {worker.name}:" in worker.output() or _exited(worker),  # type: ignore[misc]
            60,
            f"worker {worker.name} starting",
        )
    return workers


def _exited(worker: Worker) -> bool:
    if worker.process.poll() is not None:
        pytest.fail(f"worker {worker.name} exited:\n{worker.output()[-3000:]}")
    return False


# ----------------------------------------------------------------------------------------- database


@dataclass(frozen=True)
class Fixture:
    company_id: uuid.UUID
    staff_token: str
    member_email: str
    member_token: str


async def prepare(settings: Settings) -> Fixture:
    """Migrate the fresh database and create what the traffic needs: an approved company with a
    verified member (password and token) and a staff account with a token."""
    await migrate(settings)
    async with session_scope(settings) as session:
        company = await approved_company(session, "Fault Tolerant GmbH")
        accounts = AccountService(session, settings=settings)
        email = f"member-{uuid.uuid4().hex[:8]}@example.org"
        member = await accounts.create_user(
            email, PASSWORD, role=UserRole.MEMBER, company_id=company.id, verified=True
        )
        _token, member_token = await accounts.create_api_token(member.id, "faults")
        staff = await accounts.create_user(
            f"staff-{uuid.uuid4().hex[:8]}@example.org", None, role=UserRole.STAFF
        )
        _token, staff_token = await accounts.create_api_token(staff.id, "faults")
        return Fixture(company.id, staff_token, email, member_token)


# ------------------------------------------------------------------------------------------ traffic


@dataclass(frozen=True)
class Answer:
    kind: str
    started: float
    seconds: float
    status: int | None
    """None: no answer (a transport error or the client's timeout)."""
    content_type: str = ""
    marker: str = ""
    """What a write wrote (e.g. a lead's title), to look it up in the database afterwards."""


@dataclass
class Recorder:
    answers: list[Answer] = field(default_factory=list)
    origin: float = field(default_factory=time.monotonic)

    async def call(
        self,
        client: httpx.AsyncClient,
        kind: str,
        method: str,
        url: str,
        *,
        marker: str = "",
        **kwargs: object,
    ) -> httpx.Response | None:
        start = time.monotonic()
        try:
            response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError:
            self.answers.append(Answer(kind, start - self.origin, time.monotonic() - start, None, "", marker))
            return None
        self.answers.append(
            Answer(
                kind,
                start - self.origin,
                time.monotonic() - start,
                response.status_code,
                response.headers.get("content-type", ""),
                marker,
            )
        )
        return response

    def between(self, start: float, end: float, kind: str | None = None) -> list[Answer]:
        """Answers to requests started in [start, end) seconds after the origin."""
        return [a for a in self.answers if start <= a.started < end and (kind is None or a.kind == kind)]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def summary(answers: list[Answer]) -> str:
    statuses: dict[str, int] = {}
    for answer in answers:
        key = str(answer.status) if answer.status is not None else "no answer"
        statuses[key] = statuses.get(key, 0) + 1
    seconds = [a.seconds for a in answers]
    shown = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
    return (
        f"{len(answers)} requests ({shown}); p50 {percentile(seconds, 50) * 1000:.0f} ms, "
        f"p99 {percentile(seconds, 99) * 1000:.0f} ms, max {max(seconds, default=0) * 1000:.0f} ms"
    )


def machine() -> str:
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{os.cpu_count()} cores, load average {load}"
