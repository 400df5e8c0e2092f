from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, Principal, access
from partnermatch.accounts.auth import (
    LOGIN_FAILURES_STORE,
    LOGIN_RATE_LIMITED,
    clear_session_cookie,
    set_session_cookie,
)
from partnermatch.accounts.models import User
from partnermatch.accounts.schemas import (
    Accepted,
    LoginRequest,
    PasswordChange,
    Registration,
    ResetConfirm,
    ResetRequest,
    TokenBody,
    UserRead,
)
from partnermatch.accounts.service import AccountService
from partnermatch.accounts.throttle import LoginThrottle
from partnermatch.enums import UserRole
from partnermatch.mail import mailer_for
from partnermatch.privacy.controllers import provide_privacy_service
from partnermatch.privacy.service import PrivacyService
from partnermatch.settings import Settings

CHECK_EMAIL = "If the address can be used, a message with the next step is on its way."


async def provide_account_service(
    db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> AccountService:
    return AccountService(db_session, settings=settings, mailer=mailer_for(settings))


def provide_login_throttle(
    request: Request[Any, Any, Any], settings: NamedDependency[Settings]
) -> LoginThrottle:
    return LoginThrottle(request.app.stores.get(LOGIN_FAILURES_STORE), settings.login_failures_per_account)


def user_read(user: User) -> UserRead:
    return UserRead(
        id=user.id,
        email=user.email,
        role=UserRole(user.role),
        company_id=user.company_id,
        email_verified=user.email_verified_at is not None,
        created_at=user.created_at,
    )


def _current(request: Request[Any, Any, Any]) -> Principal | None:
    user = request.scope.get("user")
    return user if isinstance(user, Principal) else None


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]
    opt = access(Access.PUBLIC)
    dependencies = {
        "accounts": Provide(provide_account_service),
        "throttle": Provide(provide_login_throttle, sync_to_thread=False),
    }

    @post(
        "/login",
        summary="Sign in: starts a session (cookie) with a new id",
        status_code=200,
        opt={LOGIN_RATE_LIMITED: True},
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        accounts: NamedDependency[AccountService],
        throttle: NamedDependency[LoginThrottle],
        settings: NamedDependency[Settings],
        data: JSONBody[LoginRequest],
    ) -> Response[UserRead]:
        user, secret = await accounts.login(
            data.email, data.password, throttle=throttle, previous=_current(request)
        )
        response = Response(user_read(user))
        set_session_cookie(response, settings, secret)
        return response

    @post("/logout", summary="End this session", status_code=200, opt=access(Access.MEMBER))
    async def logout(
        self,
        accounts: NamedDependency[AccountService],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> Response[Accepted]:
        await accounts.logout(principal)
        response = Response(Accepted(detail="signed out"))
        clear_session_cookie(response, settings)
        return response

    @get("/me", summary="The signed-in user", opt=access(Access.MEMBER))
    async def me(
        self, accounts: NamedDependency[AccountService], principal: NamedDependency[Principal]
    ) -> UserRead:
        return user_read(await accounts.get_user(principal.user_id))

    @delete(
        "/me",
        summary="Delete your account (members; GDPR): signs out everywhere, the audit log keeps the "
        "actions without your name",
        status_code=204,
        opt=access(Access.MEMBER),
        dependencies={"privacy": Provide(provide_privacy_service)},
    )
    async def delete_account(
        self,
        privacy: NamedDependency[PrivacyService],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        confirm: Annotated[
            str, QueryParameter(description="Your email address, to confirm", min_length=1, max_length=320)
        ],
    ) -> Response[None]:
        await privacy.delete_account(principal, confirm)
        response: Response[None] = Response(content=None, status_code=204)
        clear_session_cookie(response, settings)
        return response

    @post(
        "/password",
        summary="Change the password; ends every session (this one continues with a new id)",
        status_code=200,
        opt=access(Access.MEMBER),
    )
    async def change_password(
        self,
        accounts: NamedDependency[AccountService],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        data: JSONBody[PasswordChange],
    ) -> Response[UserRead]:
        secret = await accounts.change_password(principal, data.current_password, data.new_password)
        response = Response(user_read(await accounts.get_user(principal.user_id)))
        if secret is not None:
            set_session_cookie(response, settings, secret)
        return response

    @post(
        "/register",
        summary="Register a company and its first member (the company starts as pending)",
        status_code=HTTP_202_ACCEPTED,
        opt={LOGIN_RATE_LIMITED: True},
    )
    async def register(
        self, accounts: NamedDependency[AccountService], data: JSONBody[Registration]
    ) -> Accepted:
        await accounts.register(data)
        return Accepted(detail=CHECK_EMAIL)

    @post("/verify-email", summary="Confirm an email address with the emailed token", status_code=204)
    async def verify_email(
        self, accounts: NamedDependency[AccountService], data: JSONBody[TokenBody]
    ) -> None:
        await accounts.verify_email(data.token)

    @post(
        "/password-reset",
        summary="Email a password reset link (same answer for unknown addresses)",
        status_code=HTTP_202_ACCEPTED,
        opt={LOGIN_RATE_LIMITED: True},
    )
    async def request_reset(
        self, accounts: NamedDependency[AccountService], data: JSONBody[ResetRequest]
    ) -> Accepted:
        await accounts.request_reset(data.email)
        return Accepted(detail=CHECK_EMAIL)

    @post(
        "/password-reset/confirm",
        summary="Set a new password with the emailed token; ends every session",
        status_code=HTTP_204_NO_CONTENT,
    )
    async def reset_password(
        self, accounts: NamedDependency[AccountService], data: JSONBody[ResetConfirm]
    ) -> None:
        await accounts.reset_password(data.token, data.password)
