from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, Principal, access
from partnermatch.accounts.auth import clear_session_cookie
from partnermatch.mail import mailer_for
from partnermatch.privacy.service import DataExport, ErasureReport, PrivacyService
from partnermatch.settings import Settings


async def provide_privacy_service(
    db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> PrivacyService:
    return PrivacyService(db_session, mailer=mailer_for(settings))


class MyDataController(Controller):
    """The data held about the signed-in user, to take away (deleting it: :func:`delete_my_account`)."""

    path = "/api/v1/auth/me"
    tags = ["auth"]
    opt = access(Access.MEMBER)
    dependencies = {"privacy": Provide(provide_privacy_service)}

    @get(
        "/export",
        summary="Everything held about you and your company, as JSON (GDPR access and portability)",
    )
    async def export(
        self, privacy: NamedDependency[PrivacyService], principal: NamedDependency[Principal]
    ) -> Response[DataExport]:
        return Response(
            await privacy.export(principal),
            headers={"Content-Disposition": 'attachment; filename="partnermatch-export.json"'},
        )


# A function, not a handler of MyDataController: the path is AuthController's too, and Litestar refuses two
# controllers on one path (each brings its OPTIONS handler).
@delete(
    "/api/v1/auth/me",
    summary="Delete your account (members; GDPR): signs out everywhere, the audit log keeps the "
    "actions without your name",
    status_code=204,
    tags=["auth"],
    operation_id="ApiV1AuthMeDeleteAccount",
    opt=access(Access.MEMBER),
    dependencies={"privacy": Provide(provide_privacy_service)},
)
async def delete_my_account(
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


class ErasureController(Controller):
    path = "/api/v1/admin/companies"
    tags = ["admin: privacy"]
    opt = access(Access.STAFF)
    dependencies = {"privacy": Provide(provide_privacy_service)}

    @post(
        "/{company_id:uuid}/erase",
        summary="Erase a company (GDPR): members deleted, personal data removed from the company and "
        "the audit log, aggregates kept, company archived as 'Erased company …'",
        status_code=200,
    )
    async def erase_company(
        self, privacy: NamedDependency[PrivacyService], company_id: FromPath[UUID]
    ) -> ErasureReport:
        return await privacy.erase_company(company_id)
