"""Domain errors, and the one handler that turns every error into RFC 9457 problem details.

Services raise ``DomainError`` subclasses and know nothing of HTTP; the status
code is a property of the kind of error, read only by the handler here.
"""

import logging
import re
import socket
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from advanced_alchemy.exceptions import (
    DuplicateKeyError,
    ForeignKeyError,
    IntegrityError,
    NotFoundError,
    RepositoryError,
)
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import InterfaceError as DriverInterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

logger = logging.getLogger("partnermatch")
PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class FieldIssue:
    field: str
    rule: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule}


class DomainError(Exception):
    status_code = 400
    title = "Bad request"

    def __init__(self, detail: str, *, issues: Sequence[FieldIssue] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.issues = tuple(issues)

    @property
    def headers(self) -> Mapping[str, str]:
        return {}


class InvalidInput(DomainError):
    status_code = 422
    title = "Invalid input"

    @classmethod
    def for_field(cls, field: str, rule: str) -> "InvalidInput":
        return cls(f"{field}: {rule}", issues=[FieldIssue(field, rule)])


class NotFound(DomainError):
    status_code = 404
    title = "Not found"

    @classmethod
    def for_id(cls, kind: str, identifier: object) -> "NotFound":
        return cls(f"no {kind} with id {identifier}")


class Conflict(DomainError):
    status_code = 409
    title = "Conflict"


class Unauthenticated(DomainError):
    status_code = 401
    title = "Unauthorized"

    @property
    def headers(self) -> Mapping[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="partnermatch"'}


class TooManyAttempts(DomainError):
    status_code = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = max(1, retry_after)

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(self.retry_after)}


class EmailNotVerified(DomainError):
    status_code = 403
    title = "Email not verified"
    RESEND = "/api/v1/auth/verify-email/resend"

    def __init__(self) -> None:
        rule = f"must be verified first: follow the emailed link, or POST {self.RESEND} for a new one"
        super().__init__(f"email: {rule}", issues=[FieldIssue("email", rule)])


class DatabaseNotMigratedError(DomainError):
    status_code = 503
    title = "Database not migrated"

    def __init__(self, url: str, current: Sequence[str]) -> None:
        state = f"at revision {', '.join(current)}" if current else "empty"
        super().__init__(
            f"the database {_redact(url)} is {state}, not at the latest migration; "
            "run `partnermatch db upgrade` (or `partnermatch demo`, which also loads demo data)"
        )


class ServiceUnavailable(DomainError):
    """The database or Redis cannot be reached now (see :func:`unavailable`); nothing was changed."""

    status_code = 503
    title = "Service unavailable"

    @property
    def headers(self) -> Mapping[str, str]:
        # A hint for clients that retry on their own; the outage may of course last longer.
        return {"Retry-After": "1"}


DATABASE_UNAVAILABLE = "the database is unavailable, try again"
REDIS_UNAVAILABLE = "the login limits' store (Redis) is unavailable, try again"
DATABASE_BUSY = "the database is busy with other changes, try again"


def _redact(url: str) -> str:
    # Keep passwords out of messages and logs.
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
    return url


class FieldIssueBody(msgspec.Struct):
    field: str
    rule: str


class ProblemDetails(msgspec.Struct, omit_defaults=True):
    """RFC 9457 body, as documented in the OpenAPI schema; `errors` lists each field and broken rule."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldIssueBody] | None = None


def _problem_spec(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ProblemDetails, media_type=PROBLEM_JSON, description=description)


PROBLEM_RESPONSES: dict[int, ResponseSpec] = {
    400: _problem_spec("The request does not match the schema; `errors` names each field and rule"),
    401: _problem_spec("Not signed in, or the session or token is invalid or expired"),
    403: _problem_spec("Signed in, but not allowed to do this (or the CSRF token is missing)"),
    404: _problem_spec("No such resource"),
    409: _problem_spec("Conflicts with existing data (duplicate or related rows)"),
    422: _problem_spec("Breaks a domain rule; `errors` names each field and rule"),
    429: _problem_spec("Too many attempts; `Retry-After` says how many seconds to wait"),
    503: _problem_spec(
        "Unavailable for now (the database did not commit the change, or a mail could not be sent); "
        "nothing was changed: try again"
    ),
}


def problem(
    status: int, title: str, detail: str | None = None, *, extra: Mapping[str, Any] | None = None
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if extra:
        body.update(extra)
    return Response(body, status_code=status, media_type=PROBLEM_JSON)


def _validation_issues(extra: Any) -> list[dict[str, str]]:
    issues: list[dict[str, str]] = []
    if isinstance(extra, list):
        for item in extra:
            if isinstance(item, dict):
                key = item.get("key") or item.get("source") or "body"
                issues.append({"field": str(key), "rule": str(item.get("message", "invalid"))})
    return issues


# A NUL in JSON text can only arrive as the escape \u0000 (raw control characters are invalid JSON);
# an even run of backslashes before it is escaped backslashes, an odd one makes it a NUL.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_URL_NUL = b"%00"
NUL_RULE = "must not contain NUL characters"


def _path_to_nul(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    items: Any = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    )
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return f"{path}.{key}" if path else key
        found = _path_to_nul(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def _nul_rejected(field: str) -> ValidationException:
    return _rejected(field, NUL_RULE)


def _rejected(field: str, rule: str) -> ValidationException:
    return ValidationException(f"{field}: {rule}", extra=[{"key": field, "message": rule}])


# No request of this API nests deeper than a few levels; the JSON decoder recurses once per level and
# fails at about a thousand (a RecursionError, a 500), so the depth is checked before it runs.
MAX_JSON_DEPTH = 64
DEPTH_RULE = f"JSON may nest at most {MAX_JSON_DEPTH} levels of arrays and objects"
# Strings (whose brackets are text) and the brackets outside them; an unterminated string runs to the end.
_JSON_NESTING = re.compile(rb'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text nests more than ``limit`` arrays and objects; linear in the body."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # the usual case, counted in C
    depth = 0
    for token in _JSON_NESTING.finditer(body):
        bracket = token[0]
        if bracket in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif bracket in (b"]", b"}"):
            depth -= 1
    return False


async def check_request_body(request: Request[Any, Any, Any]) -> None:
    """Refuse text with NUL characters, and JSON nested too deeply, before any handler runs.

    PostgreSQL cannot store NUL in text while SQLite can: checking here, once, makes both backends
    answer the same 400 naming the field, instead of one storing what the other refuses.
    """
    if _URL_NUL in request.scope.get("raw_path", b"").lower():
        raise _nul_rejected("path")
    if _URL_NUL in request.scope.get("query_string", b"").lower():
        key = next((k for k, v in request.query_params.multi_items() if "\x00" in k + v), "query")
        raise _nul_rejected(key)
    if request.method in {"GET", "HEAD", "OPTIONS", "DELETE"}:
        return
    content_type = request.content_type[0]
    if content_type == "application/json" or content_type.endswith("+json"):
        body = await request.body()
        if json_too_deep(body):
            raise _rejected("body", DEPTH_RULE)
        if _JSON_NUL.search(body):
            try:
                field = _path_to_nul(msgspec.json.decode(body), "") or "body"
            except msgspec.DecodeError:
                field = "body"
            raise _nul_rejected(field)
    elif content_type == "application/x-www-form-urlencoded":
        body = await request.body()
        if _URL_NUL in body.lower():
            raise _nul_rejected("body")


# PostgreSQL's character_not_in_repertoire: text holding a NUL character, which it cannot store.
# Kept behind the request-boundary check above for text that reaches the database another way.
_NUL_IN_TEXT = "22021"


def _database_rejected_nul(exc: BaseException) -> bool:
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if _NUL_IN_TEXT in {getattr(current, "sqlstate", None), getattr(current, "pgcode", None)}:
            return True
        pending += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return False


# SQLSTATEs of a database that cannot be reached now: class 08 (connection exceptions), too many
# connections, and shutting down, crashed or starting up (57P01-57P03).
_UNREACHABLE_STATES = frozenset({"53300", "57P01", "57P02", "57P03"})
# object_not_in_prerequisite_state, as PostgreSQL answers a connection to a database that takes none
# (ALLOW_CONNECTIONS false); the same state means other things elsewhere, hence the message too.
_NOT_ACCEPTING = ("55000", "is not currently accepting connections")


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: SQLAlchemy's ``orig``, and explicit causes (``raise ... from``)."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        wrapped = getattr(current, "orig", None)
        current = wrapped if isinstance(wrapped, BaseException) else current.__cause__
    return found


def _connection_lost(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # The pool's wait for a free connection, the driver's closed connection, a refused or timed-out
    # socket (asyncpg raises those as they are when it connects) and a name that does not resolve.
    if isinstance(
        exc, PoolTimeoutError | DriverInterfaceError | ConnectionError | TimeoutError | socket.gaierror
    ):
        return True
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if not isinstance(state, str):
        return False
    if state.startswith("08") or state in _UNREACHABLE_STATES:
        return True
    return state == _NOT_ACCEPTING[0] and _NOT_ACCEPTING[1] in str(exc)


def _write_lock_timed_out(exc: BaseException) -> bool:
    """SQLite's one write lock not had within its busy timeout (10 s): the server is overloaded with
    writes. The transaction that waited wrote nothing (it takes the lock before its first statement)."""
    return isinstance(exc, sqlite3.OperationalError) and "database is locked" in str(exc)


def unavailable(exc: BaseException) -> ServiceUnavailable | None:
    """A connection-level failure of the database or of Redis (the login limits' store) as the 503 to
    answer, or None for any other error. Not a bug to log with its traceback: the client may try again,
    and the engine's pre-ping replaces the dead pooled connections once the database is back."""
    causes = _causes(exc)
    if any(isinstance(cause, RedisConnectionError | RedisTimeoutError) for cause in causes):
        return ServiceUnavailable(REDIS_UNAVAILABLE)
    if any(_write_lock_timed_out(cause) for cause in causes):
        return ServiceUnavailable(DATABASE_BUSY)
    if any(_connection_lost(cause) for cause in causes):
        return ServiceUnavailable(DATABASE_UNAVAILABLE)
    return None


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if (outage := unavailable(exc)) is not None:
        logger.warning("%s on %s %s: %r", outage.detail, request.method, request.url.path, exc)
        exc = outage
    if isinstance(exc, DomainError):
        extra = {"errors": [issue.as_dict() for issue in exc.issues]} if exc.issues else None
        response = problem(exc.status_code, exc.title, exc.detail, extra=extra)
        response.headers.update(exc.headers)
        return response
    if isinstance(exc, ValidationException):
        issues = _validation_issues(exc.extra)
        detail = "; ".join(f"{i['field']}: {i['rule']}" for i in issues) or str(exc.detail)
        return problem(400, "Invalid request", detail, extra={"errors": issues} if issues else None)
    if isinstance(exc, RequestEntityTooLarge):
        limit = request.route_handler.resolve_request_max_body_size()
        rule = f"the request body may be at most {limit:,} bytes" if limit else None
        return problem(exc.status_code, "Request body too large", rule)
    if isinstance(exc, HTTPException):
        response = problem(exc.status_code, str(exc.detail) or "Error", None)
        # 405 must keep its Allow header, 401 its WWW-Authenticate, 429 its Retry-After.
        response.headers.update(exc.headers or {})
        return response
    if isinstance(exc, NotFoundError):
        return problem(404, "Not found", "no such resource")
    if isinstance(exc, DuplicateKeyError):
        return problem(409, "Conflict", "a resource with the same unique key exists")
    if isinstance(exc, ForeignKeyError | IntegrityError):
        return problem(409, "Conflict", "the change conflicts with related data")
    if _database_rejected_nul(exc):
        return problem(400, "Invalid request", "text must not contain NUL characters")
    if isinstance(exc, RepositoryError):
        logger.exception("repository error on %s %s", request.method, request.url.path)
        return problem(HTTP_500_INTERNAL_SERVER_ERROR, "Internal server error")
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "Internal server error")


EXCEPTION_HANDLERS = {Exception: handle_exception}
