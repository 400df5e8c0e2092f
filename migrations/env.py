"""Alembic environment, driven by `partnermatch db ...` (advanced-alchemy's command config)."""

import asyncio
from typing import TYPE_CHECKING, cast

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, async_engine_from_config

import partnermatch.models  # noqa: F401  (fills the metadata)
from partnermatch.db import compare_type, metadata

if TYPE_CHECKING:
    from advanced_alchemy.alembic.commands import AlembicCommandConfig

config = cast("AlembicCommandConfig", context.config)


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=metadata,
        version_table=config.version_table_name,
        render_as_batch=True,
        compare_type=compare_type,
        user_module_prefix=config.user_module_prefix,
        **kwargs,
    )


def run_offline() -> None:
    _configure(url=config.db_url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = config.engine or async_engine_from_config(
        {"sqlalchemy.url": config.db_url}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    async with cast(AsyncEngine, engine).connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await cast(AsyncEngine, engine).dispose()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
