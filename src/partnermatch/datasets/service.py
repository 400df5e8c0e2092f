import asyncio
import tempfile
from pathlib import Path
from typing import IO

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.datasets.importer import ImportReport, import_dataset
from partnermatch.datasets.upload import unpack_dataset
from partnermatch.errors import InvalidInput


class FileCounts(msgspec.Struct):
    rows: int
    inserted: int
    updated: int
    unchanged: int


class ImportResult(msgspec.Struct):
    files: dict[str, FileCounts]


def to_result(report: ImportReport) -> ImportResult:
    return ImportResult(
        files={
            name: FileCounts(rows=c.rows, inserted=c.inserted, updated=c.updated, unchanged=c.unchanged)
            for name, c in report.files.items()
        }
    )


class DatasetImportService:
    """The CLI's `partnermatch import` for an uploaded zip: same validation, same all-or-nothing."""

    def __init__(self, session: AsyncSession, *, max_bytes: int, scratch: Path) -> None:
        self.session = session
        self.max_bytes = max_bytes
        self.scratch = scratch

    async def import_zip(self, archive: IO[bytes], size: int) -> ImportResult:
        if size > self.max_bytes:
            raise InvalidInput.for_field("file", f"is larger than {self.max_bytes:,} bytes")
        self.scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="import-", dir=self.scratch) as folder:
            directory = await asyncio.to_thread(
                unpack_dataset, archive, Path(folder), max_bytes=self.max_bytes
            )
            return to_result(await import_dataset(self.session, directory))
