"""What the README's run command prepares before it serves: demo data generated once into var/ and imported
once, a first ranking model with its stored recommendations, and the demo accounts. A second run reuses it."""

import asyncio
import dataclasses
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from partnermatch.accounts.demo import DemoCredential, ensure_demo_accounts
from partnermatch.companies.repository import CompanyRepository
from partnermatch.datasets.importer import import_dataset
from partnermatch.db import migrate, session_scope
from partnermatch.recommendations.registry import ArtifactRejected, load_model
from partnermatch.recommendations.repository import ModelVersionRepository
from partnermatch.recommendations.training import (
    default_artifact,
    register,
    store_recommendations,
    train_from_database,
)
from partnermatch.settings import Settings
from partnermatch.synthetic.generator import GeneratorConfig, generate

# Small enough to generate and import in seconds, large enough that lists, filters and recommendations
# have something to show.
DEMO = GeneratorConfig(companies=600, leads=400, seed=7, weeks=26)
# Few boosting rounds: the demo's first start stays fast; `partnermatch train` fits the full model.
DEMO_MAX_ITER = 60


def demo_dataset_dir(settings: Settings) -> Path:
    return settings.var_dir / "demo-dataset"


async def prepare(
    settings: Settings, console: Console, data: GeneratorConfig = DEMO, max_iter: int = DEMO_MAX_ITER
) -> list[DemoCredential]:
    """Migrate, load the demo data, train and store a first model if there is none, create the accounts.
    ``data`` and ``max_iter``: a benchmark's larger dataset and its fuller model instead of the demo's."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    await migrate(settings)
    await load_demo_data(settings, console, data)
    await ensure_demo_model(settings, console, max_iter)
    stored = await store_recommendations(settings, only_if_missing=True)
    if stored is not None:
        version, timings = stored
        console.print(timings.describe(version.version), highlight=False)
    async with session_scope(settings) as session:
        return await ensure_demo_accounts(session, settings)


async def load_demo_data(settings: Settings, console: Console, data: GeneratorConfig = DEMO) -> None:
    async with session_scope(settings) as session:
        companies = await CompanyRepository(session=session).count()
        if companies:
            console.print(f"Database already holds {companies:,} companies; demo data not loaded again.")
            return
        directory = demo_dataset_dir(settings)
        if not (directory / "interactions.jsonl").exists():
            console.print(f"Generating demo data into {directory} ...")
            # The simulated half year ends today, so that the demo's leads are still open.
            generate(directory, dataclasses.replace(data, start=date.today() - timedelta(weeks=data.weeks)))
        with Progress(console=console, transient=True) as progress:
            report = await import_dataset(session, directory, progress)
    summary = ", ".join(f"{name} {counts.inserted:,}" for name, counts in report.files.items())
    console.print(f"Demo data loaded: {summary}")


async def ensure_demo_model(settings: Settings, console: Console, max_iter: int = DEMO_MAX_ITER) -> None:
    """Train and activate a ranker on the database once, so that recommendations work on the first start;
    again when the active one cannot be loaded any more (written by an older version, for one)."""
    async with session_scope(settings) as session:
        active = await ModelVersionRepository(session=session).active()
    if active is not None:
        try:
            await asyncio.to_thread(load_model, active)
        except ArtifactRejected as rejected:
            console.print(f"{rejected.detail}; training a new demo model.", highlight=False)
        else:
            return
    console.print("Training the demo ranking model ...")
    trained = await train_from_database(settings, default_artifact(settings), {"max_iter": max_iter})
    await register(settings, trained)
    console.print(
        f"Ranking model {trained.metadata['version']} trained and activated in {trained.seconds:.1f} s"
    )
