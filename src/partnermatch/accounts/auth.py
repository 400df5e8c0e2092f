"""How a request proves who sent it: a session cookie or an API token, checked by Litestar middleware."""

import time
from typing import Any

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar import Request, Response
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.rate_limit import CacheObject, RateLimitConfig, RateLimitMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from partnermatch.accounts.service import AccountService
from partnermatch.audit.recorder import Actor, current_actor
from partnermatch.mail import mailer_for
from partnermatch.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_HEADER = "x-csrftoken"
LOGIN_RATE_LIMIT_STORE = "login_rate_limit"
LOGIN_FAILURES_STORE = "login_failures"
# Handler opt: login, and the routes that send mail to an address the caller names, share the
# per-address limit (password guessing; mail bombing).
LOGIN_RATE_LIMITED = "login_rate_limited"


class AuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Sets `request.user` to a Principal, or None for anonymous requests; the access guard decides."""

    def __init__(self, app: ASGIApp, *, settings: Settings, db_config: SQLAlchemyAsyncConfig) -> None:
        super().__init__(app)
        self.settings = settings
        self.db_config = db_config

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization")
        cookie = connection.cookies.get(self.settings.session_cookie_name)
        if not header and not cookie:
            return AuthenticationResult(user=None, auth=None)
        # The request's own database session: the handler and the commit at the end share it.
        session = self.db_config.provide_session(connection.app.state, connection.scope)
        accounts = AccountService(session, settings=self.settings, mailer=mailer_for(self.settings))
        if header:
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                raise NotAuthorizedException("the Authorization header must be `Bearer <token>`")
            principal = await accounts.principal_for_token(secret.strip())
            if principal is None:
                raise NotAuthorizedException(
                    "the API token is unknown, revoked or expired",
                    headers={"WWW-Authenticate": 'Bearer realm="partnermatch", error="invalid_token"'},
                )
        else:
            # An expired session is anonymous: public pages keep working, the rest answers 401.
            principal = await accounts.principal_for_session(cookie)  # type: ignore[arg-type]
            if principal is None:
                return AuthenticationResult(user=None, auth=None)
        request_line = f"{connection.scope.get('method', '')} {connection.url.path}"
        current_actor.set(Actor(principal.user_id, principal.token_id, request_line))
        return AuthenticationResult(user=principal, auth="token" if principal.token_id else "session")


class SessionCSRFMiddleware(CSRFMiddleware):
    """Litestar's CSRF check, for the requests a browser can be tricked into: those a session cookie
    authenticates. Bearer tokens are never sent by a browser on its own, so they need none."""

    def __init__(self, app: ASGIApp, config: CSRFConfig, session_cookie: str) -> None:
        super().__init__(app, config)
        self.session_cookie = session_cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] not in SAFE_METHODS:
            headers = dict(scope["headers"])
            cookies = headers.get(b"cookie", b"").decode("latin-1")
            has_session = f"{self.session_cookie}=" in cookies
            if b"authorization" in headers or not has_session:
                await self.app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def csrf_config(settings: Settings) -> CSRFConfig:
    return CSRFConfig(
        secret=settings.resolved_secret_key(),
        cookie_name=settings.csrf_cookie_name,
        cookie_secure=not settings.insecure_cookies,
        cookie_samesite="lax",
        cookie_path="/",
        header_name=CSRF_HEADER,
    )


class RetryAfterRateLimitMiddleware(RateLimitMiddleware):
    """Litestar's limiter answers 429 with the draft RateLimit-* headers; clients know Retry-After."""

    def create_response_headers(self, cache_object: CacheObject) -> dict[str, str]:
        headers = super().create_response_headers(cache_object)
        headers["Retry-After"] = str(max(1, cache_object.reset - int(time.time())))
        return headers


def _is_login(request: Request[Any, Any, Any]) -> bool:
    return bool(request.scope["route_handler"].opt.get(LOGIN_RATE_LIMITED))


def login_rate_limit(settings: Settings) -> RateLimitConfig:
    """Per client address, on the handlers marked LOGIN_RATE_LIMITED only."""
    return RateLimitConfig(
        rate_limit=("minute", settings.login_attempts_per_ip_per_minute),
        store=LOGIN_RATE_LIMIT_STORE,
        middleware_class=RetryAfterRateLimitMiddleware,
        check_throttle_handler=_is_login,
    )


def provide_settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state["settings"]
    return settings


def set_session_cookie(response: Response[Any], settings: Settings, secret: str) -> None:
    response.set_cookie(
        Cookie(
            key=settings.session_cookie_name,
            value=secret,
            path="/",
            max_age=settings.session_max_age_hours * 3600,
            secure=not settings.insecure_cookies,
            httponly=True,
            samesite="lax",
        )
    )


def clear_session_cookie(response: Response[Any], settings: Settings) -> None:
    # Browsers ignore a __Host- cookie's deletion unless it carries the same attributes.
    response.set_cookie(
        Cookie(
            key=settings.session_cookie_name,
            value="",
            path="/",
            max_age=0,
            secure=not settings.insecure_cookies,
            httponly=True,
            samesite="lax",
        )
    )


def client_sent_session(request: Request[Any, Any, Any], settings: Settings) -> bool:
    return settings.session_cookie_name in request.cookies
