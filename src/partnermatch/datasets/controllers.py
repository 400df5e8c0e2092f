from dataclasses import dataclass
from typing import Annotated

from litestar import Controller, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, access
from partnermatch.datasets.service import DatasetImportService, ImportResult
from partnermatch.settings import Settings

# Litestar's own cap on the request, fixed when routes are built; PARTNERMATCH_IMPORT_MAX_BYTES
# (checked by the service) is the limit operators tune below it.
UPLOAD_HARD_LIMIT = 2 * 1024**3


async def provide_import_service(
    db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> DatasetImportService:
    return DatasetImportService(
        db_session, max_bytes=settings.import_max_bytes, scratch=settings.var_dir / "imports"
    )


@dataclass
class DatasetUpload:
    file: UploadFile


class DatasetImportController(Controller):
    path = "/api/v1/admin/imports"
    tags = ["admin: imports"]
    opt = access(Access.STAFF)
    dependencies = {"imports": Provide(provide_import_service)}

    @post(
        "/",
        summary="Import a dataset folder uploaded as a zip: checked completely first, then written all "
        "or nothing (like `partnermatch import`); 422 lists each `file:line: field` and reason",
        status_code=200,
        request_max_body_size=UPLOAD_HARD_LIMIT,
    )
    async def import_zip(
        self,
        imports: NamedDependency[DatasetImportService],
        data: Annotated[DatasetUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> ImportResult:
        upload = data.file
        size = upload.file.seek(0, 2)
        upload.file.seek(0)
        try:
            return await imports.import_zip(upload.file, size)
        finally:
            await upload.close()
