"""Unpacking an uploaded dataset zip without trusting it: no paths outside the target folder,
no more unpacked bytes than allowed (counted while writing: the sizes a zip declares can lie)."""

import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

from partnermatch.datasets.format import FILES
from partnermatch.errors import InvalidInput

CHUNK = 1 << 20


def _unsafe(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or ":" in name or "\x00" in name


def _copy_bounded(source: IO[bytes], target: IO[bytes], budget: int) -> int:
    written = 0
    while chunk := source.read(CHUNK):
        written += len(chunk)
        if written > budget:
            raise InvalidInput.for_field("file", "unpacks to more than the import size limit")
        target.write(chunk)
    return written


def dataset_folder(root: Path) -> Path:
    """The folder holding the dataset files: the zip's root, or its one top-level folder."""
    if any((root / name).is_file() for name in FILES):
        return root
    children = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("__MACOSX", "."))]
    return children[0] if len(children) == 1 else root


def unpack_dataset(archive: IO[bytes], target: Path, *, max_bytes: int) -> Path:
    try:
        bundle = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise InvalidInput.for_field("file", "is not a zip archive") from None
    with bundle:
        members = bundle.infolist()
        if unsafe := [m.filename for m in members if _unsafe(m.filename)]:
            raise InvalidInput.for_field("file", f"holds paths outside its folder: {unsafe[0]!r}")
        if sum(m.file_size for m in members) > max_bytes:
            raise InvalidInput.for_field("file", f"unpacks to more than {max_bytes:,} bytes")
        budget = max_bytes
        for member in members:
            if member.is_dir():
                continue
            destination = target.joinpath(*PurePosixPath(member.filename.replace("\\", "/")).parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                with bundle.open(member) as source, destination.open("wb") as sink:
                    budget -= _copy_bounded(source, sink, budget)
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as error:
                raise InvalidInput.for_field("file", f"cannot unpack {member.filename!r}: {error}") from None
    return dataset_folder(target)
