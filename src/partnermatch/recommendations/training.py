"""Training a ranker from a dataset folder or the database, and registering the artifact."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.recommendations.models import ModelVersion
from partnermatch.recommendations.service import ModelRegistry
from partnermatch.settings import Settings


@dataclass(frozen=True)
class Trained:
    path: Path
    metadata: dict[str, Any]
    seconds: float


def default_artifact(settings: Settings) -> Path:
    return Path(settings.var_dir) / "models" / f"ranker-{datetime.now(UTC).strftime('%Y%m%d%H%M%S%f')}.joblib"


def fit_and_save(data: Path, out: Path, max_iter: int | None = None) -> Trained:
    """CPU-bound: call it outside the event loop (or in a thread)."""
    from ml.artifact import save
    from ml.pipeline import RankingPipeline

    from partnermatch.ranking.data import load_dataset

    started = time.perf_counter()
    ds = load_dataset(data)
    model = RankingPipeline(**({} if max_iter is None else {"max_iter": max_iter})).fit(ds)
    metadata = save(model, ds, out)
    return Trained(out.resolve(), metadata, time.perf_counter() - started)


async def register(session: AsyncSession, trained: Trained) -> ModelVersion:
    return await ModelRegistry(session).register(trained.metadata, str(trained.path))
