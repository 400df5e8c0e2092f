"""Demo data for the README's run command: generated once into var/, imported once, reused afterwards."""

import asyncio
import dataclasses
import tempfile
import time
from datetime import date, timedelta
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
            # The simulated half year ends today, so that the demo's leads are still open.
            generate(directory, dataclasses.replace(DEMO, start=date.today() - timedelta(weeks=DEMO.weeks)))
        with Progress(console=console, transient=True) as progress:
            report = await import_dataset(session, directory, progress)
    summary = ", ".join(f"{name} {counts.inserted:,}" for name, counts in report.files.items())
    console.print(f"Demo data loaded: {summary}")


# Few boosting rounds: the demo's first start stays fast; `partnermatch train` fits the full model.
DEMO_MAX_ITER = 60


async def ensure_demo_model(settings: Settings, console: Console) -> None:
    """Train and activate a ranker on the database once, so that recommendations work on the first start."""
    from partnermatch.datasets.exporter import export_dataset
    from partnermatch.recommendations.repository import ModelVersionRepository
    from partnermatch.recommendations.training import default_artifact, fit_and_save, register

    async with session_scope(settings) as session:
        if await ModelVersionRepository(session=session).active() is not None:
            return
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="partnermatch-demo-") as scratch:
            await export_dataset(session, Path(scratch))
            console.print("Training the demo ranking model ...")
            trained = await asyncio.to_thread(
                fit_and_save, Path(scratch), default_artifact(settings), DEMO_MAX_ITER
            )
        await register(session, trained)
    console.print(
        f"Ranking model {trained.metadata['version']} trained and activated in "
        f"{time.perf_counter() - started:.1f} s"
    )
