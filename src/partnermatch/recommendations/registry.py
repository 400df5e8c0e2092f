"""The registry of trained ranking models: which versions exist, which one is active, and its loaded artifact."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session

from partnermatch.errors import Conflict, DomainError, NotFound
from partnermatch.ranking.artifact import ArtifactRefused, load
from partnermatch.ranking.features import sector_names
from partnermatch.ranking.model import RankingModel
from partnermatch.recommendations.models import ModelVersion
from partnermatch.recommendations.repository import ModelVersionRepository

logger = logging.getLogger(__name__)
# A service's session: the repositories accept either.
Session = AsyncSession | async_scoped_session[AsyncSession]


NO_ACTIVE_MODEL = "no ranking model is active: run `partnermatch train` (or `partnermatch demo`)"


class ModelUnavailable(DomainError):
    # 409, not 503: the server works; the database lacks a trained model, which `partnermatch train` adds.
    status_code = 409
    title = "No ranking model"


class ArtifactRejected(DomainError):
    status_code = 409
    title = "Artifact rejected"


class ModelRegistry:
    def __init__(self, session: Session) -> None:
        self.repository = ModelVersionRepository(session=session)

    async def list(self) -> Sequence[ModelVersion]:
        return await self.repository.newest_first()

    async def active(self) -> ModelVersion | None:
        return await self.repository.active()

    async def require_active(self) -> ModelVersion:
        row = await self.repository.active()
        if row is None:
            raise ModelUnavailable(NO_ACTIVE_MODEL)
        return row

    async def register(
        self, metadata: dict[str, Any], artifact: str, *, activate: bool = True
    ) -> ModelVersion:
        """``artifact``: the absolute path of the joblib file that the metadata describes."""
        if await self.repository.by_version(metadata["version"]) is not None:
            raise Conflict(f"model version {metadata['version']} is already registered")
        row = ModelVersion(
            version=metadata["version"],
            artifact_path=artifact,
            sha256=metadata["sha256"],
            created_at=datetime.fromisoformat(metadata["created_at"]),
            metrics=metadata.get("holdout_metrics", {}),
            parameters=metadata.get("parameters", {}),
            sklearn_version=metadata["libraries"]["scikit-learn"],
            is_active=False,
        )
        await self.repository.add(row)
        if activate:
            await self.activate(row.version)
        return row

    async def activate(self, version: str) -> ModelVersion:
        row = await self.repository.by_version(version)
        if row is None:
            raise NotFound(f"no model version {version}")
        await self.repository.deactivate_all()
        row.is_active = True
        row.activated_at = datetime.now(UTC)
        await self.repository.session.flush()
        return row

    async def rollback(self) -> ModelVersion:
        """Activate the newest version older than the active one."""
        rows = list(await self.repository.newest_first())
        current = next((i for i, r in enumerate(rows) if r.is_active), None)
        if current is None or current + 1 >= len(rows):
            raise Conflict("there is no older model version to roll back to")
        return await self.activate(rows[current + 1].version)

    async def active_model(self) -> tuple[ModelVersion, RankingModel]:
        """The active version and its artifact, loaded in a thread (unpickling and hashing a large file must
        not block the event loop)."""
        row = await self.require_active()
        return row, await asyncio.to_thread(load_model, row)


_cache: dict[tuple[str, str], RankingModel] = {}
_cache_lock = threading.Lock()


def load_model(row: ModelVersion) -> RankingModel:
    """The artifact of a registered version, verified against the registered sha256 (cached per sha)."""
    key = (row.artifact_path, row.sha256)
    with _cache_lock:
        model = _cache.get(key)
        if model is None:
            try:
                model = load(Path(row.artifact_path), expected_sha256=row.sha256)
            except (ArtifactRefused, OSError) as refused:
                raise ArtifactRejected(f"model {row.version} cannot be loaded: {refused}") from None
            # The reasons name sectors from the NACE tables; reading them once here (seconds, in the
            # loading thread) keeps that cost off the first request.
            sector_names()
            _cache.clear()
            _cache[key] = model
            _keep_out_of_collections()
        return model


def _keep_out_of_collections() -> None:
    """Exempt what the process holds now (the app, the model just loaded) from the collector's passes.

    A model at 10,000 x 5,000 adds some 600,000 objects that the cyclic collector would otherwise walk
    on every full pass: 250 ms with the event loop stopped, a few times a minute under load, which
    put every route's p99 near 200 ms even at one client. Frozen objects are still freed when their
    last reference goes; the previous model's cycles go in the collection before the freeze."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


async def warm_active_model(sessions: Callable[[], AsyncSession]) -> None:
    """Load the active model before the first request needs it (seconds per worker at 10,000 companies).
    A request that comes first waits for the same load; a failure is logged and left to that request."""
    try:
        async with sessions() as session:
            row = await ModelVersionRepository(session=session).active()
        if row is not None:
            await asyncio.to_thread(load_model, row)
    except Exception:
        logger.exception("loading the active ranking model at start-up failed")
