"""Engine, session and migration plumbing shared by the app, the CLI and background jobs."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, cast

import msgspec
from advanced_alchemy.alembic.commands import AlembicCommands
from advanced_alchemy.base import orm_registry
from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    SQLAlchemyAsyncConfig,
)
from advanced_alchemy.extensions.litestar._utils import delete_aa_scope_state, get_aa_scope_state
from advanced_alchemy.extensions.litestar.plugins.init.config.common import SESSION_TERMINUS_ASGI_EVENTS
from advanced_alchemy.types import GUID
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from litestar.types import HTTPResponseStartEvent, Message, Scope
from sqlalchemy import ColumnElement, event, func, or_, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_scoped_session,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.pool import NullPool

from partnermatch import sqlite_driver
from partnermatch.errors import PROBLEM_JSON, DatabaseNotMigratedError
from partnermatch.settings import Settings

logger = logging.getLogger(__name__)
metadata = orm_registry.metadata
VERSION_TABLE = "alembic_versions"
# Rows of each index that SQLite's ANALYZE samples (its documentation suggests 100 to 1000).
SQLITE_ANALYSIS_ROWS = 1000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own implicit BEGIN breaks SAVEPOINTs; SQLAlchemy emits BEGIN itself (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    # SQLite ignores foreign keys unless asked, per connection.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
    # SQLite's own lower() folds ASCII only; PostgreSQL's folds every letter ("Ü", "Ł") for text search.
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)


async def refresh_statistics(session: AsyncSession | async_scoped_session[AsyncSession]) -> None:
    """Table statistics for the query planner, after a bulk change (an import, a full recompute of the
    stored recommendations) and nightly. Without them SQLite guesses: it read a company's 50 stored
    recommendations by scanning every open lead through the leads' status index (9 ms a company instead
    of 0.2). On SQLite each index is sampled (``analysis_limit``), so this takes well under a second
    also on a large database; PostgreSQL's autovacuum does the same in time, this only does it now."""
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(text(f"PRAGMA analysis_limit={SQLITE_ANALYSIS_ROWS}"))
    await session.execute(text("ANALYZE"))


def contains_text(
    query: str, *columns: ColumnElement[str] | InstrumentedAttribute[str]
) -> ColumnElement[bool]:
    """Case-insensitive substring search over columns; `%` and `_` in the query are literal."""
    escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(*(func.lower(column).like(pattern, escape="\\") for column in columns))


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def compare_type(
    context: Any, _inspected: Any, _column: Any, inspected_type: Any, metadata_type: Any
) -> bool | None:
    """Alembic type comparison, minus a false alarm: SQLite reflects GUID's BINARY(16) as NUMERIC(16)."""
    if context.dialect.name == "sqlite" and isinstance(metadata_type, GUID):
        return False
    return None


# Whether transactions begun in this context only read. A context variable rather than an option of
# the request's session: the session's first statement (the authentication lookup) runs in middleware
# before any handler hook, and SQLAlchemy's begin event sees the connection, never the session.
_reads_only: ContextVar[bool] = ContextVar("partnermatch_reads_only", default=False)


@contextmanager
def reads_only(value: bool = True) -> Iterator[None]:
    """Transactions begun inside start deferred on SQLite (``value=True``) or take the write lock up
    front (``False``, the default everywhere else). Nothing changes on PostgreSQL."""
    token = _reads_only.set(value)
    try:
        yield
    finally:
        _reads_only.reset(token)


def _sqlite_begin(connection: Connection) -> None:
    if _reads_only.get():
        # Deferred: in WAL mode a reader neither waits for the writer nor blocks it. Such a transaction
        # must not write: upgrading after another writer committed fails with "database is locked".
        connection.exec_driver_sql("BEGIN")
    else:
        # IMMEDIATE takes the write lock up front: a transaction that reads and then writes would
        # otherwise fail with "database is locked" when another one wrote in between, instead of
        # waiting its turn.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(settings: Settings, *, pooled: bool = True) -> AsyncEngine:
    url = settings.resolved_database_url
    kwargs: dict[str, Any] = {"echo": settings.database_echo}
    if settings.is_sqlite:
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["module"] = sqlite_driver.dbapi()
    elif pooled:
        kwargs.update(pool_size=settings.database_pool_size, pool_pre_ping=True)
    if not pooled:
        kwargs["poolclass"] = NullPool
    engine = create_async_engine(url, **kwargs)
    if settings.is_sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def alchemy_config(
    settings: Settings,
    *,
    engine: AsyncEngine | None = None,
    session_maker: async_sessionmaker[AsyncSession] | None = None,
) -> SQLAlchemyAsyncConfig:
    config = SQLAlchemyAsyncConfig(
        engine_instance=engine or create_engine(settings),
        session_maker=session_maker,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        # errors.handle_exception turns repository errors into problem details too.
        set_default_exception_handler=False,
        alembic_config=AlembicAsyncConfig(
            script_location=str(settings.migrations_dir),
            version_table_name=VERSION_TABLE,
            render_as_batch=True,
        ),
    )
    # Set after construction: the config may rename its scope key to keep it unique among configs.
    config.before_send_handler = transaction_handler(config.session_scope_key)
    return config


