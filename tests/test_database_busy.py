"""SQLite under more writes than it can take: a write that does not get the one write lock within the busy
timeout is answered 503 (try again), not 500."""

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy
import sqlalchemy.exc

from partnermatch.errors import DATABASE_BUSY, unavailable


def test_a_write_lock_not_had_in_time_is_a_503_saying_so_not_a_500(tmp_path: Path) -> None:
    """SQLite's one write lock held by another connection beyond the busy timeout: the driver's real
    error, as SQLAlchemy raises it, is a 503 problem that says the database is busy."""
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    engine = sqlalchemy.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.05})
    try:
        with pytest.raises(sqlalchemy.exc.OperationalError) as raised, engine.connect() as connection:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    finally:
        engine.dispose()
        holder.execute("ROLLBACK")
        holder.close()
    answer = unavailable(raised.value)
    assert answer is not None
    assert (answer.status_code, answer.detail) == (503, DATABASE_BUSY)
    assert answer.headers == {"Retry-After": "1"}
    # Any other operational error stays what it is.
    assert unavailable(sqlite3.OperationalError("no such table: t")) is None
