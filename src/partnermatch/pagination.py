"""What every list endpoint shares: query parameters, ordering and one page with the total count."""

from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

from partnermatch.errors import InvalidInput
from partnermatch.settings import get_settings

T = TypeVar("T")


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


SectorFilter = Annotated[
    str | None,
    QueryParameter(
        description="NACE Rev. 2 code or prefix: a section letter, `62`, `62.0` or `62.01`",
        pattern=r"^([A-U]|\d{2}|\d{2}\.\d|\d{2}\.\d{2})$",
    ),
]
TextQuery = Annotated[str | None, QueryParameter(description="Case-insensitive text search", max_length=200)]
OrderBy = Annotated[
    str, QueryParameter(description="Field to sort by; prefix with - for descending", max_length=40)
]
Limit = Annotated[int | None, QueryParameter(ge=1, le=10_000, description="Page size (capped by the server)")]
Offset = Annotated[int, QueryParameter(ge=0, le=10_000_000)]


def page_size(limit: int | None) -> int:
    settings = get_settings()
    if limit is not None and limit > settings.max_page_size:
        raise InvalidInput.for_field("limit", f"must be at most {settings.max_page_size}")
    return limit or settings.default_page_size


def parse_order(order_by: str, allowed: frozenset[str]) -> tuple[str, bool]:
    """`-name` means descending. Returns (field, descending)."""
    field = order_by.removeprefix("-")
    if field not in allowed:
        rule = f"must be one of {', '.join(sorted(allowed))}, optionally prefixed with '-'"
        raise InvalidInput.for_field("order_by", rule)
    return field, order_by.startswith("-")
