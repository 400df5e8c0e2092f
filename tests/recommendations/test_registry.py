import gc
import logging
import weakref
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from partnermatch.errors import Conflict, NotFound
from partnermatch.recommendations import registry as registry_module
from partnermatch.recommendations.models import ModelVersion
from partnermatch.recommendations.registry import ArtifactRejected, ModelRegistry, load_model
from tests.recommendations.conftest import Trial, copy_artifact


async def active_versions(db_session: AsyncSession) -> list[str]:
    rows = await db_session.scalars(select(ModelVersion.version).where(ModelVersion.is_active.is_(True)))
    return list(rows.all())


async def test_registering_activates_and_exactly_one_stays_active(
    db_session: AsyncSession, trial: Trial, tmp_path: Path
) -> None:
    registry = ModelRegistry(db_session)
    for version in ("v1", "v2", "v3"):
        trained = copy_artifact(trial, tmp_path, version)
        await registry.register(trained.metadata, str(trained.path))
        assert await active_versions(db_session) == [version]
    await registry.activate("v1")
    assert await active_versions(db_session) == ["v1"]
    await registry.activate("v3")
    await registry.rollback()
    assert await active_versions(db_session) == ["v2"]
    assert await db_session.scalar(select(func.count()).select_from(ModelVersion)) == 3
    with pytest.raises(NotFound):
        await registry.activate("nope")
    with pytest.raises(Conflict):
        await registry.register(trained.metadata, str(trained.path))


async def test_rollback_without_an_older_version_is_refused(
    db_session: AsyncSession, trial: Trial, tmp_path: Path
) -> None:
    registry = ModelRegistry(db_session)
    with pytest.raises(Conflict):
        await registry.rollback()
    trained = copy_artifact(trial, tmp_path, "only")
    await registry.register(trained.metadata, str(trained.path))
    with pytest.raises(Conflict):
        await registry.rollback()


async def test_the_database_refuses_two_active_versions(
    db_session: AsyncSession, trial: Trial, tmp_path: Path
) -> None:
    registry = ModelRegistry(db_session)
    first = await registry.register(copy_artifact(trial, tmp_path, "a").metadata, "/tmp/a.joblib")
    second = await registry.register(copy_artifact(trial, tmp_path, "b").metadata, "/tmp/b.joblib")
    assert not first.is_active
    first.is_active = True
    with pytest.raises(Exception, match=r"(?i)unique"):
        async with db_session.begin_nested():
            await db_session.flush()
    assert second.version == "b"


async def test_an_artifact_whose_sha256_differs_from_the_registry_is_not_loaded(
    db_session: AsyncSession, trial: Trial, tmp_path: Path
) -> None:
    trained = copy_artifact(trial, tmp_path, "tampered")
    row = await ModelRegistry(db_session).register(trained.metadata, str(trained.path))
    assert load_model(row) is not None
    with trained.path.open("ab") as f:
        f.write(b"\0")
    row.sha256 = "0" * 64  # a different registered hash: the cache must not hide the mismatch
    with pytest.raises(ArtifactRejected, match="sha256"):
        load_model(row)


async def test_the_active_model_is_loaded_at_start_up_and_a_failure_only_logged(
    active_model: ModelVersion,
    session_maker: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry_module._cache.clear()
    await registry_module.warm_active_model(session_maker)
    assert [sha for _path, sha in registry_module._cache] == [active_model.sha256]

    def broken() -> AsyncSession:
        raise ConnectionRefusedError("database down")

    with caplog.at_level(logging.ERROR):
        await registry_module.warm_active_model(broken)
    assert "loading the active ranking model at start-up failed" in caplog.text


async def test_a_loaded_model_is_kept_out_of_collections_and_the_one_it_replaces_is_freed(
    db_session: AsyncSession, trial: Trial, tmp_path: Path
) -> None:
    registry = ModelRegistry(db_session)
    rows = []
    for version in ("frozen-1", "frozen-2"):
        trained = copy_artifact(trial, tmp_path, version)
        rows.append(await registry.register(trained.metadata, str(trained.path)))
    first = load_model(rows[0])
    # The collector's passes walk gc.get_objects(); a frozen object is not among them.
    assert gc.get_freeze_count() > 0
    assert not any(tracked is first for tracked in gc.get_objects())
    replaced = weakref.ref(first)
    del first
    second = load_model(rows[1])
    assert replaced() is None, "the model that was replaced is still in memory"
    assert not any(tracked is second for tracked in gc.get_objects())
