"""What every list endpoint shares: query parameters, ordering and one page with the total count."""

from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Generic, TypedDict, TypeVar

import msgspec
from litestar.params import QueryParameter

from partnermatch.errors import InvalidInput

T = TypeVar("T")
Row = TypeVar("Row")


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
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 500
Limit = Annotated[int | None, QueryParameter(ge=1, le=MAX_PAGE_SIZE, description="Page size (default 20)")]
Offset = Annotated[int, QueryParameter(ge=0, le=10_000_000)]


class PageWindow(TypedDict):
    """The page a list endpoint asks its search for; spread into the filters (`**window`)."""

    limit: int
    offset: int


class SortOrder(TypedDict):
    order_by: str
    descending: bool


def page_window(limit: int | None, offset: int) -> PageWindow:
    return {"limit": limit or DEFAULT_PAGE_SIZE, "offset": offset}


def sort_order(order_by: str, allowed: frozenset[str]) -> SortOrder:
    """`-name` means descending."""
    field = order_by.removeprefix("-")
    if field not in allowed:
        rule = f"must be one of {', '.join(sorted(allowed))}, optionally prefixed with '-'"
        raise InvalidInput.for_field("order_by", rule)
    return {"order_by": field, "descending": order_by.startswith("-")}


async def list_page(
    found: Awaitable[tuple[Iterable[Row], int]], window: PageWindow, read: Callable[[Row], T]
) -> Page[T]:
    """The page of a search's (rows, total), each row read into the endpoint's schema."""
    rows, total = await found
    return Page(items=[read(row) for row in rows], total=total, **window)
