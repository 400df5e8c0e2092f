from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody

from partnermatch.access import Access, Principal, access
from partnermatch.accounts.controllers import ColleagueController, provide_account_service
from partnermatch.accounts.models import ApiToken, User
from partnermatch.accounts.repository import UserFilters
from partnermatch.accounts.schemas import (
    AccountCreate,
    AccountRead,
    AccountUpdate,
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenRead,
)
from partnermatch.accounts.service import AccountService
from partnermatch.enums import TokenScope, UserRole
from partnermatch.pagination import Limit, Offset, Page, TextQuery, page_size


def account_read(user: User) -> AccountRead:
    return AccountRead(
        id=user.id,
        email=user.email,
        role=UserRole(user.role),
        company_id=user.company_id,
        is_active=user.is_active,
        email_verified=user.email_verified_at is not None,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


def token_read(token: ApiToken) -> ApiTokenRead:
    return ApiTokenRead(
        id=token.id,
        user_id=token.user_id,
        name=token.name,
        scopes=[TokenScope(s) for s in token.scopes],
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
        created_at=token.created_at,
    )


class AccountAdminController(Controller):
    path = "/api/v1/admin"
    tags = ["admin: accounts"]
    opt = access(Access.ADMIN)
    dependencies = {"accounts": Provide(provide_account_service)}

    @get("/users", summary="Accounts, by email")
    async def list_users(
        self,
        accounts: NamedDependency[AccountService],
        role: FromQuery[UserRole | None] = None,
        company_id: FromQuery[UUID | None] = None,
        q: TextQuery = None,
        limit: Limit = None,
        offset: Offset = 0,
    ) -> Page[AccountRead]:
        filters = UserFilters(role=role, company_id=company_id, q=q, limit=page_size(limit), offset=offset)
        rows, total = await accounts.search_users(filters)
        return Page(items=[account_read(u) for u in rows], total=total, limit=filters.limit, offset=offset)

    @post("/users", summary="Create an account (without a password, it gets a reset link by email)")
    async def create_user(
        self, accounts: NamedDependency[AccountService], data: JSONBody[AccountCreate]
    ) -> AccountRead:
        return account_read(await accounts.add_account(data))

    @get("/users/{user_id:uuid}", summary="One account")
    async def get_user(
        self, accounts: NamedDependency[AccountService], user_id: FromPath[UUID]
    ) -> AccountRead:
        return account_read(await accounts.get_user(user_id))

    @patch("/users/{user_id:uuid}", summary="Disable (signs out everywhere) or enable an account")
    async def update_user(
        self,
        accounts: NamedDependency[AccountService],
        principal: NamedDependency[Principal],
        user_id: FromPath[UUID],
        data: JSONBody[AccountUpdate],
    ) -> AccountRead:
        return account_read(await accounts.change_account(principal, user_id, data))

    @get("/users/{user_id:uuid}/tokens", summary="An account's API tokens (never their secrets)")
    async def list_tokens(
        self, accounts: NamedDependency[AccountService], user_id: FromPath[UUID]
    ) -> list[ApiTokenRead]:
        return [token_read(t) for t in await accounts.tokens_of(user_id)]

    @post("/users/{user_id:uuid}/tokens", summary="Issue an API token; its secret is shown only now")
    async def create_token(
        self,
        accounts: NamedDependency[AccountService],
        user_id: FromPath[UUID],
        data: JSONBody[ApiTokenCreate],
    ) -> ApiTokenCreated:
        token, secret = await accounts.issue_token(user_id, data)
        return ApiTokenCreated(token=token_read(token), secret=secret)

    @delete("/tokens/{token_id:uuid}", summary="Revoke an API token", status_code=200)
    async def revoke_token(
        self, accounts: NamedDependency[AccountService], token_id: FromPath[UUID]
    ) -> ApiTokenRead:
        return token_read(await accounts.revoke_api_token(token_id))


class ColleagueAdminController(ColleagueController):
    """The same routes for staff in the admin API, for any company (e.g. to invite the first member
    of a company that staff registered)."""

    path = "/api/v1/admin/companies"
    tags = ["admin: accounts"]
    opt = access(Access.STAFF)
