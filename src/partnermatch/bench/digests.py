"""`partnermatch bench digests`: one weekly digest run for many companies, to a mail server on loopback.

Prepares a fresh SQLite database (or reuses one prepared earlier in ``--var-dir``): a generated dataset
(our generator) imported as staff would, one verified, consenting member per company (German and
English alternately) and, as the stored recommendations of an active model version, ``per_company``
open leads per company (preferring its NACE division, with the reasons serving stores). Then, with the
sink of :mod:`partnermatch.bench.smtp_sink` running in a process of its own:

1. the run: ``partnermatch digests send --now T`` in a child process, as an operator would start it
   (choose, render and record each batch, while its companion process delivers what is recorded, one
   SMTP connection per batch), until the sink has every message; the resident memory of both is
   sampled from ``/proc`` every 0.1 s, so that the figures are the run's own and not this process's;
2. the floor: the same number of pre-rendered messages (the first messages of the run as the sink
   received them, cycled) handed to the sink alone by a process that imports nothing else
   (:mod:`partnermatch.bench.smtp_floor`), one connection per batch of the outbox's size: what the
   mail server and the loopback cost without the digest's work.

Prints messages/s, total time and peak memory of both, when the first message arrived, the run's
resident memory at a tenth of its time beside its peak (flat: the peak does not grow with the number of
companies) and the machine's load average. The goals
(issue 11): 20,000 digests in under 5 minutes on a 2-core machine, within 3 times the floor."""

import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import sklearn
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.accounts.models import User
from partnermatch.accounts.passwords import hash_password
from partnermatch.bench.imports import generate_dataset
from partnermatch.bench.serving import free_port, load_average
from partnermatch.clock import local_date, local_zone
from partnermatch.companies.models import Company, CompanySector, CompanyTargetCity
from partnermatch.datasets.importer import import_dataset
from partnermatch.db import migrate, refresh_statistics, session_scope
from partnermatch.enums import CompanyStatus, DigestFrequency, Language, LeadStatus, UserRole
from partnermatch.leads.models import Lead, LeadSector
from partnermatch.recommendations.models import ModelVersion, StoredRecommendation
from partnermatch.settings import Settings

MINUTES_GOAL = 5.0
FLOOR_RATIO_GOAL = 3.0
PREPARED_MARK = "prepared"
ROWS_PER_INSERT = 5_000
SAMPLE_SECONDS = 0.1
# Distinct pre-rendered messages of the floor, sent in a cycle.
FLOOR_DISTINCT = 1_000


@dataclass
class RunFigures:
    messages: int
    seconds: float
    first_message_after: float | None
    peak_mb: float
    companion_peak_mb: float
    early_rss_mb: float
    """Resident memory of the run's process when a tenth of its time had passed."""
    output: str

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


@dataclass
class FloorFigures:
    messages: int
    seconds: float
    peak_mb: float
    mean_bytes: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


@dataclass
class DigestBenchResult:
    companies: int
    stored_rows: int
    run: RunFigures
    floor: FloorFigures
    checks: list[str] = field(default_factory=list)
    load_before: str = ""
    load_after: str = ""

    @property
    def floor_ratio(self) -> float:
        return self.run.seconds / self.floor.seconds if self.floor.seconds else 0.0


def read_stats(path: Path) -> dict[str, Any]:
    """What the sink (:mod:`partnermatch.bench.smtp_sink`) received so far."""
    try:
        found: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"messages": 0, "bytes": 0, "first": None, "last": None}
    return found


def status_kb(pid: int, field_name: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), ROWS_PER_INSERT):
        yield rows[start : start + ROWS_PER_INSERT]


