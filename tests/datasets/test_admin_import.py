"""POST /api/v1/admin/imports: the CLI import for an uploaded zip, on both backends."""

import io
import json
import struct
import zipfile

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.datasets.format import COMPANIES, INTERACTIONS, LEADS
from partnermatch.models import Company
from partnermatch.settings import Settings
from tests.datasets.test_import_export import Data, sample

URL = "/api/v1/admin/imports"


def _zip(data: Data, *, folder: str = "", extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, rows in data.items():
            bundle.writestr(folder + name, "".join(json.dumps(row) + "\n" for row in rows))
        for name, content in (extra or {}).items():
            bundle.writestr(name, content)
    return buffer.getvalue()


async def _upload(client: httpx.AsyncClient, content: bytes) -> httpx.Response:
    return await client.post(URL, files={"file": ("dataset.zip", content, "application/zip")})


async def _companies(db_session: AsyncSession) -> int:
    return await db_session.scalar(select(func.count()).select_from(Company)) or 0


@pytest.mark.parametrize("folder", ["", "dataset/"])
async def test_a_zip_is_imported_like_the_folder(
    client: httpx.AsyncClient, db_session: AsyncSession, folder: str
) -> None:
    response = await _upload(client, _zip(sample(), folder=folder))
    assert response.status_code == 200, response.text
    files = response.json()["files"]
    assert files[COMPANIES] == {"rows": 2, "inserted": 2, "updated": 0, "unchanged": 0}
    assert files[LEADS]["inserted"] == 2
    assert await _companies(db_session) == 2
    again = await _upload(client, _zip(sample(), folder=folder))
    assert again.json()["files"][COMPANIES]["unchanged"] == 2


async def test_an_invalid_dataset_is_a_422_with_file_line_errors_and_writes_nothing(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    data = sample()
    data[COMPANIES][1]["employees"] = -1
    data[INTERACTIONS][0]["lead_id"] = "no-such-lead"
    response = await _upload(client, _zip(data))
    assert response.status_code == 422, response.text
    problem = response.json()
    fields = [e["field"] for e in problem["errors"]]
    assert any(f.startswith(f"{COMPANIES}:2: employees") for f in fields), fields
    assert any(f.startswith(f"{INTERACTIONS}:1") for f in fields), fields
    assert await _companies(db_session) == 0


@pytest.mark.parametrize("name", ["../evil.jsonl", "/etc/evil.jsonl", "a/../../evil.jsonl", "..\\evil.jsonl"])
async def test_paths_leaving_the_folder_are_rejected(client: httpx.AsyncClient, name: str) -> None:
    response = await _upload(client, _zip(sample(), extra={name: b"x"}))
    assert response.status_code == 422
    assert "outside" in response.text


async def test_size_limits_and_non_zips(
    client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await _upload(client, b"not a zip")).status_code == 422
    monkeypatch.setattr(settings, "import_max_bytes", 1000)
    bomb = _zip({}, extra={"companies.jsonl": b" " * 5000})
    assert len(bomb) < 1000
    response = await _upload(client, bomb)
    assert response.status_code == 422
    assert "1,000 bytes" in response.text


def _bomb(unpacked: int, *, declared: int | None = None) -> bytes:
    """A real zip bomb: ``unpacked`` bytes of zeros (a thousandth of it compressed), its sizes in the
    headers set to ``declared`` if given (a lying archive)."""
    buffer = io.BytesIO()
    chunk = bytes(1 << 20)
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bundle,
        bundle.open(COMPANIES, "w") as member,
    ):
        for _ in range(unpacked // len(chunk)):
            member.write(chunk)
    data = bytearray(buffer.getvalue())
    if declared is not None:
        # The uncompressed size: at byte 22 of the local header, at byte 24 of the central directory's entry.
        struct.pack_into("<I", data, 22, declared)
        struct.pack_into("<I", data, data.index(b"PK\x01\x02") + 24, declared)
    return bytes(data)


@pytest.mark.parametrize("declared", [None, 100], ids=["honest-sizes", "lying-sizes"])
async def test_a_zip_bomb_is_refused_and_leaves_nothing(
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    declared: int | None,
) -> None:
    monkeypatch.setattr(settings, "import_max_bytes", 20_000_000)
    bomb = _bomb(200_000_000, declared=declared)
    assert len(bomb) < settings.import_max_bytes / 50
    response = await _upload(client, bomb)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "file"
    assert await _companies(db_session) == 0
    scratch = settings.var_dir / "imports"
    assert not scratch.exists() or not any(scratch.iterdir()), "the unpacked part is removed"


async def test_members_cannot_import(member_client: httpx.AsyncClient) -> None:
    assert (await _upload(member_client, _zip(sample()))).status_code == 403
