from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody

from partnermatch.access import Access, Principal, access
from partnermatch.accounts.controllers import ColleagueController, provide_account_service
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
from partnermatch.enums import UserRole
from partnermatch.mapping import read_as
from partnermatch.pagination import Limit, Offset, Page, TextQuery, list_page, page_window


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
        window = page_window(limit, offset)
        filters = UserFilters(role=role, company_id=company_id, q=q, **window)
        return await list_page(accounts.search_users(filters), window, lambda row: read_as(row, AccountRead))

    @post("/users", summary="Create an account (without a password, it gets a reset link by email)")
    async def create_user(
        self, accounts: NamedDependency[AccountService], data: JSONBody[AccountCreate]
    ) -> AccountRead:
        return read_as(await accounts.add_account(data), AccountRead)

    @get("/users/{user_id:uuid}", summary="One account")
    async def get_user(
        self, accounts: NamedDependency[AccountService], user_id: FromPath[UUID]
    ) -> AccountRead:
        return read_as(await accounts.get_user(user_id), AccountRead)

    @patch("/users/{user_id:uuid}", summary="Disable (signs out everywhere) or enable an account")
    async def update_user(
        self,
        accounts: NamedDependency[AccountService],
        principal: NamedDependency[Principal],
        user_id: FromPath[UUID],
        data: JSONBody[AccountUpdate],
    ) -> AccountRead:
        return read_as(await accounts.change_account(principal, user_id, data), AccountRead)

    @get("/users/{user_id:uuid}/tokens", summary="An account's API tokens (never their secrets)")
    async def list_tokens(
        self, accounts: NamedDependency[AccountService], user_id: FromPath[UUID]
    ) -> list[ApiTokenRead]:
        return [read_as(token, ApiTokenRead) for token in await accounts.tokens_of(user_id)]

    @post("/users/{user_id:uuid}/tokens", summary="Issue an API token; its secret is shown only now")
    async def create_token(
        self,
        accounts: NamedDependency[AccountService],
        user_id: FromPath[UUID],
        data: JSONBody[ApiTokenCreate],
    ) -> ApiTokenCreated:
        token, secret = await accounts.issue_token(user_id, data)
        return ApiTokenCreated(token=read_as(token, ApiTokenRead), secret=secret)

    @delete("/tokens/{token_id:uuid}", summary="Revoke an API token", status_code=200)
    async def revoke_token(
        self, accounts: NamedDependency[AccountService], token_id: FromPath[UUID]
    ) -> ApiTokenRead:
        return read_as(await accounts.revoke_api_token(token_id), ApiTokenRead)


class ColleagueAdminController(ColleagueController):
    """The same routes for staff in the admin API, for any company (e.g. to invite the first member
    of a company that staff registered)."""

    path = "/api/v1/admin/companies"
    tags = ["admin: accounts"]
    opt = access(Access.STAFF)
