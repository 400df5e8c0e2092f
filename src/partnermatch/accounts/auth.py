"""How a request proves who sent it: a session cookie or an API token, checked by Litestar middleware."""

import ipaddress
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
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
from litestar.middleware.rate_limit import (
    CacheObject,
    RateLimitConfig,
    RateLimitMiddleware,
    get_remote_address,
)
from litestar.stores.redis import RedisStore
from litestar.stores.registry import StoreRegistry
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import Redis

from partnermatch.accounts.service import principal_for_session, principal_for_token
from partnermatch.audit.recorder import Actor, current_actor
from partnermatch.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_HEADER = "x-csrftoken"
LOGIN_RATE_LIMIT_STORE = "login_rate_limit"
LOGIN_FAILURES_STORE = "login_failures"
# Handler opt: login, and the routes that send mail to an address the caller names, share the
# per-address limit (password guessing; mail bombing).
LOGIN_RATE_LIMITED = "login_rate_limited"
REDIS_NAMESPACE = "partnermatch"
# Seconds a login-limit command may wait for Redis: its answers take well under a millisecond.
REDIS_TIMEOUT_SECONDS = 2.0


class AuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Sets `request.user` to a Principal, or None for anonymous requests; the access guard decides."""

    def __init__(self, app: ASGIApp, *, settings: Settings, db_config: SQLAlchemyAsyncConfig) -> None:
        super().__init__(app)
        self.settings = settings
        self.db_config = db_config
        self.idle_timeout = timedelta(minutes=settings.session_idle_minutes)

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization")
        cookie = connection.cookies.get(self.settings.session_cookie_name)
        if not header and not cookie:
            return AuthenticationResult(user=None, auth=None)
        # The request's own database session: the handler and the commit at the end share it.
        db = self.db_config.provide_session(connection.app.state, connection.scope)
        now = datetime.now(UTC)
        if header:
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                raise NotAuthorizedException("the Authorization header must be `Bearer <token>`")
            principal = await principal_for_token(db, secret.strip(), now=now)
            if principal is None:
                raise NotAuthorizedException(
                    "the API token is unknown, revoked or expired",
                    headers={"WWW-Authenticate": 'Bearer realm="partnermatch", error="invalid_token"'},
                )
        else:
            # An expired or idle session is anonymous: public pages keep working, the rest answers 401.
            principal = await principal_for_session(db, cookie, now=now, idle_timeout=self.idle_timeout)  # type: ignore[arg-type]
            if principal is None:
                return AuthenticationResult(user=None, auth=None)
        request_line = f"{connection.scope['method']} {connection.scope['path']}"  # type: ignore[typeddict-item]
        current_actor.set(Actor(principal.user_id, principal.token_id, request_line))
        return AuthenticationResult(user=principal, auth="token" if principal.token_id else "session")


class SessionCSRFMiddleware(CSRFMiddleware):
    """Litestar's CSRF check, for the requests a browser can be tricked into: every form of the portal
    (signing in included, or a page could sign a visitor into someone else's account), and the API calls
    a session cookie authenticates. Bearer tokens are never sent by a browser on its own, so they need
    none, and the API's public calls without a cookie come from programs, not pages."""

    def __init__(self, app: ASGIApp, config: CSRFConfig, session_cookie: str) -> None:
        super().__init__(app, config)
        self.session_cookie = session_cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] not in SAFE_METHODS:
            headers = dict(scope["headers"])
            cookies = headers.get(b"cookie", b"").decode("latin-1")
            has_session = f"{self.session_cookie}=" in cookies
            api = scope["path"].startswith("/api/")
            if b"authorization" in headers or (api and not has_session):
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


def client_address(settings: Settings) -> Callable[[Request[Any, Any, Any]], str]:
    """The address a per-client limit counts: the peer's, or behind one of PARTNERMATCH_TRUSTED_PROXIES
    the nearest address in X-Forwarded-For that is not one of them.

    Only a trusted proxy's header counts: anyone else can write any X-Forwarded-For and so pick
    a fresh address for every attempt. Proxies append the address they saw, so the entries on the
    right were written by our own proxies and the first untrusted one from the right is the client
    (what the client itself put further left is ignored)."""
    trusted = settings.trusted_proxy_networks

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in trusted)

    def identify(request: Request[Any, Any, Any]) -> str:
        peer = get_remote_address(request)
        if not trusted or not is_trusted(peer):
            return peer
        hops = [
            hop.strip() for value in request.headers.getall("x-forwarded-for", []) for hop in value.split(",")
        ]
        for hop in reversed(hops):
            if hop and not is_trusted(hop):
                return hop
        return peer

    return identify


def login_rate_limit(settings: Settings) -> RateLimitConfig:
    """Per client address, on the handlers marked LOGIN_RATE_LIMITED only."""
    return RateLimitConfig(
        rate_limit=("minute", settings.login_attempts_per_ip_per_minute),
        store=LOGIN_RATE_LIMIT_STORE,
        middleware_class=RetryAfterRateLimitMiddleware,
        check_throttle_handler=_is_login,
        identifier_for_request=client_address(settings),
    )


def rate_limit_stores(settings: Settings) -> tuple[StoreRegistry | None, list[Callable[[], Awaitable[None]]]]:
    """Where the login limits count (stores LOGIN_RATE_LIMIT_STORE and LOGIN_FAILURES_STORE), and
    what closes it at shutdown.

    Without PARTNERMATCH_REDIS_URL: Litestar's default, memory of the process (None), right for the
    embedded single-process setup. With it, every store is a namespace in Redis, so that granian's
    workers (and several hosts) count together instead of each granting the full limit."""
    if not settings.redis_url:
        return None, []
    # Bounded waits: a Redis that hangs (frozen, or its packets dropped) would otherwise hold every login
    # without an answer; with them the login fails closed with a 503 within seconds, as when it is down.
    client = Redis.from_url(
        settings.redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )
    root = RedisStore(client, namespace=REDIS_NAMESPACE)

    async def close() -> None:
        await client.aclose()

    return StoreRegistry(default_factory=root.with_namespace), [close]


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
