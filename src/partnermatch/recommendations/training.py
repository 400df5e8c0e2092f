"""Training as a service: fit a ranking model on a dataset folder or on the database, write its artifact,
register it, and store the new version's recommendations.

The fitting code lives in ``ml/``, which builds on this package and is never imported by it: the one
function this service calls, ``fit(dataset, parameters) -> RankingModel``, is found through the
``partnermatch.training`` entry point that ``ml`` declares (``pyproject.toml``).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from partnermatch.datasets.exporter import export_dataset
from partnermatch.db import session_scope
from partnermatch.errors import DomainError
from partnermatch.ranking.artifact import save
from partnermatch.ranking.data import Dataset, load_dataset
from partnermatch.ranking.model import RankingModel
from partnermatch.recommendations.batch import Timings, active_version, store, store_if_missing
from partnermatch.recommendations.models import ModelVersion
from partnermatch.recommendations.registry import ModelRegistry
from partnermatch.settings import Settings

ENTRY_POINT_GROUP = "partnermatch.training"


class Fit(Protocol):
    def __call__(self, ds: Dataset, params: Mapping[str, Any]) -> RankingModel: ...


class TrainingUnavailable(DomainError):
    status_code = 503
    title = "Training unavailable"


def fitter() -> Fit:
    """The fitting function ``ml`` provides (see the module docstring)."""
    found = entry_points(group=ENTRY_POINT_GROUP, name="fit")
    if not found:
        raise TrainingUnavailable(
            f"no `{ENTRY_POINT_GROUP}` entry point named `fit`: install the package with its `ml` folder "
            "(pip install -e .)"
        )
    fit: Fit = next(iter(found)).load()
    return fit


@dataclass(frozen=True)
class Trained:
    path: Path
    metadata: dict[str, Any]
    seconds: float


def default_artifact(settings: Settings) -> Path:
    return Path(settings.var_dir) / "models" / f"ranker-{datetime.now(UTC).strftime('%Y%m%d%H%M%S%f')}.joblib"


def fit_and_save(data: Path, out: Path, params: Mapping[str, Any]) -> Trained:
    """Fit on a dataset folder and write the artifact (and its metadata). CPU-bound: call it in a thread."""
    started = time.perf_counter()
    ds = load_dataset(data)
    metadata = save(fitter()(ds, params), ds, out)
    return Trained(out.resolve(), metadata, time.perf_counter() - started)


async def train_from_database(settings: Settings, out: Path, params: Mapping[str, Any]) -> Trained:
    """Export the database as a dataset folder (what the model is trained on, and what its metadata hashes),
    then fit on it."""
    with tempfile.TemporaryDirectory(prefix="partnermatch-train-") as scratch:
        async with session_scope(settings) as session:
            await export_dataset(session, Path(scratch))
        return await asyncio.to_thread(fit_and_save, Path(scratch), out, params)


async def register(settings: Settings, trained: Trained) -> ModelVersion:
    """Register the artifact and make it the active version."""
    async with session_scope(settings) as session:
        return await ModelRegistry(session).register(trained.metadata, str(trained.path))


async def store_recommendations(
    settings: Settings, *, only_if_missing: bool = False, company_ids: list[Any] | None = None
) -> tuple[ModelVersion, Timings] | None:
    """The stored recommendations of the active version (all approved companies, or those given); with
    ``only_if_missing``, only when the version has none yet. None: no active model, or nothing to do."""
    async with session_scope(settings) as session:
        version = await active_version(session)
        if version is None:
            return None
        top = settings.stored_recommendations
        if only_if_missing:
            timings = await store_if_missing(session, version, top)
        else:
            timings = await store(session, version, top, company_ids)
        return None if timings is None else (version, timings)
