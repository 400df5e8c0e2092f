"""Domain errors, and the one handler that turns every error into RFC 9457 problem details.

Services raise ``DomainError`` subclasses and know nothing of HTTP; the status
code is a property of the kind of error, read only by the handler here.
"""

import logging
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
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

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


class DatabaseNotMigratedError(DomainError):
    status_code = 503
    title = "Database not migrated"

    def __init__(self, url: str, current: Sequence[str]) -> None:
        state = f"at revision {', '.join(current)}" if current else "empty"
        super().__init__(
            f"the database {_redact(url)} is {state}, not at the latest migration; "
            "run `partnermatch db upgrade` (or `partnermatch demo`, which also loads demo data)"
        )


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


# PostgreSQL's character_not_in_repertoire: text holding a NUL character, which it cannot store.
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


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if isinstance(exc, DomainError):
        extra = {"errors": [issue.as_dict() for issue in exc.issues]} if exc.issues else None
        response = problem(exc.status_code, exc.title, exc.detail, extra=extra)
        response.headers.update(exc.headers)
        return response
    if isinstance(exc, ValidationException):
        issues = _validation_issues(exc.extra)
        detail = "; ".join(f"{i['field']}: {i['rule']}" for i in issues) or str(exc.detail)
        return problem(400, "Invalid request", detail, extra={"errors": issues} if issues else None)
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
