"""The migrations, which build every test database, must produce exactly what the models describe."""

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

import partnermatch.models  # noqa: F401
from partnermatch.db import VERSION_TABLE, compare_type, metadata
from partnermatch.sectors.models import Sector


async def test_models_and_migrations_agree(engine: AsyncEngine) -> None:
    def diff(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": compare_type})
        return [d for d in compare_metadata(context, metadata) if VERSION_TABLE not in repr(d)]

    async with engine.connect() as connection:
        differences = await connection.run_sync(diff)
    assert differences == []


async def test_reference_data_is_seeded(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        rows = await connection.execute(select(Sector.level, func.count()).group_by(Sector.level))
        counts = dict(rows.tuples().all())
    assert counts == {"section": 21, "division": 88, "group": 272, "class": 615}
