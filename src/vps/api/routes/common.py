"""Parameters and OpenAPI response declarations shared by the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request

from vps.api.deps import StateDep
from vps.api.presenters import page_links
from vps.api.schemas import ErrorResponse
from vps.db.types import storable_id
from vps.domain.errors import FieldProblem, InvalidParameters, NotFound

MAX_PAGE = 10_000_000

_DESCRIPTIONS = {
    400: "Bad request: invalid parameters, body or state; `error.fields` names the fields",
    401: "Unauthorized: missing, malformed, invalid, revoked or expired API token",
    402: "Payment required: insufficient credits (`error.required`, `error.available`)",
    403: "Forbidden: the token is read-only",
    404: "Not found (also for another account's resources)",
    409: "Conflict; for a POST, also a request with the same `Idempotency-Key` still in flight",
    412: "Precondition failed: the resource is no longer at the `If-Match` ETag "
    "(the `ETag` header gives the current one)",
    422: "The `Idempotency-Key` was already used for a different request",
    429: "Too many requests, or (`too_many_streams`) too many event streams open for the "
    "account; `Retry-After` says when to try again",
    503: "Unavailable: `location_full` when no hypervisor host of the location has room for "
    "the plan (nothing is charged; try another location or a smaller plan), "
    "`service_unavailable` when the database cannot be reached",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]} for code in codes}


ServerId = Annotated[int, Path(description="The server's unique ID", examples=[12345])]
ActionId = Annotated[int, Path(description="The action's unique ID", examples=[678])]
PageParam = Annotated[int, Query(description="Page number, from 1")]
MAX_WAIT_SECONDS = 60
WaitParam = Annotated[
    float | None,
    Query(
        gt=0,
        le=MAX_WAIT_SECONDS,
        description="Long-poll: answer as soon as the state changes, or after this many "
        f"seconds (at most {MAX_WAIT_SECONDS}).",
    ),
]
PageSizeParam = Annotated[int | None, Query(description="Results per page (default 50, max 100)")]


def existing_id(value: int, what: str) -> int:
    """An id outside the id range names nothing: 404, as for any unknown id."""
    if not storable_id(value):
        raise NotFound(f"No {what} with id {value}.")
    return value


def page_window(page: int, page_size: int | None, default: int, maximum: int) -> tuple[int, int]:
    """Validate paging; returns (offset, limit). Out-of-range values are refused, not fixed."""
    size = default if page_size is None else page_size
    problems = []
    if not 1 <= page <= MAX_PAGE:
        problems.append(("page", f"Must be between 1 and {MAX_PAGE}."))
    if not 1 <= size <= maximum:
        problems.append(("page_size", f"Must be between 1 and {maximum}."))
    if problems:
        raise InvalidParameters([FieldProblem(f, m) for f, m in problems])
    return (page - 1) * size, size


@dataclass(frozen=True)
class Paging:
    """One page of a list, validated: where it starts, how long it is, and its links."""

    request: Request
    page: int
    offset: int
    limit: int
    base_url: str | None

    def links(self, total: int) -> tuple[str | None, str | None]:
        """`next` and `previous` for a list of `total` items."""
        return page_links(self.request, self.base_url, self.page, self.limit, total)


async def _paging(
    request: Request, state: StateDep, page: PageParam = 1, page_size: PageSizeParam = None
) -> Paging:
    settings = state.settings
    offset, limit = page_window(page, page_size, settings.page_size_default, settings.page_size_max)
    return Paging(request, page, offset, limit, settings.public_url)


PagingDep = Annotated[Paging, Depends(_paging)]
