"""`partnermatch bench import`: generate a dataset, time its import into fresh SQLite and PostgreSQL.

Each import runs in its own Python process, so the peak memory reported is the
import's own, not the generator's.
"""

import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from partnermatch.datasets.importer import import_dataset
from partnermatch.db import migrate, session_scope
from partnermatch.settings import Settings
from partnermatch.synthetic.generator import GeneratorConfig, generate

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# The generator's activity 1.0 yields about this many interactions per company (its docstring).
INTERACTIONS_PER_COMPANY = 25


@dataclass(frozen=True)
class BenchResult:
    backend: str
    seconds: float
    rows: int
    peak_mb: float
    files: dict[str, dict[str, int]]

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def sqlalchemy_url(url: str, database: str) -> str:
    base = asyncpg_dsn(url).rsplit("/", 1)[0]
    return base.replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{database}"


async def admin(url: str, statement: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def generate_dataset(
    directory: Path, companies: int, leads: int, interactions: int, seed: int, progress: Progress | None
) -> dict[str, int]:
    activity = interactions / (INTERACTIONS_PER_COMPANY * companies)
    tasks: dict[str, TaskID] = {}

    def report(name: str, done: int, total: int) -> None:
        if progress is None:
            return
        if name not in tasks:
            tasks[name] = progress.add_task(f"generate {name}", total=total)
        progress.update(tasks[name], completed=done, total=total)

    config = GeneratorConfig(companies=companies, leads=leads, seed=seed, activity=activity)
    return generate(directory, config, report)


async def _timed_import(database_url: str, directory: Path, var_dir: Path) -> BenchResult:
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    settings = Settings(database_url=database_url, var_dir=var_dir)
    await migrate(settings)
    # A child process: its ru_maxrss is the import's own peak.
    command = [
        sys.executable,
        "-m",
        "partnermatch.bench.imports",
        database_url,
        str(directory),
        str(var_dir),
    ]
    completed = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"the {backend} import failed:\n{completed.stderr}")
    figures: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return BenchResult(
        backend=backend,
        seconds=figures["seconds"],
        rows=sum(f["rows"] for f in figures["files"].values()),
        peak_mb=figures["peak_kb"] / 1024,
        files=figures["files"],
    )


async def bench_import(
    *,
    companies: int,
    leads: int,
    interactions: int,
    seed: int,
    postgres_url: str | None,
    console: Console,
    keep: Path | None = None,
) -> list[BenchResult]:
    results: list[BenchResult] = []
    with tempfile.TemporaryDirectory(prefix="partnermatch-bench-") as scratch:
        root = Path(scratch)
        directory = keep or root / "dataset"
        with Progress(console=console, transient=True) as progress:
            counts = await asyncio.to_thread(
                generate_dataset, directory, companies, leads, interactions, seed, progress
            )
        console.print(f"dataset in {directory}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))

        console.print("importing into a fresh SQLite database ...")
        results.append(await _timed_import(f"sqlite+aiosqlite:///{root / 'bench.db'}", directory, root))

        if postgres_url:
            name = f"partnermatch_bench_{uuid.uuid4().hex[:12]}"
            await admin(postgres_url, f'CREATE DATABASE "{name}"')
            try:
                console.print(f"importing into a fresh PostgreSQL database {name} ...")
                results.append(await _timed_import(sqlalchemy_url(postgres_url, name), directory, root))
            finally:
                await admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return results


def results_table(results: list[BenchResult]) -> Table:
    table = Table(title="import benchmark")
    for column in ("backend", "seconds", "rows", "rows/s", "peak memory"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    for result in results:
        table.add_row(
            result.backend,
            f"{result.seconds:.1f}",
            f"{result.rows:,}",
            f"{result.rows_per_second:,.0f}",
            f"{result.peak_mb:,.0f} MB",
        )
    return table


def _peak_kb() -> int:
    # ru_maxrss survives fork and exec, so a child would report its parent's (the generator's) peak;
    # Linux's VmHWM belongs to this process image alone.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def _child(database_url: str, directory: Path, var_dir: Path) -> dict[str, Any]:
    settings = Settings(database_url=database_url, var_dir=var_dir)
    started = time.perf_counter()
    async with session_scope(settings) as session:
        report = await import_dataset(session, directory)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_kb": _peak_kb(),
        "files": {name: vars(file) for name, file in report.files.items()},
    }


if __name__ == "__main__":
    url, folder, var = sys.argv[1:4]
    print(json.dumps(asyncio.run(_child(url, Path(folder), Path(var)))))
