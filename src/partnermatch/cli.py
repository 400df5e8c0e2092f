"""`partnermatch`: the one command-line entry point. Each command opens its own session."""

import asyncio
import os
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from advanced_alchemy.cli import add_migration_commands
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from partnermatch.db import alchemy_config, create_engine, ensure_migrated, migrate, session_scope
from partnermatch.errors import DomainError
from partnermatch.settings import Settings, get_settings

if TYPE_CHECKING:
    from rich.progress import Progress

    from partnermatch.datasets.importer import ImportReport

T = TypeVar("T")
console = Console(stderr=True)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; a domain error becomes a one-line message and exit code 1."""
    try:
        return asyncio.run(coroutine)
    except DomainError as error:
        console.print(f"[red]error:[/] {escape(error.detail)}", highlight=False)
        raise SystemExit(1) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="partnermatch")
def cli() -> None:
    """PartnerMatch: Berlin companies meet opportunities in Berlin's partner cities.

    Configured by PARTNERMATCH_* environment variables (see the README).
    """


@cli.group()
@click.pass_context
def db(ctx: click.Context) -> None:
    """Database migrations (Alembic, via advanced-alchemy): upgrade, downgrade, history, ..."""
    settings = get_settings()
    ctx.obj = {"configs": [alchemy_config(settings, engine=create_engine(settings, pooled=False))]}


add_migration_commands(db)


async def _check_database(settings: Settings) -> None:
    engine = create_engine(settings, pooled=False)
    try:
        await ensure_migrated(settings, engine)
    finally:
        await engine.dispose()


def serve_app(settings: Settings, host: str, port: int, workers: int) -> None:
    from granian.constants import Interfaces
    from granian.server import Server

    run(_check_database(settings))
    console.print(
        f"PartnerMatch on http://{host}:{port} (API docs: http://{host}:{port}/schema)", highlight=False
    )
    Server(
        "partnermatch.app:create_app",
        address=host,
        port=port,
        workers=workers,
        interface=Interfaces.ASGI,
        factory=True,
        log_access=settings.debug,
    ).serve()


@cli.command()
@click.option("--host", default=None, help="Bind address [PARTNERMATCH_HOST, default 127.0.0.1]")
@click.option("--port", type=int, default=None, help="Port [PARTNERMATCH_PORT, default 8000]")
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Worker processes [PARTNERMATCH_WORKERS]"
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API with granian (the database must be migrated)."""
    settings = get_settings()
    serve_app(settings, host or settings.host, port or settings.port, workers or settings.workers)


@cli.command()
@click.option("--host", default=None, help="Bind address [PARTNERMATCH_HOST]")
@click.option("--port", type=int, default=None, help="Port [PARTNERMATCH_PORT]")
@click.option("--no-serve", is_flag=True, help="Prepare the database and demo data, then exit")
def demo(host: str | None, port: int | None, no_serve: bool) -> None:
    """Migrate, load demo data once (generated, seed 7), and serve: the README's run command."""
    from partnermatch.datasets.demo import prepare_demo

    settings = get_settings()
    os.makedirs(settings.var_dir, exist_ok=True)
    run(migrate(settings))
    run(prepare_demo(settings, console))
    if not no_serve:
        serve_app(settings, host or settings.host, port or settings.port, settings.workers)


def _progress() -> "Progress":
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
    )


async def _import_dataset(settings: Settings, directory: Path) -> "ImportReport":
    from partnermatch.datasets.format import DatasetInvalid
    from partnermatch.datasets.importer import import_dataset

    try:
        async with session_scope(settings) as session:
            with _progress() as progress:
                return await import_dataset(session, directory, progress)
    except DatasetInvalid as invalid:
        # Plain lines, neither wrapped nor read as markup: the messages quote the dataset's own text.
        for line in invalid.errors:
            click.echo(line, err=True)
        more = " (stopped there)" if invalid.truncated else ""
        raise DomainError(
            f"{escape(str(directory))} is not a valid dataset: {len(invalid.errors)} errors{more}; nothing was imported"
        ) from None


@cli.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def import_command(directory: Path) -> None:
    """Load a dataset folder (shared/dataset-format.md): checked first, then written all or nothing.

    Ids in the files are external ids: importing the same folder again changes nothing, changed rows are updated.
    """
    started = time.perf_counter()
    report = run(_import_dataset(get_settings(), directory))
    table = Table(title=f"imported {directory} in {time.perf_counter() - started:.1f} s")
    for column in ("file", "rows", "inserted", "updated", "unchanged"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for name, counts in report.files.items():
        table.add_row(
            name, *(f"{n:,}" for n in (counts.rows, counts.inserted, counts.updated, counts.unchanged))
        )
    Console().print(table)


async def _export_dataset(settings: Settings, directory: Path) -> dict[str, int]:
    from partnermatch.datasets.exporter import export_dataset

    async with session_scope(settings) as session:
        with _progress() as progress:
            return await export_dataset(session, directory, progress)


@cli.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export_command(directory: Path) -> None:
    """Write the whole database as a dataset folder (created if needed; its dataset files are replaced)."""
    counts = run(_export_dataset(get_settings(), directory))
    click.echo(f"exported to {directory}: " + ", ".join(f"{name} {n:,}" for name, n in counts.items()))


@cli.command("generate")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--companies", type=click.IntRange(min=1), default=2_000, show_default=True)
@click.option("--leads", type=click.IntRange(min=1), default=1_000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--weeks", type=click.IntRange(min=4), default=52, show_default=True, help="Simulated history")
@click.option(
    "--activity",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Scales how often companies look at their recommendations and find leads on their own",
)
def generate_command(
    directory: Path, companies: int, leads: int, seed: int, weeks: int, activity: float
) -> None:
    """Write a realistic synthetic dataset (same options and seed, same bytes): demo data, tests, benchmarks."""
    from partnermatch.datasets.generator import GeneratorConfig, generate

    config = GeneratorConfig(companies=companies, leads=leads, seed=seed, weeks=weeks, activity=activity)
    with _progress() as progress:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        counts = generate(directory, config, report)
    click.echo(f"wrote {directory}: " + ", ".join(f"{name} {n:,}" for name, n in counts.items()))


@cli.group()
def bench() -> None:
    """Performance measurements: they print figures, they are not tests."""


@bench.command("import")
@click.option("--companies", type=click.IntRange(min=1), default=20_000, show_default=True)
@click.option("--leads", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option(
    "--interactions",
    type=click.IntRange(min=0),
    default=500_000,
    show_default=True,
    help="Approximate: sets the generator's activity",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--postgres-url",
    default="postgresql://postgres@127.0.0.1:5432/postgres",
    show_default=True,
    help="Server where a uniquely named database is created and dropped",
)
@click.option("--no-postgres", is_flag=True, help="SQLite only")
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the generated dataset here and keep it",
)
def bench_import_command(
    companies: int,
    leads: int,
    interactions: int,
    seed: int,
    postgres_url: str,
    no_postgres: bool,
    keep: Path | None,
) -> None:
    """Generate a synthetic dataset and time its import into fresh SQLite and PostgreSQL databases."""
    from partnermatch.datasets.bench import bench_import, results_table

    results = run(
        bench_import(
            companies=companies,
            leads=leads,
            interactions=interactions,
            seed=seed,
            postgres_url=None if no_postgres else postgres_url,
            console=console,
            keep=keep,
        )
    )
    Console().print(results_table(results))


def main() -> None:
    cli(prog_name="partnermatch")
