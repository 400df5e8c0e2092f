"""A tiny generated dataset ending today, and one model trained on it per session (registered per test)."""

import json
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.datasets.importer import import_dataset
from partnermatch.recommendations import profiles
from partnermatch.recommendations.models import ModelVersion
from partnermatch.recommendations.registry import ModelRegistry
from partnermatch.recommendations.training import Trained, fit_and_save
from partnermatch.synthetic.generator import GeneratorConfig, generate

WEEKS = 16


@dataclass(frozen=True)
class Trial:
    dataset: Path
    trained: Trained


@pytest.fixture(scope="session")
def trial(tmp_path_factory: pytest.TempPathFactory) -> Trial:
    base = tmp_path_factory.mktemp("serving")
    # Ends today, so that leads are still open when the tests ask for recommendations.
    start = date.today() - timedelta(weeks=WEEKS)
    directory = base / "dataset"
    generate(
        directory, GeneratorConfig(companies=300, leads=200, seed=5, weeks=WEEKS, start=start, missions=3)
    )
    trained = fit_and_save(directory, base / "models" / "ranker.joblib", {"max_iter": 20})
    return Trial(directory, trained)


def copy_artifact(trial: Trial, target: Path, version: str) -> Trained:
    """The session's artifact under another version (and path), as a second training run would write it."""
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"ranker-{version}.joblib"
    shutil.copyfile(trial.trained.path, path)
    metadata: dict[str, Any] = {**trial.trained.metadata, "version": version}
    metadata["created_at"] = datetime.now(UTC).isoformat()
    path.with_suffix(".json").write_text(json.dumps(metadata))
    return Trained(path, metadata, trial.trained.seconds)


@pytest.fixture
async def imported(db_session: AsyncSession, trial: Trial) -> Trial:
    await import_dataset(db_session, trial.dataset)
    return trial


@pytest.fixture
async def active_model(db_session: AsyncSession, imported: Trial, tmp_path: Path) -> ModelVersion:
    trained = copy_artifact(imported, tmp_path, "test-1")
    row = await ModelRegistry(db_session).register(trained.metadata, str(trained.path))
    await db_session.flush()
    return row


@pytest.fixture
def held_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Scoring time held still (``held_clock[0]``, which a test may move): time features are computed as of
    the moment of scoring, so paths compared score by score must score at one instant."""
    clock = [time.time()]
    monkeypatch.setattr(profiles, "scoring_time", lambda: clock[0])
    return clock
