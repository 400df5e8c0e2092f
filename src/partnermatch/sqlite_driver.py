"""SQLAlchemy's aiosqlite adapter with one thread hop per statement instead of four.

aiosqlite runs SQLite in a thread of its own and every call is a round trip to it: SQLAlchemy's
adapter makes four per statement (open a cursor, execute, fetch, close), each costing about 60 µs of
CPU in thread switches and wake-ups — more than the statement itself on the hot reads, which run
three or four statements a request. Here the four steps run as one function in aiosqlite's thread.
Only the plain cursor's ``execute`` changes; server-side cursors, ``executemany``, commits and the
rest are SQLAlchemy's own. Passed as the engine's ``module`` (db.create_engine), so the URL stays
``sqlite+aiosqlite://``. Tied to SQLAlchemy 2.0's adapter, which the project pins."""

import sqlite3
from collections import deque
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)

Outcome = tuple[Any, list[Any], int | None, int]


def _execute_in_thread(connection: sqlite3.Connection, operation: str, parameters: Any) -> Outcome:
    """Runs in aiosqlite's thread: (description, rows, lastrowid, rowcount), as the four steps give them."""
    cursor = connection.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        if cursor.description:
            return cursor.description, cursor.fetchall(), -1, -1
        return None, [], cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        try:
            description, rows, lastrowid, rowcount = self.await_(
                connection._execute(_execute_in_thread, connection._conn, operation, parameters)  # type: ignore[no-untyped-call]
            )
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self.description = description
        self._rows = deque(rows)
        self.lastrowid = lastrowid
        self.rowcount = rowcount


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    def cursor(self, server_side: bool = False) -> AsyncAdapt_aiosqlite_cursor:
        return super().cursor(server_side) if server_side else OneHopCursor(self)


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        if type(adapted) is not AsyncAdapt_aiosqlite_connection:
            return adapted  # the synchronous fallback (async_fallback=True): left as SQLAlchemy has it
        return OneHopConnection(self, adapted._connection)


def dbapi() -> OneHopDBAPI:
    return OneHopDBAPI(aiosqlite, sqlite3)
