"""`partnermatch import`, `export` and `generate`: dataset folders."""

import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from partnermatch.cli import progress_bar, run
from partnermatch.datasets.exporter import export_dataset
from partnermatch.datasets.format import DatasetInvalid
from partnermatch.datasets.importer import ImportReport, import_dataset
from partnermatch.db import session_scope
from partnermatch.errors import DomainError
from partnermatch.settings import Settings, get_settings
from partnermatch.synthetic.generator import LOGGING_POLICIES, GeneratorConfig, generate


async def _import_dataset(settings: Settings, directory: Path) -> ImportReport:
    try:
        async with session_scope(settings) as session:
            with progress_bar() as progress:
                return await import_dataset(session, directory, progress)
    except DatasetInvalid as invalid:
        # Plain lines, neither wrapped nor read as markup: the messages quote the dataset's own text.
        for line in invalid.errors:
            click.echo(line, err=True)
        more = " (stopped there)" if invalid.truncated else ""
        raise DomainError(
            f"{escape(str(directory))} is not a valid dataset: {len(invalid.errors)} errors{more}; nothing was imported"
        ) from None


@click.command("import")
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
    async with session_scope(settings) as session:
        with progress_bar() as progress:
            return await export_dataset(session, directory, progress)


@click.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export_command(directory: Path) -> None:
    """Write the whole database as a dataset folder (created if needed; its dataset files are replaced)."""
    counts = run(_export_dataset(get_settings(), directory))
    click.echo(f"exported to {directory}: " + ", ".join(f"{name} {n:,}" for name, n in counts.items()))


@click.command("generate")
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
@click.option(
    "--logging-policy",
    type=click.Choice(LOGGING_POLICIES),
    default="rules",
    show_default=True,
    help="What ranked the lists whose impressions and clicks are logged: sector and city rules, "
    "popularity (one list for everyone) or the descriptions' shared text",
)
def generate_command(
    directory: Path, companies: int, leads: int, seed: int, weeks: int, activity: float, logging_policy: str
) -> None:
    """Write a realistic synthetic dataset (same options and seed, same bytes): demo data, tests, benchmarks."""
    config = GeneratorConfig(
        companies=companies,
        leads=leads,
        seed=seed,
        weeks=weeks,
        activity=activity,
        logging_policy=logging_policy,
    )
    with progress_bar() as progress:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        counts = generate(directory, config, report)
    click.echo(f"wrote {directory}: " + ", ".join(f"{name} {n:,}" for name, n in counts.items()))
