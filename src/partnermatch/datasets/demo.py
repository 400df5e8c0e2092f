"""Demo data for the README's run command: generated once into var/, imported once, reused afterwards."""

from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from sqlalchemy import func, select

from partnermatch.companies.models import Company
from partnermatch.datasets.generator import GeneratorConfig, generate
from partnermatch.datasets.importer import import_dataset
from partnermatch.db import session_scope
from partnermatch.settings import Settings

# Small enough to generate and import in seconds, large enough that lists, filters and (later)
# recommendations have something to show.
DEMO = GeneratorConfig(companies=600, leads=400, seed=7, weeks=26)


def demo_dataset_dir(settings: Settings) -> Path:
    return settings.var_dir / "demo-dataset"


async def prepare_demo(settings: Settings, console: Console) -> None:
    async with session_scope(settings) as session:
        companies = await session.scalar(select(func.count()).select_from(Company)) or 0
        if companies:
            console.print(f"Database already holds {companies:,} companies; demo data not loaded again.")
            return
        directory = demo_dataset_dir(settings)
        if not (directory / "interactions.jsonl").exists():
            console.print(f"Generating demo data into {directory} ...")
            generate(directory, DEMO)
        with Progress(console=console, transient=True) as progress:
            report = await import_dataset(session, directory, progress)
    summary = ", ".join(f"{name} {counts.inserted:,}" for name, counts in report.files.items())
    console.print(f"Demo data loaded: {summary}")
