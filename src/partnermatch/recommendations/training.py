"""Training as a service: fit a ranking model on a dataset folder or on the database, write its artifact,
register it, and store the new version's recommendations; and the scheduled retraining (:func:`retrain`),
which activates its model only if it is not worse than the active one.

The fitting code lives in ``ml/``, which builds on this package and is never imported by it: the one
function this service calls, ``fit(dataset, parameters) -> RankingModel``, is found through the
``partnermatch.training`` entry point that ``ml`` declares (``pyproject.toml``).

`partnermatch train` and the retraining job run the same steps (:func:`export_and_fit`,
:func:`store_active`); each step takes a :data:`Transaction` opener, which a command makes from its
settings (``session_scope``) and a job from its :class:`JobContext`. Each step reads in one transaction,
computes outside any (on SQLite a transaction holds the one write lock) and writes in another, brief one.
"""

from __future__ import annotations

import asyncio
import logging
import math
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch import jobs
from partnermatch.datasets.exporter import export_dataset
from partnermatch.db import reads_only, session_scope
from partnermatch.errors import DomainError
from partnermatch.jobs import JobContext
from partnermatch.ranking.artifact import save
from partnermatch.ranking.data import Dataset, load_dataset
from partnermatch.ranking.model import RankingModel
from partnermatch.recommendations.batch import Timings, active_version, prepare, rank_prepared, write
from partnermatch.recommendations.models import ModelVersion
from partnermatch.recommendations.registry import ModelRegistry
from partnermatch.recommendations.repository import StoredRecommendationRepository
from partnermatch.settings import Settings

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "partnermatch.training"
RETRAIN_JOB = "recommendations.retrain"
# A fit and the batch after it take minutes at 10,000 companies (the batch alone 140 s on 2 cores, README):
# more than the default job timeout leaves on a busy machine.
RETRAIN_TIMEOUT_SECONDS = 2 * 3600.0

RANKING_METRIC = "holdout_ndcg10_final"
"""The holdout metric that retraining compares (``ml/training.py``): mean NDCG@10 of the final served score
(both rankers and the blend, as ``RankingModel`` scores) over held-out companies of the validation window.
It measures what a company sees, the order of its top ten leads. The other holdout figures measure other
things: ``holdout_auc`` separates positives from negatives pooled over all companies (not each company's
order, and it is missing when the holdout has no positive), log loss and Brier score the calibrated
probability shown beside a lead, ``candidate_recall_validation`` the candidate generation."""

Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]
"""Opens a session whose transaction commits when its block ends without an error, else rolls back: a
command's ``functools.partial(session_scope, settings)``, a job's ``context.sessions.begin``."""


class Fit(Protocol):
    def __call__(self, ds: Dataset, params: Mapping[str, Any]) -> RankingModel: ...


class TrainingUnavailable(DomainError):
    status_code = 503
    title = "Training unavailable"


class NotEnoughTrainingData(DomainError):
    """The data cannot carry a ranking model yet (an empty or nearly empty database): nothing was written."""

    status_code = 409
    title = "Not enough data to train"


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


def fit_dataset(fit: Fit, ds: Dataset, params: Mapping[str, Any]) -> RankingModel:
    """``fit(ds, params)``, or :class:`NotEnoughTrainingData` when the data cannot carry a model.

    Without companies, leads or positive interactions (interested or stronger) there is nothing to learn;
    data that is merely tiny fails inside the fit (no validation window, an empty holdout, a feature with
    one value): numpy and scikit-learn raise ``ValueError`` for those, which becomes the same error."""
    positives = int((ds.interactions.grade >= 1).sum()) if len(ds.interactions) else 0
    sizes = f"{len(ds.companies):,} companies, {len(ds.leads):,} leads, {positives:,} positive interactions"
    if not (len(ds.companies) and len(ds.leads) and positives):
        raise NotEnoughTrainingData(
            f"not enough data to train a ranking model ({sizes}): it learns from what companies did with "
            "leads (interested, contacted, introduced, deal)"
        )
    try:
        return fit(ds, params)
    except ValueError as error:
        raise NotEnoughTrainingData(f"not enough data to train a ranking model ({sizes}): {error}") from error


def fit_and_save(data: Path, out: Path, params: Mapping[str, Any]) -> Trained:
    """Fit on a dataset folder and write the artifact (and its metadata). CPU-bound: call it in a thread."""
    started = time.perf_counter()
    ds = load_dataset(data)
    metadata = save(fit_dataset(fitter(), ds, params), ds, out)
    return Trained(out.resolve(), metadata, time.perf_counter() - started)


async def export_and_fit(transaction: Transaction, out: Path, params: Mapping[str, Any]) -> Trained:
    """Export the database as a dataset folder (what the model is trained on, and what its metadata hashes)
    in one read, then fit on it in a thread."""
    with tempfile.TemporaryDirectory(prefix="partnermatch-train-") as scratch:
        with reads_only():
            async with transaction() as session:
                await export_dataset(session, Path(scratch))
        return await asyncio.to_thread(fit_and_save, Path(scratch), out, params)


