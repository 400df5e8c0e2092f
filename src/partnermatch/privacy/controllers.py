from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, Principal, access
from partnermatch.mail import mailer_for
from partnermatch.privacy.service import DataExport, ErasureReport, PrivacyService
from partnermatch.settings import Settings


async def provide_privacy_service(
    db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> PrivacyService:
    return PrivacyService(db_session, mailer=mailer_for(settings))


class MyDataController(Controller):
    # DELETE /api/v1/auth/me is AuthController.delete_account: one path, one controller (Litestar).
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
