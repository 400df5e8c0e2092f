"""PostgreSQL gone during traffic: the real server (granian, one worker) on a database of its own, staff
reading and creating leads; then that database is made unreachable — new connections refused
(``ALTER DATABASE … ALLOW_CONNECTIONS false``) and every connection to it cut (``pg_terminate_backend``,
from an admin connection to another database) — for a few seconds, and let back.

Checked: every request during the outage is answered, quickly, with a 503 problem (never a 500, never a
hang); no write is half-done (a lead answered 2xx is stored with its sectors and its audit entry, one
answered otherwise is stored entirely or not at all); and when the database is back the same server
process answers 200 again by itself (the pool's pre-ping replaces the dead connections).
``PARTNERMATCH_TEST_LONG=1``: a longer outage and more clients; ``pytest -s`` prints the figures."""

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from partnermatch.settings import Settings
from tests.conftest import BACKENDS, POSTGRES_ADMIN_URL, _asyncpg_dsn, create_database, drop_database
from tests.faults.support import (
    LONG,
    Answer,
    Recorder,
    apoll_until,
    environment,
    machine,
    mode,
    prepare,
    serving,
    summary,
)

READERS, WRITERS = (8, 4) if LONG else (4, 2)
BEFORE, OUTAGE, AFTER = (5.0, 30.0, 10.0) if LONG else (2.0, 3.0, 2.0)
# What "quickly" means: the client gives up after CLIENT_TIMEOUT (a hang); an answer during the outage
# must come within ANSWER_BOUND.
CLIENT_TIMEOUT = 20.0
ANSWER_BOUND = 3.0
RECOVERY_BOUND = 15.0
DB_KINDS = ("read", "write")
CLEAN_ROUNDS = 4


async def terminate(admin: asyncpg.Connection, database: str) -> int:
    ended: int = await admin.fetchval(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = $1 AND pid <> pg_backend_pid()) AS t",
        database,
    )
    return ended


async def cut_off(admin: asyncpg.Connection, database: str) -> int:
    """Refuse new connections to ``database`` and end every one it has; how many were ended.
    pg_terminate_backend only signals, and a connection that passed its check of ALLOW_CONNECTIONS just
    before the change shows up a moment later: ended until none has been seen for CLEAN_ROUNDS rounds."""
    await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
    ended, clean = 0, 0
    deadline = time.monotonic() + 10
    while clean < CLEAN_ROUNDS:
        signalled = await terminate(admin, database)
        ended += signalled
        clean = 0 if signalled else clean + 1
        assert time.monotonic() < deadline, f"backends of {database} still there after 10 s"
        await asyncio.sleep(0.05)
    return ended


async def keep_cut_off(admin: asyncpg.Connection, database: str, stop: asyncio.Event) -> int:
    """During the outage: any connection that appears anyway is ended at once (there should be none)."""
    late = 0
    while not stop.is_set():
        late += await terminate(admin, database)
        await asyncio.sleep(0.05)
    return late


async def reachable(database: str) -> bool:
    try:
        connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_ADMIN_URL, database), timeout=2)
    except (asyncpg.PostgresError, OSError):
        return False
    await connection.close()
    return True


