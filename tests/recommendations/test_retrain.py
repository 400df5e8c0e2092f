"""The scheduled retraining (`training.retrain`): trains on the test's database, registers the new version,
activates it unless it is worse than the active one beyond `retrain_margin`, and stores its rows."""

import asyncio
import dataclasses
import logging
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from partnermatch.cli import cli
from partnermatch.datasets.importer import import_dataset
from partnermatch.db import migrate
from partnermatch.jobs import JobContext
from partnermatch.recommendations.models import ModelVersion, StoredRecommendation
from partnermatch.recommendations.registry import ModelRegistry
from partnermatch.recommendations.training import (
    RANKING_METRIC,
    Retrained,
    Trained,
    fit_and_save,
    judge,
    retrain,
)
from partnermatch.settings import Settings, get_settings
from partnermatch.synthetic.generator import GeneratorConfig, generate

MARGIN = 0.01
# Few boosting rounds keep a fit at about three seconds; the comparison does not depend on them.
FAST = {"max_iter": 10}
LOGGER = "partnermatch.recommendations.training"
WEEKS = 16


def _generated(directory: Path, **config: Any) -> Path:
    weeks = config.pop("weeks", WEEKS)
    start = date.today() - timedelta(weeks=weeks)  # ends today: its leads are open, the batch has rows
    generate(directory, GeneratorConfig(weeks=weeks, start=start, **config))
    return directory


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small, but with enough positives that the holdout NDCG@10 is a real figure."""
    base = tmp_path_factory.mktemp("retrain")
    return _generated(base / "dataset", companies=200, leads=120, seed=5, missions=2, activity=4.0)


@pytest.fixture(scope="session")
def pretrained(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A model fitted on the dataset folder, as a previous retraining on the imported database would have."""
    return fit_and_save(dataset, tmp_path_factory.mktemp("pretrained") / "ranker.joblib", FAST)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Positives, but too few for the fit: it fails inside scikit-learn."""
    base = tmp_path_factory.mktemp("retrain-tiny")
    return _generated(base / "dataset", companies=30, leads=30, seed=1, missions=1, weeks=4)


@pytest.fixture
def context(
    session_maker: async_sessionmaker[AsyncSession], settings: Settings, tmp_path: Path
) -> JobContext:
    return JobContext(
        session_maker, settings.model_copy(update={"var_dir": tmp_path, "retrain_margin": MARGIN})
    )


@pytest.fixture
async def imported(db_session: AsyncSession, dataset: Path) -> None:
    await import_dataset(db_session, dataset)
    await db_session.commit()


async def version_row(db_session: AsyncSession, version: str | None) -> ModelVersion:
    row = await db_session.scalar(
        select(ModelVersion).where(ModelVersion.version == version).execution_options(populate_existing=True)
    )
    assert row is not None
    return row


async def stored_count(db_session: AsyncSession, version: ModelVersion) -> int:
    count = await db_session.scalar(
        select(func.count())
        .select_from(StoredRecommendation)
        .where(StoredRecommendation.model_version_id == version.id)
    )
    return int(count or 0)


def artifacts(var_dir: Path) -> list[Path]:
    """The model artifacts that training wrote under ``var_dir``."""
    return sorted((var_dir / "models").glob("*.joblib"))


def figure(metrics: Any) -> float:
    value = metrics[RANKING_METRIC]
    assert isinstance(value, float)
    return value


@pytest.mark.usefixtures("imported")
async def test_the_first_retraining_activates_and_a_second_within_the_margin_replaces_it(
    context: JobContext, db_session: AsyncSession, tmp_path: Path
) -> None:
    first = await retrain(context, params=FAST)
    assert first.activated
    assert first.reason == "no model was active"
    assert first.active_metrics is None
    assert figure(first.new_metrics) > 0  # the fixture's holdout has positives: a real comparison follows
    assert first.seconds > 0
    row = await version_row(db_session, first.version)
    assert row.is_active
    assert row.metrics == first.new_metrics
    assert row.parameters["max_iter"] == FAST["max_iter"]
    assert artifacts(tmp_path) == [Path(row.artifact_path)]
    assert await stored_count(db_session, row) > 0

    # The active version is recorded a little better than the new model will be (same data, same seed:
    # the same figure), yet by less than the margin: the new one still replaces it.
    row.metrics = {**row.metrics, RANKING_METRIC: figure(row.metrics) + MARGIN / 2}
    await db_session.commit()
    second = await retrain(context, params=FAST)
    assert second.activated, second.reason
    assert second.version != first.version
    assert second.active_metrics is not None
    assert figure(second.new_metrics) < figure(second.active_metrics)
    assert figure(second.new_metrics) >= figure(second.active_metrics) - MARGIN
    assert second.reason.startswith("not worse beyond the margin")
    new, old = await version_row(db_session, second.version), await version_row(db_session, first.version)
    assert new.is_active
    assert not old.is_active
    assert await stored_count(db_session, new) > 0  # serving has rows of the new version
    assert await stored_count(db_session, old) > 0  # kept for a rollback


@pytest.mark.usefixtures("imported")
async def test_a_model_worse_beyond_the_margin_is_registered_but_not_activated(
    context: JobContext, db_session: AsyncSession, pretrained: Trained, caplog: pytest.LogCaptureFixture
) -> None:
    active = await ModelRegistry(db_session).register(pretrained.metadata, str(pretrained.path))
    await db_session.commit()
    # A negative margin demands an improvement: the same data gives the same figure, which is not one.
    demanding = dataclasses.replace(
        context, settings=context.settings.model_copy(update={"retrain_margin": -0.05})
    )
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        second = await retrain(demanding, params=FAST)
    assert not second.activated
    assert second.version is not None
    assert second.active_metrics == pretrained.metadata["holdout_metrics"]
    new_figure, active_figure = figure(second.new_metrics), figure(active.metrics)
    assert new_figure < active_figure + 0.05
    assert second.reason.startswith("worse beyond the margin")
    registered = await version_row(db_session, second.version)
    assert not registered.is_active
    assert registered.metrics == second.new_metrics
    assert (await version_row(db_session, active.version)).is_active
    assert await stored_count(db_session, registered) == 0
    (warning,) = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    said = warning.getMessage()
    assert f"{second.version} registered but not activated" in said
    assert f"{new_figure:.4f}" in said
    assert f"{active_figure:.4f}" in said


@pytest.mark.parametrize("data", ["empty", "tiny"])
async def test_too_little_data_trains_nothing_and_says_so(
    data: str,
    context: JobContext,
    db_session: AsyncSession,
    tiny_dataset: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if data == "tiny":
        await import_dataset(db_session, tiny_dataset)
        await db_session.commit()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = await retrain(context, params=FAST)
    assert result == Retrained(None, False, {}, None, result.seconds, result.reason)
    assert result.reason.startswith("not enough data to train a ranking model")
    if data == "empty":
        assert "(0 companies, 0 leads, 0 positive interactions)" in result.reason
    else:
        assert "(30 companies, 30 leads" in result.reason
    assert await db_session.scalar(select(func.count()).select_from(ModelVersion)) == 0
    assert artifacts(tmp_path) == []
    assert [r.levelno for r in caplog.records if r.name == LOGGER] == [logging.WARNING]
    assert result.reason in caplog.text


def test_partnermatch_train_on_an_empty_database_fails_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    asyncio.run(migrate(Settings(database_url=url, var_dir=tmp_path)))
    monkeypatch.setenv("PARTNERMATCH_DATABASE_URL", url)
    monkeypatch.setenv("PARTNERMATCH_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["train", "--max-iter", "10"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "error: not enough data to train a ranking model (0 companies" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("new", "active", "margin", "expected"),
    [
        ({RANKING_METRIC: 0.30}, {RANKING_METRIC: 0.305}, 0.01, True),
        ({RANKING_METRIC: 0.30}, {RANKING_METRIC: 0.32}, 0.01, False),
        ({RANKING_METRIC: 0.30}, {RANKING_METRIC: 0.30}, -0.01, False),
        ({RANKING_METRIC: 0.30}, {}, 0.01, True),  # nothing recorded to beat
        ({}, {RANKING_METRIC: 0.30}, 0.01, False),  # nothing to compare: the active one stays
        ({RANKING_METRIC: float("nan")}, {RANKING_METRIC: 0.30}, 0.01, False),
    ],
)
def test_the_comparison_is_absolute_on_the_holdout_ndcg(
    new: dict[str, float], active: dict[str, float], margin: float, expected: bool
) -> None:
    activate, reason = judge(new, ModelVersion(version="active-1", metrics=active), margin)
    assert activate is expected, reason
