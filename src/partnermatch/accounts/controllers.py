from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, Principal, access, needs_verified_email
from partnermatch.accounts.auth import (
    LOGIN_FAILURES_STORE,
    LOGIN_RATE_LIMITED,
    clear_session_cookie,
    set_session_cookie,
)
from partnermatch.accounts.invitations import InvitationService, status_of
from partnermatch.accounts.models import Invitation
from partnermatch.accounts.schemas import (
    Accepted,
    InvitationAccept,
    InvitationCreate,
    InvitationRead,
    LoginRequest,
    MemberRead,
    PasswordChange,
    Registration,
    ResetConfirm,
    ResetRequest,
    TokenBody,
    UserRead,
)
from partnermatch.accounts.service import AccountService
from partnermatch.accounts.throttle import LoginThrottle
from partnermatch.enums import InvitationStatus
from partnermatch.mapping import read_as
from partnermatch.settings import Settings

CHECK_EMAIL = "If the address can be used, a message with the next step is on its way."


async def provide_account_service(
    db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> AccountService:
    return AccountService(db_session, settings=settings)


async def provide_invitation_service(
    db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> InvitationService:
    return InvitationService(db_session, settings=settings)


def provide_login_throttle(
    request: Request[Any, Any, Any], settings: NamedDependency[Settings]
) -> LoginThrottle:
    return LoginThrottle(request.app.stores.get(LOGIN_FAILURES_STORE), settings.login_failures_per_account)


def invitation_read(invitation: Invitation, now: datetime) -> InvitationRead:
    return read_as(
        invitation, InvitationRead, status=status_of(invitation, now), invited_by=invitation.invited_by_id
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
        "invitations": Provide(provide_invitation_service),
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
        response = Response(read_as(user, UserRead))
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
        return read_as(await accounts.get_user(principal.user_id), UserRead)

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
        response = Response(read_as(await accounts.get_user(principal.user_id), UserRead))
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
        "/verify-email/resend",
        summary="Email a new link to confirm your address (what a 403 'Email not verified' asks for)",
        status_code=HTTP_202_ACCEPTED,
        opt={**access(Access.MEMBER), LOGIN_RATE_LIMITED: True},
    )
    async def resend_verification(
        self, accounts: NamedDependency[AccountService], principal: NamedDependency[Principal]
    ) -> Accepted:
        await accounts.resend_verification(principal)
        return Accepted(detail="A new link is on its way to your address.")

    @post(
        "/invitations/accept",
        summary="Accept an invitation with the emailed token and a password: creates a member of the "
        "inviting company with a verified address; then sign in",
        status_code=HTTP_201_CREATED,
        opt={LOGIN_RATE_LIMITED: True},
    )
    async def accept_invitation(
        self,
        request: Request[Any, Any, Any],
        invitations: NamedDependency[InvitationService],
        data: JSONBody[InvitationAccept],
    ) -> UserRead:
        user = await invitations.accept(
            data.token, data.password, request=f"{request.method} {request.url.path}"
        )
        return read_as(user, UserRead)

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


class ColleagueController(Controller):
    """A company's members and invitations. Members reach their own company only (query scoping
    in InvitationService.company); staff reach every company, here and under /api/v1/admin."""

    path = "/api/v1/companies"
    tags = ["colleagues"]
    opt = access(Access.MEMBER)
    dependencies = {"invitations": Provide(provide_invitation_service)}

    @get("/{company_id:uuid}/members", summary="The company's members")
    async def members(
        self,
        invitations: NamedDependency[InvitationService],
        principal: NamedDependency[Principal],
        company_id: FromPath[UUID],
    ) -> list[MemberRead]:
        return [read_as(user, MemberRead) for user in await invitations.members(company_id, principal)]

    @get("/{company_id:uuid}/invitations", summary="The company's invitations, newest first")
    async def invitations(
        self,
        invitations: NamedDependency[InvitationService],
        principal: NamedDependency[Principal],
        company_id: FromPath[UUID],
        status: FromQuery[InvitationStatus | None] = None,
    ) -> list[InvitationRead]:
        now = datetime.now(UTC)
        return [invitation_read(i, now) for i in await invitations.of_company(company_id, principal, status)]

    @post(
        "/{company_id:uuid}/invitations",
        summary="Invite a colleague by email (same answer whether or not the address has an account)",
        opt=needs_verified_email(),
    )
    async def invite(
        self,
        invitations: NamedDependency[InvitationService],
        principal: NamedDependency[Principal],
        company_id: FromPath[UUID],
        data: JSONBody[InvitationCreate],
    ) -> InvitationRead:
        invitation = await invitations.invite(company_id, principal, data.email)
        return invitation_read(invitation, datetime.now(UTC))

    @delete(
        "/{company_id:uuid}/invitations/{invitation_id:uuid}",
        summary="Revoke a pending invitation (its link stops working)",
        status_code=200,
    )
    async def revoke(
        self,
        invitations: NamedDependency[InvitationService],
        principal: NamedDependency[Principal],
        company_id: FromPath[UUID],
        invitation_id: FromPath[UUID],
    ) -> InvitationRead:
        invitation = await invitations.revoke(company_id, invitation_id, principal)
        return invitation_read(invitation, datetime.now(UTC))