class Traffic:
    def __init__(self, base: str, staff_token: str) -> None:
        self.recorder = Recorder()
        self.stop = asyncio.Event()
        self.base = base
        self.headers = {"Authorization": f"Bearer {staff_token}"}
        self.problems: dict[int, str] = {}
        self.titles: Counter[str] = Counter()

    def now(self) -> float:
        return time.monotonic() - self.recorder.origin

    async def reader(self) -> None:
        async with httpx.AsyncClient(
            base_url=self.base, headers=self.headers, timeout=CLIENT_TIMEOUT
        ) as client:
            while not self.stop.is_set():
                response = await self.recorder.call(
                    client, "read", "GET", "/api/v1/leads", params={"limit": 5}
                )
                self._keep(response)

    async def writer(self) -> None:
        async with httpx.AsyncClient(
            base_url=self.base, headers=self.headers, timeout=CLIENT_TIMEOUT
        ) as client:
            while not self.stop.is_set():
                title = f"fault-{uuid.uuid4().hex}"
                lead = {"title": title, "kind": "buyer", "organization": "Tokyo Buyers KK", "city": "tokyo"}
                lead["sectors"] = ["62.01", "26.51"]  # type: ignore[assignment]
                response = await self.recorder.call(
                    client, "write", "POST", "/api/v1/leads", marker=title, json=lead
                )
                self._keep(response)

    async def liveness(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=CLIENT_TIMEOUT) as client:
            while not self.stop.is_set():
                await self.recorder.call(client, "health", "GET", "/health")
                await asyncio.sleep(0.05)

    def _keep(self, response: httpx.Response | None) -> None:
        if response is not None and response.status_code >= 400:
            self.problems.setdefault(response.status_code, response.text)
            if response.headers.get("content-type") == "application/problem+json":
                self.titles[f"{response.status_code} {response.json().get('title')}"] += 1

    async def first_success_after(self, moment: float, kind: str) -> float | None:
        found = [
            a.started + a.seconds
            for a in self.recorder.between(moment, 1e9, kind)
            if a.status == 201 or a.status == 200
        ]
        return min(found) if found else None


async def run(base: str, staff_token: str, database: str) -> tuple[Traffic, dict[str, float]]:
    traffic = Traffic(base, staff_token)
    tasks = [asyncio.create_task(traffic.reader()) for _ in range(READERS)]
    tasks += [asyncio.create_task(traffic.writer()) for _ in range(WRITERS)]
    tasks.append(asyncio.create_task(traffic.liveness()))
    times: dict[str, float] = {}
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_ADMIN_URL), timeout=5)
    try:
        await asyncio.sleep(BEFORE)  # traffic flows; the duration of a phase, not a synchronisation
        times["cut"] = traffic.now()
        times["connections ended"] = await cut_off(admin, database)
        times["down"] = traffic.now()  # from here on no connection to the database exists or can be made
        assert not await reachable(database), "the database still takes connections"
        over = asyncio.Event()
        watch = asyncio.create_task(keep_cut_off(admin, database, over))
        await asyncio.sleep(OUTAGE)
        over.set()
        times["late connections"] = await watch
        times["up"] = traffic.now()
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        for kind in DB_KINDS:
            times[f"first {kind}"] = await apoll_until(
                lambda kind=kind: traffic.first_success_after(times["up"], kind),  # type: ignore[misc]
                RECOVERY_BOUND,
                f"a successful {kind} after the database came back",
            )
        times["recovered"] = max(times[f"first {kind}"] for kind in DB_KINDS)
        await asyncio.sleep(AFTER)
    finally:
        traffic.stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await admin.close()
    times["end"] = traffic.now()
    return traffic, times


async def stored_leads(database: str, titles: list[str]) -> dict[str, tuple[int, int]]:
    """Each stored lead of ``titles``: its number of sectors and of audit entries."""
    connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_ADMIN_URL, database), timeout=5)
    try:
        rows = await connection.fetch(
            "SELECT l.title, "
            "(SELECT count(*) FROM lead_sectors s WHERE s.lead_id = l.id) AS sectors, "
            "(SELECT count(*) FROM audit_events a WHERE a.entity_id = l.id::text) AS audits "
            "FROM leads l WHERE l.title = ANY($1::text[])",
            titles,
        )
    finally:
        await connection.close()
    return {row["title"]: (row["sectors"], row["audits"]) for row in rows}


def classify_writes(writes: list[Answer], stored: dict[str, tuple[int, int]]) -> dict[str, int]:
    counts = dict.fromkeys(("2xx stored", "refused, not stored", "refused, stored", "2xx lost", "partial"), 0)
    for write in writes:
        ok = write.status is not None and 200 <= write.status < 300
        found = stored.get(write.marker)
        if found is not None and found != (2, 1):
            counts["partial"] += 1
        elif ok:
            counts["2xx stored" if found else "2xx lost"] += 1
        else:
            counts["refused, stored" if found else "refused, not stored"] += 1
    return counts