async def _insert(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> None:
    for chunk in _chunks(rows):
        await session.execute(insert(table), chunk)


async def populate(settings: Settings, *, per_company: int, seed: int) -> tuple[datetime, int]:
    """Members and stored recommendations for the imported companies; returns the moment of the run (an
    hour after the last lead was published, so the leads are open) and the number of stored rows."""
    rnd = random.Random(seed)
    async with session_scope(settings) as session:
        latest = await session.scalar(select(func.max(Lead.published_at)))
        assert latest is not None, "the dataset has no leads"
        now = latest + timedelta(hours=1)
        today = local_date(now)
        company_ids = list(
            (
                await session.scalars(
                    select(Company.id)
                    .where(Company.status == CompanyStatus.APPROVED.value)
                    .order_by(Company.id)
                )
            ).all()
        )
        first_sector: dict[UUID, str] = {}
        for company_id, code in (
            await session.execute(
                select(CompanySector.company_id, CompanySector.code).order_by(
                    CompanySector.company_id, CompanySector.position
                )
            )
        ).tuples():
            first_sector.setdefault(company_id, code)
        targets: dict[UUID, set[str]] = {}
        for company_id, city in (
            await session.execute(select(CompanyTargetCity.company_id, CompanyTargetCity.city_id))
        ).tuples():
            targets.setdefault(company_id, set()).add(city)
        open_leads = (
            await session.execute(
                select(Lead.id, Lead.city_id, LeadSector.code)
                .join(LeadSector, LeadSector.lead_id == Lead.id)
                .where(
                    Lead.status == LeadStatus.OPEN.value,
                    (Lead.deadline.is_(None)) | (Lead.deadline >= today),
                    Lead.published_at <= now,
                )
            )
        ).tuples()
        lead_city: dict[UUID, str] = {}
        by_division: dict[str, list[UUID]] = {}
        for lead_id, city, code in open_leads:
            if lead_id not in lead_city:
                lead_city[lead_id] = city
                by_division.setdefault(code[:2], []).append(lead_id)
        every_lead = list(lead_city)
        assert len(every_lead) >= per_company, f"only {len(every_lead)} open leads at {now.isoformat()}"

        password = await hash_password("digest-bench-member")
        await _insert(
            session,
            User,
            [
                {
                    "id": UUID(int=rnd.getrandbits(128)),
                    "email": f"member{number}@bench.example.org",
                    "password_hash": password,
                    "role": UserRole.MEMBER.value,
                    "company_id": company_id,
                    "is_active": True,
                    "email_verified_at": now - timedelta(days=30),
                    "language": (Language.DE if number % 2 == 0 else Language.EN).value,
                    "digest_frequency": DigestFrequency.WEEKLY.value,
                    "digest_consent_at": now - timedelta(days=30),
                    "created_at": now - timedelta(days=30),
                    "updated_at": now - timedelta(days=30),
                }
                for number, company_id in enumerate(company_ids)
            ],
        )
        version = ModelVersion(
            version="bench-digests",
            artifact_path="(none: the benchmark's rows were generated, not scored)",
            sha256="0" * 64,
            created_at=now - timedelta(days=1),
            sklearn_version=sklearn.__version__,
            is_active=True,
            activated_at=now - timedelta(days=1),
        )
        session.add(version)
        await session.flush()
        rows = []
        for company_id in company_ids:
            code = first_sector.get(company_id, "")
            near = by_division.get(code[:2], [])
            chosen = rnd.sample(near, min(len(near), per_company // 2))
            chosen += [lead for lead in rnd.sample(every_lead, per_company) if lead not in chosen]
            for rank, lead_id in enumerate(chosen[:per_company]):
                reasons: list[dict[str, Any]] = [{"key": "same_sector", "params": {"code": code}}]
                if lead_city[lead_id] in targets.get(company_id, set()):
                    reasons.append({"key": "targets_city", "params": {"city": lead_city[lead_id]}})
                score = 0.9 * 0.97**rank
                rows.append(
                    {
                        "model_version_id": version.id,
                        "company_id": company_id,
                        "lead_id": lead_id,
                        "ranking_score": score,
                        "score": score,
                        "method": "model",
                        "reasons": reasons,
                        "truncated": False,
                        "computed_at": now - timedelta(hours=12),
                    }
                )
        await _insert(session, StoredRecommendation, rows)
        # As the product's own full recompute does after writing a version's rows.
        await refresh_statistics(session)
    return now, len(rows)


def run_environment(settings: Settings, smtp_port: int) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARTNERMATCH_")}
    values = {
        "DATABASE_URL": settings.database_url,
        "VAR_DIR": str(settings.var_dir),
        "MAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_STARTTLS": "false",
        "PUBLIC_URL": "https://partnermatch.example.org",
        "LOG_LEVEL": "WARNING",
    }
    environment.update({f"PARTNERMATCH_{name}": value for name, value in values.items()})
    return environment


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError, ValueError):
            found.extend(int(child) for child in task.read_text().split())
    return found


def measure_run(settings: Settings, now: datetime, smtp_port: int, stats: Path, expected: int) -> RunFigures:
    """The digest run in a child process, until it exits and the sink has its messages. Its memory and
    its companion's (the process that delivers the mail, see ``partnermatch mail deliver --follow``) are
    sampled from /proc while they run."""
    command = [sys.executable, "-m", "partnermatch", "digests", "send", "--now", _berlin_minute(now)]
    log = settings.var_dir / "digest-run.log"
    started = time.monotonic()
    samples: list[tuple[float, int]] = []
    peaks: dict[int, int] = {}
    with log.open("w") as output:
        child = subprocess.Popen(
            command, env=run_environment(settings, smtp_port), stdout=output, stderr=subprocess.STDOUT
        )
        while child.poll() is None:
            rss = status_kb(child.pid, "VmRSS")
            for pid in [child.pid, *children(child.pid)]:
                peaks[pid] = max(peaks.get(pid, 0), status_kb(pid, "VmHWM") or 0)
            if rss is not None:
                samples.append((time.monotonic() - started, rss))
            time.sleep(SAMPLE_SECONDS)
    ended = time.monotonic()
    text = log.read_text()
    if child.returncode != 0:
        raise RuntimeError(f"the digest run failed ({child.returncode}):\n{text[-3000:]}")
    received = _wait_for(stats, expected, seconds=30)
    seconds = max(ended, received.get("last") or ended) - started
    first = received.get("first")
    tenth = [rss for at, rss in samples if at >= seconds / 10]
    return RunFigures(
        messages=int(received["messages"]),
        seconds=seconds,
        first_message_after=None if first is None else first - started,
        peak_mb=peaks.get(child.pid, 0) / 1024,
        companion_peak_mb=sum(kb for pid, kb in peaks.items() if pid != child.pid) / 1024,
        early_rss_mb=(tenth[0] if tenth else 0) / 1024,
        output=text,
    )


def _berlin_minute(now: datetime) -> str:
    # The command reads --now as Berlin time, to the minute: the next minute, so nothing is later.
    return (now.astimezone(local_zone()) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")


def _wait_for(stats: Path, expected: int, *, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        found = read_stats(stats)
        if found["messages"] >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def measure_floor(settings: Settings, kept: Path, count: int, smtp_port: int, stats: Path) -> FloorFigures:
    """The floor in a process of its own (:mod:`partnermatch.bench.smtp_floor`), for its own peak: from
    its first message until the sink has the last."""
    before = read_stats(stats)["messages"]
    command = [
        sys.executable,
        "-m",
        "partnermatch.bench.smtp_floor",
        str(kept),
        str(count),
        str(smtp_port),
        settings.mail_from,
    ]
    sender = subprocess.Popen(command, stdout=subprocess.PIPE)
    peak_kb = 0
    while sender.poll() is None:
        peak_kb = max(peak_kb, status_kb(sender.pid, "VmHWM") or 0)
        time.sleep(SAMPLE_SECONDS)
    if sender.returncode != 0:
        raise RuntimeError(f"the floor's sender failed ({sender.returncode})")
    assert sender.stdout is not None
    figures = json.loads(sender.stdout.read())
    received = _wait_for(stats, before + count, seconds=30)
    return FloorFigures(
        messages=int(received["messages"]) - before,
        seconds=(received.get("last") or time.monotonic()) - figures["started"],
        peak_mb=peak_kb / 1024,
        mean_bytes=figures["mean_bytes"],
    )


@dataclass
class Prepared:
    settings: Settings
    now: datetime
    companies: int
    stored_rows: int


async def prepare_database(
    var_dir: Path, *, companies: int, leads: int, per_company: int, seed: int, console: Console
) -> Prepared:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{var_dir / 'digests.db'}", var_dir=var_dir)
    mark = var_dir / PREPARED_MARK
    if mark.exists():
        stamp, count, rows = mark.read_text().split()
        console.print(f"reusing the database prepared in {var_dir}", highlight=False)
        return Prepared(settings, datetime.fromisoformat(stamp), int(count), int(rows))
    await asyncio.to_thread(clear, var_dir)
    started = time.perf_counter()
    counts = await asyncio.to_thread(
        generate_dataset, var_dir / "dataset", companies, leads, companies * 5, seed, None
    )
    console.print(
        f"generated {counts.get('companies', companies):,} companies and {counts.get('leads', leads):,} leads "
        f"in {time.perf_counter() - started:.0f} s",
        highlight=False,
    )
    await migrate(settings)
    async with session_scope(settings) as session:
        await import_dataset(session, var_dir / "dataset")
    now, stored = await populate(settings, per_company=per_company, seed=seed)
    console.print(
        f"imported, {stored:,} stored recommendations, members: {time.perf_counter() - started:.0f} s",
        highlight=False,
    )
    mark.write_text(f"{now.isoformat()} {companies} {stored}")
    return Prepared(settings, now, companies, stored)


def clear(var_dir: Path) -> None:
    """What an interrupted preparation left is not reused."""
    for leftover in var_dir.glob("digests*.db*"):
        leftover.unlink()
    shutil.rmtree(var_dir / "dataset", ignore_errors=True)


def restore(var_dir: Path) -> None:
    """Each run starts from the prepared state (a second run of the same period would send nothing)."""
    database = var_dir / "digests.db"
    pristine = var_dir / "digests.prepared.db"
    if not pristine.exists():
        pristine.write_bytes(database.read_bytes())
    else:
        database.write_bytes(pristine.read_bytes())
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)


def start_sink(var_dir: Path) -> tuple[subprocess.Popen[bytes], int, Path, Path]:
    port = free_port()
    stats = var_dir / "sink.json"
    stats.unlink(missing_ok=True)
    kept = var_dir / "kept"
    shutil.rmtree(kept, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "partnermatch.bench.smtp_sink",
        "--port",
        str(port),
        "--stats",
        str(stats),
    ]
    sink = subprocess.Popen([*command, "--keep", str(FLOOR_DISTINCT), "--keep-dir", str(kept)])
    deadline = time.monotonic() + 20
    while not stats.exists():
        if sink.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the SMTP sink did not start")
        time.sleep(0.1)
    return sink, port, stats, kept


async def bench_digests(
    var_dir: Path,
    *,
    companies: int,
    leads: int,
    per_company: int,
    seed: int,
    console: Console,
    report: Callable[[str], None],
) -> DigestBenchResult:
    prepared = await prepare_database(
        var_dir, companies=companies, leads=leads, per_company=per_company, seed=seed, console=console
    )
    await asyncio.to_thread(restore, var_dir)

    sink, port, stats, kept = await asyncio.to_thread(start_sink, var_dir)
    try:
        load_before = load_average("before")
        report(f"digest run for {prepared.companies:,} companies ...")
        run = await asyncio.to_thread(
            measure_run, prepared.settings, prepared.now, port, stats, prepared.companies
        )
        report(f"floor: {run.messages:,} pre-rendered messages to the sink alone ...")
        floor = await asyncio.to_thread(measure_floor, prepared.settings, kept, run.messages, port, stats)
        load_after = load_average("after")
    finally:
        sink.terminate()
        sink.wait(timeout=20)
    # The command's summary, however its console wrapped it.
    summary_at = run.output.find("companies considered")
    checks = [" ".join(run.output[summary_at:].split())] if summary_at >= 0 else []
    return DigestBenchResult(
        companies=prepared.companies,
        stored_rows=prepared.stored_rows,
        run=run,
        floor=floor,
        checks=checks,
        load_before=load_before,
        load_after=load_after,
    )


def digest_table(result: DigestBenchResult) -> Table:
    table = Table(title=f"digest run: {result.companies:,} companies, SQLite, mail to a sink on loopback")
    for column in ("", "messages", "total", "messages/s", "peak memory"):
        table.add_column(column, justify="right" if column else "left")
    run, floor = result.run, result.floor
    table.add_row(
        "digest run (choose, render, record, deliver)",
        f"{run.messages:,}",
        f"{run.seconds:,.1f} s",
        f"{run.per_second:,.0f}",
        f"{run.peak_mb:,.0f} + {run.companion_peak_mb:,.0f} MB",
    )
    table.add_row(
        f"floor (pre-rendered, {floor.mean_bytes / 1024:,.0f} KB each)",
        f"{floor.messages:,}",
        f"{floor.seconds:,.1f} s",
        f"{floor.per_second:,.0f}",
        f"{floor.peak_mb:,.0f} MB",
    )
    return table


def summary(result: DigestBenchResult) -> list[str]:
    run = result.run
    lines = []
    if run.first_message_after is not None:
        lines.append(f"first message after {run.first_message_after:.1f} s (start-up and the first batch)")
    lines.append(
        f"resident memory of the run at a tenth of its time {run.early_rss_mb:,.0f} MB, its peak "
        f"{run.peak_mb:,.0f} MB; peak of its companion that delivers the mail {run.companion_peak_mb:,.0f} MB"
    )
    minutes = run.seconds / 60
    lines.append(
        f"goal {result.companies:,} digests in under {MINUTES_GOAL:.0f} minutes: {minutes:.1f} min "
        f"({'met' if minutes < MINUTES_GOAL else 'not met'}); within {FLOOR_RATIO_GOAL:.0f} times the floor: "
        f"{result.floor_ratio:.1f} times ({'met' if result.floor_ratio <= FLOOR_RATIO_GOAL else 'not met'})"
    )
    return lines