NOT_SAVED_STATUS = 503
_REPLACEMENT_KEY = "partnermatch.not_saved"


def transaction_handler(session_scope_key: str) -> Callable[[Message, Scope], Awaitable[None]]:
    """The one place where a request's work is committed (2xx, and 3xx: a portal form that saved answers
    with a redirect to the page that shows the result) or rolled back, and its session closed.

    advanced-alchemy's autocommit handler does the same, but when the commit itself fails it logs at debug
    level and lets the 2xx response go out: the client would be told "saved" when nothing was. Here a
    failed commit turns the response, before any byte of it is sent, into a 503 problem saying so.
    """

    async def handler(message: Message, scope: Scope) -> None:
        session = cast("AsyncSession | None", get_aa_scope_state(scope, session_scope_key))
        try:
            if message["type"] == "http.response.start" and session is not None:
                if 200 <= message["status"] < 400:
                    try:
                        await session.commit()
                    except Exception:
                        logger.exception("commit failed: the response becomes a %s problem", NOT_SAVED_STATUS)
                        with contextlib.suppress(Exception):
                            await session.rollback()
                        _not_saved(message, scope)
                else:
                    try:
                        await session.rollback()
                    except Exception:
                        # The connection is gone; closing below discards the transaction anyway.
                        logger.warning("rollback failed", exc_info=True)
            elif message["type"] == "http.response.body":
                replacement = scope["state"].pop(_REPLACEMENT_KEY, None)
                if replacement is not None:
                    message["body"] = replacement
                    message["more_body"] = False
        finally:
            if session is not None and message["type"] in SESSION_TERMINUS_ASGI_EVENTS:
                with contextlib.suppress(Exception):
                    await session.close()
                delete_aa_scope_state(scope, session_scope_key)

    return handler


def _not_saved(message: HTTPResponseStartEvent, scope: Scope) -> None:
    headers = {bytes(k).lower() for k, _ in message.get("headers", [])}
    if b"content-length" not in headers:
        # A streamed body cannot be replaced; streamed answers are reads, whose commit writes nothing.
        return
    body = msgspec.json.encode(
        {
            "type": "about:blank",
            "title": "Not saved",
            "status": NOT_SAVED_STATUS,
            "detail": "the database did not commit the change, so nothing was changed; try again",
        }
    )
    message["status"] = NOT_SAVED_STATUS
    # Only these: a cookie or location of the answer that was not saved must not reach the client.
    message["headers"] = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    scope["state"][_REPLACEMENT_KEY] = body


def _upgrade_blocking(settings: Settings, revision: str) -> None:
    config = alchemy_config(settings, engine=create_engine(settings, pooled=False))
    AlembicCommands(sqlalchemy_config=config).upgrade(revision=revision)


async def migrate(settings: Settings, revision: str = "head") -> None:
    # Alembic's async env calls asyncio.run(), which needs a thread without a running loop.
    await asyncio.to_thread(_upgrade_blocking, settings, revision)


def head_revisions(settings: Settings) -> set[str]:
    config = alchemy_config(settings, engine=create_engine(settings, pooled=False))
    script = ScriptDirectory.from_config(AlembicCommands(sqlalchemy_config=config).config)
    return set(script.get_heads())


async def current_revisions(engine: AsyncEngine) -> set[str]:
    def read(connection: Connection) -> set[str]:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return set(context.get_current_heads())

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def ensure_migrated(settings: Settings, engine: AsyncEngine) -> None:
    current = await current_revisions(engine)
    if current != head_revisions(settings):
        raise DatabaseNotMigratedError(settings.resolved_database_url, sorted(current))


@asynccontextmanager
async def session_scope(settings: Settings, *, check_migrated: bool = True) -> AsyncIterator[AsyncSession]:
    """A unit of work for CLI commands and background jobs: commit on success, else roll back."""
    engine = create_engine(settings, pooled=False)
    try:
        if check_migrated:
            await ensure_migrated(settings, engine)
        async with AsyncSession(engine, expire_on_commit=False) as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
    finally:
        await engine.dispose()
