"""Who may call what: every route handler declares an access level, and one guard enforces it.

What a caller may *see* within a route is decided by query scoping in the repositories
(e.g. companies.repository.visible_to), never by checks in controllers.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

from litestar.connection import ASGIConnection, Request
from litestar.exceptions import (
    ImproperlyConfiguredException,
    NotAuthorizedException,
    PermissionDeniedException,
)
from litestar.handlers.base import BaseRouteHandler

from partnermatch.enums import TokenScope, UserRole
from partnermatch.errors import EmailNotVerified

ACCESS_KEY = "access"
# Handler opt: the route needs a proven email address (members; staff addresses are set by admins).
VERIFIED_EMAIL_KEY = "verified_email"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Access(StrEnum):
    PUBLIC = "public"
    MEMBER = "member"  # any signed-in user; what a member sees is scoped to their company
    STAFF = "staff"
    ADMIN = "admin"


def access(level: Access) -> dict[str, Any]:
    """The `opt` of a controller or handler: `opt=access(Access.STAFF)`."""
    return {ACCESS_KEY: level}


def needs_verified_email() -> dict[str, Any]:
    """The `opt` of a handler that a member may call only with a verified address (on top of the
    controller's access level). Without one they get a 403 that says how to verify; they may still
    sign in, verify, ask for a new link, read, export their data and delete their account."""
    return {VERIFIED_EMAIL_KEY: True}


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: UUID
    role: UserRole
    company_id: UUID | None
    # Not verified unless the lookup says so: a Principal built without it is refused where it matters.
    email_verified: bool = False
    # Exactly one is set: the login session (cookie) or the API token (bearer) that authenticated.
    session_id: UUID | None = None
    token_id: UUID | None = None
    scopes: frozenset[TokenScope] = field(default_factory=frozenset)

    @property
    def is_staff(self) -> bool:
        return self.role in (UserRole.STAFF, UserRole.ADMIN)

    def reaches(self, level: Access) -> bool:
        if level in (Access.PUBLIC, Access.MEMBER):
            return True
        if level is Access.STAFF:
            return self.is_staff
        return self.role is UserRole.ADMIN


def access_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    # OPTIONS is Litestar's automatic answer listing the allowed methods; it reveals nothing.
    if connection.scope.get("method") == "OPTIONS":
        return
    level = handler.opt.get(ACCESS_KEY)
    if level is None:
        # Fail closed: a route nobody thought about is a route nobody may call.
        msg = f"route handler {handler.handler_name!r} declares no access level"
        raise ImproperlyConfiguredException(msg)
    level = Access(level)
    if level is Access.PUBLIC:
        return
    principal = connection.scope.get("user")
    if not isinstance(principal, Principal):
        raise NotAuthorizedException(
            "sign in, or send an API token", headers={"WWW-Authenticate": 'Bearer realm="partnermatch"'}
        )
    if not principal.reaches(level):
        raise PermissionDeniedException("not allowed for your role")
    if handler.opt.get(VERIFIED_EMAIL_KEY) and not principal.is_staff and not principal.email_verified:
        raise EmailNotVerified()
    if (
        principal.token_id is not None
        and connection.scope.get("method", "GET") not in SAFE_METHODS
        and TokenScope.WRITE not in principal.scopes
    ):
        raise PermissionDeniedException("this API token may only read")


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    principal = request.scope.get("user")
    if not isinstance(principal, Principal):
        # Only reachable from a public route that asked for a principal: a programming error.
        raise NotAuthorizedException("sign in, or send an API token")
    return principal