async def store_active(
    transaction: Transaction,
    top: int,
    *,
    only_if_missing: bool = False,
    company_ids: Sequence[UUID] | None = None,
) -> tuple[ModelVersion, Timings] | None:
    """The stored recommendations of the active version (see :func:`store_recommendations`): read in one
    transaction, scored outside any, written in another."""
    with reads_only():
        async with transaction() as session:
            version = await active_version(session)
            if version is None:
                return None
            if only_if_missing and await StoredRecommendationRepository(session=session).has_rows(version.id):
                return None
            prepared = await prepare(session, version, company_ids)
    rows = await rank_prepared(prepared, version, top)
    async with transaction() as session:
        timings = await write(session, version, company_ids, rows, prepared.timings)
    return version, timings


def _command(settings: Settings) -> Transaction:
    return partial(session_scope, settings)


async def train_from_database(settings: Settings, out: Path, params: Mapping[str, Any]) -> Trained:
    """:func:`export_and_fit` for a command."""
    return await export_and_fit(_command(settings), out, params)


async def register(settings: Settings, trained: Trained) -> ModelVersion:
    """Register the artifact and make it the active version."""
    async with session_scope(settings) as session:
        return await ModelRegistry(session).register(trained.metadata, str(trained.path))


async def store_recommendations(
    settings: Settings, *, only_if_missing: bool = False, company_ids: list[Any] | None = None
) -> tuple[ModelVersion, Timings] | None:
    """The stored recommendations of the active version (all approved companies, or those given); with
    ``only_if_missing``, only when the version has none yet. None: no active model, or nothing to do."""
    return await store_active(
        _command(settings),
        settings.stored_recommendations,
        only_if_missing=only_if_missing,
        company_ids=company_ids,
    )


@dataclass(frozen=True)
class Retrained:
    """What a retraining did."""

    version: str | None
    """The new version, registered; None when nothing was trained (see ``reason``)."""
    activated: bool
    new_metrics: Mapping[str, Any]
    """The new model's holdout metrics (empty when nothing was trained)."""
    active_metrics: Mapping[str, Any] | None
    """The recorded holdout metrics of the version that was active when the new one was registered; None
    when there was none (or nothing was trained)."""
    seconds: float
    """Wall time of the whole job: export, fit, registration and stored recommendations."""
    reason: str


def _figure(metrics: Mapping[str, Any]) -> float | None:
    value = metrics.get(RANKING_METRIC)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def judge(new: Mapping[str, Any], active: ModelVersion | None, margin: float) -> tuple[bool, str]:
    """Whether a new model with holdout metrics ``new`` replaces ``active``, and why: yes when there is no
    active version, or when the new NDCG@10 is at least the active one's minus ``margin`` (absolute)."""
    if active is None:
        return True, "no model was active"
    new_figure, active_figure = _figure(new), _figure(active.metrics)
    if new_figure is None:
        return False, f"the new model has no holdout {RANKING_METRIC} to compare"
    if active_figure is None:
        return True, f"the active model {active.version} has no recorded holdout {RANKING_METRIC}"
    comparison = (
        f"holdout {RANKING_METRIC} {new_figure:.4f} against {active_figure:.4f} of the active model "
        f"{active.version} (margin {margin:.4f})"
    )
    if new_figure >= active_figure - margin:
        return True, f"not worse beyond the margin: {comparison}"
    return False, f"worse beyond the margin: {comparison}"


async def retrain(context: JobContext, *, params: Mapping[str, Any] | None = None) -> Retrained:
    """Job: train on the database, register the new version, and activate it unless it is worse than the
    active one by more than ``retrain_margin`` (see :func:`judge`); an activated version gets its stored
    recommendations. ``params``: the trainer's parameters (default: its own, as `partnermatch train`).

    Too little data to train is an outcome, not a failure: logged at WARNING and returned with
    ``version=None``; nothing is written or registered."""
    started = time.perf_counter()
    settings = context.settings
    transaction: Transaction = context.sessions.begin
    try:
        trained = await export_and_fit(transaction, default_artifact(settings), params or {})
    except NotEnoughTrainingData as error:
        logger.warning("retraining trained no model: %s", error.detail)
        return Retrained(None, False, {}, None, time.perf_counter() - started, error.detail)
    new_metrics: dict[str, Any] = trained.metadata.get("holdout_metrics", {})
    # The comparison and the registration in one transaction: a version activated meanwhile (by hand) is
    # the one the new model is compared with.
    async with transaction() as session:
        registry = ModelRegistry(session)
        active = await registry.active()
        activate, reason = judge(new_metrics, active, settings.retrain_margin)
        active_metrics = None if active is None else dict(active.metrics)
        row = await registry.register(trained.metadata, str(trained.path), activate=activate)
        version = row.version
    if activate:
        logger.info("retrained model %s registered and activated: %s", version, reason)
        stored = await store_active(transaction, settings.stored_recommendations)
        if stored is not None:
            logger.info("%s", stored[1].describe(stored[0].version))
    else:
        logger.warning("retrained model %s registered but not activated: %s", version, reason)
    return Retrained(version, activate, new_metrics, active_metrics, time.perf_counter() - started, reason)


@jobs.job(RETRAIN_JOB, exclusive=True, timeout_seconds=RETRAIN_TIMEOUT_SECONDS)
async def retrain_job(context: JobContext, *, now: datetime) -> Retrained:
    """Scheduled job (``PARTNERMATCH_SCHEDULE_RETRAIN``): :func:`retrain` with the trainer's own parameters.
    ``now``, the run's time, changes nothing: the model learns from everything the database holds."""
    del now
    return await retrain(context)