def test_postgresql_gone_during_traffic_answers_503_loses_nothing_and_recovers(tmp_path: Path) -> None:
    if "postgresql" not in BACKENDS:
        pytest.skip("PostgreSQL is not among PARTNERMATCH_TEST_BACKENDS")
    url = create_database("postgresql", tmp_path)
    database = url.rsplit("/", 1)[1]
    try:
        settings = Settings(database_url=url, var_dir=tmp_path)
        fixture = asyncio.run(prepare(settings))
        env = environment(settings, OUTBOX_POLL_SECONDS="1")
        with serving(env, tmp_path / "server.log") as server:
            traffic, times = asyncio.run(run(server.base, fixture.staff_token, database))
            alive_after = server.process.poll() is None
            log = server.output()
        writes = [a for a in traffic.recorder.answers if a.kind == "write"]
        stored = asyncio.run(stored_leads(database, [w.marker for w in writes]))
    finally:
        drop_database(url)

    recorder = traffic.recorder
    answers = recorder.answers
    # Inside the outage: requests begun after the last connection ended and answered before new ones
    # were allowed again (one begun just before may reach the database only after that).
    inside = [a for a in recorder.between(times["down"], times["up"]) if a.started + a.seconds < times["up"]]
    during = [a for a in inside if a.kind in DB_KINDS]
    health_during = [a for a in inside if a.kind == "health"]
    after = [a for a in recorder.between(times["recovered"], times["end"]) if a.kind in DB_KINDS]
    writes_classified = classify_writes(writes, stored)
    print(
        f"\nPostgreSQL outage ({mode()} mode; {machine()}; {READERS} readers, {WRITERS} writers, 1 /health)"
    )
    print(
        f"  before ({BEFORE:.0f} s): {summary([a for a in recorder.between(0, times['cut']) if a.kind in DB_KINDS])}"
    )
    print(
        f"  cut: {times['connections ended']:.0f} connections ended; unreachable for {times['up'] - times['down']:.1f} s"
    )
    print(f"  during, reads and writes: {summary(during)}")
    print(f"  connections that appeared during the outage: {times['late connections']:.0f}")
    print(f"  during, /health: {summary(health_during)}")
    print(
        f"  back: first read {times['first read'] - times['up']:.2f} s, first write "
        f"{times['first write'] - times['up']:.2f} s after connections were allowed again"
    )
    print(f"  after ({times['end'] - times['recovered']:.1f} s): {summary(after)}")
    print(f"  all: {summary(answers)}")
    print(f"  writes: {writes_classified}")
    print(f"  problems by title: {dict(traffic.titles)}")
    print(f"  a 503 body: {traffic.problems.get(503, '(none)')}")

    assert alive_after, log
    # Answered, always: no request hung until the client's timeout, none lost its connection.
    assert [a for a in answers if a.status is None] == [], log
    assert not [a for a in answers if a.status is not None and a.status >= 500 and a.status != 503], (
        traffic.problems,
        log,
    )
    # During the outage: a 503 problem for everything that needs the database, quickly.
    assert len(during) >= 10
    assert {a.status for a in during} == {503}, summary(during)
    assert {a.content_type for a in during} == {"application/problem+json"}
    assert max(a.seconds for a in during) < ANSWER_BOUND, summary(during)
    # "Service unavailable: the database is unavailable, try again", or "Not saved" when the commit itself
    # was what failed.
    assert set(traffic.titles) <= {"503 Service unavailable", "503 Not saved"}, traffic.titles
    assert traffic.titles["503 Service unavailable"] >= 1
    assert {a.status for a in health_during} == {200}
    # Back by itself, in the same server process, and then without a single error (no dead pooled
    # connection handed out after the outage).
    assert times["recovered"] - times["up"] < RECOVERY_BOUND
    assert len(after) >= 10
    assert {a.status for a in after} <= {200, 201}, summary(after)
    # Nothing half-done: every lead answered 2xx is stored with both sectors and its audit entry; every
    # other one is stored entirely or not at all.
    assert writes_classified["2xx lost"] == 0
    assert writes_classified["partial"] == 0
    assert writes_classified["2xx stored"] >= 2
    assert writes_classified["refused, not stored"] >= 1
